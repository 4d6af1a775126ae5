"""a shop's channel policy: frequency caps, quiet hours, budgets, regional channel orders, the growth threshold
and double opt-in, as the merchant set them (in `flows.policy`'s JSON form)

Every shop starts with none set: the defaults apply to existing shops as to new ones (at most 1 marketing
message per 16 hours and 5 per 7 days per contact; email 09:00-20:00, SMS and WhatsApp 10:00-20:00 in the
recipient's time). A merchant who wants otherwise says so with `chorus shops set` or the API.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.JSON(), server_default='{}', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('policy')

