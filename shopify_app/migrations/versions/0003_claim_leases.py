"""claims with leases: a claimed event carries until when, by whom, and how often it was claimed

An event whose handling kills its worker (not an exception: a segfault, the out-of-memory killer) was
claimed again with its batch for ever. Its lease now runs out, it is claimed again alone, and after
`EVENT_MAX_CLAIMS` claims without finishing it is parked; so is a job. Existing events start unclaimed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('claims', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_webhook_events_pending_shop', ['shop_id', 'id'], unique=False,
                              sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_webhook_events_pending_lease', ['claimed_until'], unique=False,
                              sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_pending_lease')
        batch_op.drop_index('ix_webhook_events_pending_shop')
        batch_op.drop_column('claims')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claimed_until')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('claims')
