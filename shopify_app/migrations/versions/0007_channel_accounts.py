"""channel accounts: each merchant's own SMS, WhatsApp and email provider accounts

One row per shop and channel, its secrets encrypted as one value. A shop gets a callback key (random,
not secret) when its first channel is connected: it names the shop in the providers' callback URLs.
Existing shops have none until then, and nothing they do changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('secrets_ciphertext', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('connected_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_channel_accounts_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_accounts')),
    sa.UniqueConstraint('shop_id', 'channel', name=op.f('uq_channel_accounts_shop_id_channel'))
    )
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_shops_callback_key'), ['callback_key'])



def downgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_shops_callback_key'), type_='unique')
        batch_op.drop_column('callback_key')

    op.drop_table('channel_accounts')
