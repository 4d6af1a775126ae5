"""channels per shop: each merchant's own SMS, WhatsApp and email provider accounts, what the providers'
callbacks say of a message after they accepted it, and the short links of messages with their clicks

One row per shop and channel, its secrets encrypted as one value. A shop gets a callback key (random,
not secret) when its first channel is connected: it names the shop in the providers' callback URLs.
Existing shops have none until then, and nothing they do changes. A message may now move on from sent to
delivered, read or undelivered: those count as live for the one-message-per-step rule, as sent does. A
shop keeps its money format (from its next shop/update or sync) so that prices read as the shop writes them.

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

LIVE_BEFORE = sa.text("status IN ('sending', 'sent', 'deferred', 'unknown')")
LIVE = sa.text("status IN ('sending', 'sent', 'deferred', 'unknown', 'delivered', 'read', 'undelivered')")


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
        batch_op.add_column(sa.Column('money_format', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_shops_callback_key'), ['callback_key'])
    op.create_table('delivery_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('error_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('received_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_delivery_receipts_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_receipts'))
    )
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_receipts_provider_message', ['shop_id', 'provider', 'provider_message_id'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index('uq_messages_live_step', sqlite_where=LIVE_BEFORE, postgresql_where=LIVE_BEFORE)
        batch_op.create_index('uq_messages_live_step', ['journey_id', 'step'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_table('whatsapp_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('last_inbound_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opted_in_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_whatsapp_windows_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_windows')),
    sa.UniqueConstraint('shop_id', 'phone', name=op.f('uq_whatsapp_windows_shop_id_phone'))
    )
    op.create_table('whatsapp_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_whatsapp_templates_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_templates')),
    sa.UniqueConstraint('shop_id', 'flow', 'step', name=op.f('uq_whatsapp_templates_shop_id_flow_step'))
    )
    op.create_table('links',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_links_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_links_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_links'))
    )
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_links_message_id'), ['message_id'], unique=False)
    op.create_table('clicks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('link_id', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('clicked_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_clicks_link_id_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_clicks_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_clicks_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clicks'))
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clicks_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_clicks_shop_clicked', ['shop_id', 'clicked_at'], unique=False)


def downgrade() -> None:
    op.drop_table('whatsapp_templates')
    op.drop_table('whatsapp_windows')
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_shop_clicked')
        batch_op.drop_index(batch_op.f('ix_clicks_message_id'))
    op.drop_table('clicks')
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_links_message_id'))
    op.drop_table('links')
    # Delivery statuses are sent again for the release before: it knew no later ones.
    op.execute("UPDATE messages SET status = 'sent' WHERE status IN ('delivered', 'read', 'undelivered')")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('uq_messages_live_step', sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('uq_messages_live_step', ['journey_id', 'step'], unique=True,
                              sqlite_where=LIVE_BEFORE, postgresql_where=LIVE_BEFORE)
        batch_op.drop_column('read_at')
        batch_op.drop_column('delivered_at')
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_receipts_provider_message')
    op.drop_table('delivery_receipts')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_shops_callback_key'), type_='unique')
        batch_op.drop_column('callback_key')
        batch_op.drop_column('money_format')

    op.drop_table('channel_accounts')
