"""Alembic environment: runs against the URL (or connection) handed over by `shopify_app.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import shopify_app.models  # noqa: F401  registers every table on the metadata
from shopify_app.db.engine import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite alters tables by copying them
        compare_type=True,
    )
    if sqlite:
        # Copying a table drops the original: with foreign keys enforced, dropping `journeys` would delete
        # every message and decision (ON DELETE CASCADE). The pragma only takes outside a transaction.
        _sqlite_foreign_keys(connection, enforced=False)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"rows referring to nothing after the migration: {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, enforced=True)


def _sqlite_foreign_keys(connection: Connection, *, enforced: bool) -> None:
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        run(new_connection)
    engine.dispose()
