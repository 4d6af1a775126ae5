"""a merchant's own wording and rates, and the channels a provider would not let carry a step

A shop may word any step on any channel itself (`content_overrides`, rendered in the same sandbox as the
shipped templates) and price its paid channels by its own contract (`channel_rates`). A journey remembers,
for its current step, the channels a provider refused to carry it on (outside WhatsApp's window, a template
Meta refused): the step is decided again without them. Existing journeys start with none; existing WhatsApp
templates are marketing templates, as Meta categorises templates sent to market.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_rates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount', shopify_app.db.types.Amount(precision=20, scale=4), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_channel_rates_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_rates')),
    sa.UniqueConstraint('shop_id', 'channel', 'country', 'category', name=op.f('uq_channel_rates_shop_id_channel_country_category'))
    )
    op.create_table('content_overrides',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_content_overrides_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_overrides')),
    sa.UniqueConstraint('shop_id', 'flow', 'step', 'channel', name=op.f('uq_content_overrides_shop_id_flow_step_channel'))
    )
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unusable', sa.JSON(), server_default='{}', nullable=False))

    with op.batch_alter_table('whatsapp_templates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), server_default='marketing', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('whatsapp_templates', schema=None) as batch_op:
        batch_op.drop_column('category')

    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.drop_column('unusable')

    op.drop_table('content_overrides')
    op.drop_table('channel_rates')
