"""hand-over begun: when a message's hand-over began

A worker killed after committing a batch of messages as sending, but before handing them over, left every
one of them unknown, never sent again, though none had left. Each group of hand-overs now notes when it
began; a message whose lease ran out before that is tried again. Messages of earlier releases have none:
those still sending are treated as before (unknown).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shopify_app.db.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handed_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
    # A message sending at the upgrade may be mid-hand-over in a worker of the old release: it may have left.
    op.execute("UPDATE messages SET handed_at = lease_until WHERE status = 'sending'")


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('handed_at')
