"""The migrations build exactly the schema the models describe, on both backends, and can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from tests.support.database import postgres_database, sqlite_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path):
    """An unmigrated database of each kind (separate from the shared, already migrated one)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        yield url
    else:
        with postgres_database() as url:  # comes migrated; start from nothing
            migrate.downgrade(url, "base")
            yield url


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(fresh_database: str) -> None:
    migrate.upgrade(fresh_database)
    engine = make_engine(fresh_database)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata
            )
            assert differences == []
        migrate.downgrade(fresh_database, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_the_shared_test_databases_are_at_head(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as url:
        engine = make_engine(url)
        with engine.connect() as connection:
            assert "webhook_events" in inspect(connection).get_table_names()
        engine.dispose()


def test_large_values_are_compressed_with_lz4_on_postgresql_and_back_to_the_default_when_undone(
    postgres_url: str,
) -> None:
    # A webhook body stored with pglz cost about 0.2 ms of PostgreSQL's CPU (most of an intake insert).
    compressed = text(
        "SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute"
        " WHERE attrelid::regclass::text IN ('webhook_events', 'messages', 'orders', 'checkouts', 'privacy_requests')"
        " AND attname IN ('body', 'payload', 'line_items', 'export')"
    )
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            methods = {(table, column): method for table, column, method in connection.execute(compressed)}
        assert methods == {
            ("webhook_events", "body"): "l", ("messages", "payload"): "l", ("orders", "line_items"): "l",
            ("checkouts", "line_items"): "l", ("privacy_requests", "export"): "l",
        }  # fmt: skip
        migrate.downgrade(postgres_url, "0005")
        with engine.connect() as connection:
            assert {method for _, _, method in connection.execute(compressed)} == {""}
    finally:
        migrate.upgrade(postgres_url)
        engine.dispose()
