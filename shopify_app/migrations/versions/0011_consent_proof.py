"""consent with proof: every consent record names the address it is for and its evidence, and its source is
one of `flows.consent.Source`; opt-ins awaiting confirmation by an emailed link (double opt-in)

Records written before name the webhook topic (or the sync) as their source: it becomes their evidence, their
source `shopify_webhook` or `reconciliation`, and their address the customer's email or phone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_confirmations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('opt_ins', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('created_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sending_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_consent_confirmations_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_confirmations')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_consent_confirmations_token_digest'))
    )
    with op.batch_alter_table('consent_confirmations', schema=None) as batch_op:
        batch_op.create_index('ix_consent_confirmations_shop_address', ['shop_id', 'address'], unique=False)

    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
        batch_op.add_column(sa.Column('evidence', sa.JSON(), nullable=True))
        batch_op.alter_column('customer_id',
               existing_type=sa.BIGINT(),
               nullable=True)
        batch_op.create_index('ix_consent_records_shop_address', ['shop_id', 'address'], unique=False)

    json_object = "json_build_object" if op.get_bind().dialect.name == "postgresql" else "json_object"
    op.execute(f"UPDATE consent_records SET evidence = {json_object}('topic', source)")
    op.execute(
        "UPDATE consent_records SET source = CASE WHEN source LIKE 'sync%' THEN 'reconciliation' "
        "ELSE 'shopify_webhook' END"
    )
    for channel, column in (("email", "email"), ("sms", "phone")):
        op.execute(
            f"UPDATE consent_records SET address = (SELECT c.{column} FROM customers c "
            "WHERE c.shop_id = consent_records.shop_id AND c.customer_id = consent_records.customer_id) "
            f"WHERE channel = '{channel}'"
        )


def downgrade() -> None:
    # Records of people Chorus knows by an address only cannot go back to a table keyed by customer.
    op.execute("DELETE FROM consent_records WHERE customer_id IS NULL")
    postgres = op.get_bind().dialect.name == "postgresql"
    topic = "evidence->>'topic'" if postgres else "json_extract(evidence, '$.topic')"
    op.execute(f"UPDATE consent_records SET source = COALESCE({topic}, source)")
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_records_shop_address')
        batch_op.alter_column('customer_id',
               existing_type=sa.BIGINT(),
               nullable=False)
        batch_op.drop_column('evidence')
        batch_op.drop_column('address')

    with op.batch_alter_table('consent_confirmations', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_confirmations_shop_address')

    op.drop_table('consent_confirmations')
