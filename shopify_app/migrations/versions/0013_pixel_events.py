"""storefront events from the shop's web pixel, kept apart from the webhook queue; the shop's public pixel key

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pixel_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('occurred_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('variant_id', sa.BigInteger(), nullable=True),
    sa.Column('mirror_price', shopify_app.db.types.Amount(precision=20, scale=4), nullable=True),
    sa.Column('checkout_token', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_pixel_events_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pixel_events')),
    sa.UniqueConstraint('shop_id', 'event_id', name=op.f('uq_pixel_events_shop_id_event_id'))
    )
    with op.batch_alter_table('pixel_events', schema=None) as batch_op:
        batch_op.create_index('ix_pixel_events_received', ['received_at'], unique=False)
        batch_op.create_index('ix_pixel_events_shop_checkout', ['shop_id', 'checkout_token'], unique=False)
        batch_op.create_index('ix_pixel_events_shop_client', ['shop_id', 'client_id'], unique=False)

    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pixel_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_shops_pixel_key'), ['pixel_key'])



def downgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_shops_pixel_key'), type_='unique')
        batch_op.drop_column('pixel_key')

    with op.batch_alter_table('pixel_events', schema=None) as batch_op:
        batch_op.drop_index('ix_pixel_events_shop_client')
        batch_op.drop_index('ix_pixel_events_shop_checkout')
        batch_op.drop_index('ix_pixel_events_received')

    op.drop_table('pixel_events')
