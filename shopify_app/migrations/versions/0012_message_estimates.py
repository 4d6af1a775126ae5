"""message estimates: what each message on a paid channel was priced at when it was decided, in its rates'
currency, so that the monthly budgets count messages still in flight (see `flows.budgets`)

Plain nullable columns (SQLite adds them in place, without rebuilding the table). Messages from before have
none: a budget counts them at their recorded cost, or, without one, at the price of the message it judges.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimate', shopify_app.db.types.Amount(precision=20, scale=4), nullable=True))
        batch_op.add_column(sa.Column('estimate_currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('estimate_currency')
        batch_op.drop_column('estimate')
