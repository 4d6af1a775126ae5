"""lean event indexes: what every stored webhook costs the database

Each delivery inserted an entry into ten indexes. Three held entries no query can use: whom an event is
about is NULL until it is handled, and a lease NULL until it is claimed, so the customer, email and lease
indexes become partial (NOT NULL; the queries that use them compare with = or IN, which implies it); the
index on the shop's domain alone repeats the first column of the unique (domain, topic, event id) key.
On PostgreSQL the new indexes are built CONCURRENTLY, so webhooks keep arriving while a large table is
indexed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from collections.abc import Sequence
from contextlib import nullcontext

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"
NEW = (
    ('ix_webhook_events_about_customer', ['shop_id', 'customer_id'], 'customer_id IS NOT NULL'),
    ('ix_webhook_events_about_email', ['shop_id', 'email'], 'email IS NOT NULL'),
    ('ix_webhook_events_leased', ['claimed_until'], f"{PENDING} AND claimed_until IS NOT NULL"),
)
OLD = (
    ('ix_webhook_events_shop_customer', ['shop_id', 'customer_id'], None),
    ('ix_webhook_events_shop_email', ['shop_id', 'email'], None),
    ('ix_webhook_events_pending_lease', ['claimed_until'], PENDING),
    ('ix_webhook_events_shop_domain', ['shop_domain'], None),
)


def upgrade() -> None:
    _swap(create=NEW, drop=OLD)


def downgrade() -> None:
    _swap(create=OLD, drop=NEW)


def _swap(create: Sequence[tuple[str, list[str], str | None]], drop: Sequence[tuple[str, list[str], str | None]]) -> None:
    postgresql = op.get_bind().dialect.name == 'postgresql'
    options = {'postgresql_concurrently': True} if postgresql else {}
    with op.get_context().autocommit_block() if postgresql else nullcontext():
        for name, columns, where in create:
            predicate = {'sqlite_where': sa.text(where), 'postgresql_where': sa.text(where)} if where else {}
            op.create_index(name, 'webhook_events', columns, if_not_exists=True, **predicate, **options)
        for name, _columns, _where in drop:
            op.drop_index(name, table_name='webhook_events', if_exists=True, **options)

