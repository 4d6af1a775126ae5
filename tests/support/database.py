"""Test databases: a SQLite file and a private PostgreSQL schema, both migrated to head."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL, make_url, text
from sqlmodel import SQLModel

import shopify_app.models  # noqa: F401  registers the tables
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.settings import normalise_database_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return normalise_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL))


def require_postgres() -> bool:
    return os.environ.get("REQUIRE_POSTGRES") == "1"


def skip_or_fail_without_postgres(reason: str) -> None:
    if require_postgres():
        pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL variant skipped: {reason} (set TEST_DATABASE_URL, or REQUIRE_POSTGRES=1 to fail)")


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite:///{directory / 'chorus.db'}"
    migrate.upgrade(url)
    yield url


@contextmanager
def postgres_schema() -> Iterator[tuple[URL, str]]:
    """The test database's URL and a fresh, empty schema in it (named `chorus_test_<hex>`), dropped after."""
    base = make_url(postgres_base_url())
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        skip_or_fail_without_postgres(f"{base.render_as_string()} is unreachable: {exc}".strip())
    schema = f"chorus_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield base, schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh schema in the test database, so parallel runs never see each other's rows."""
    with postgres_schema() as (base, schema):
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url


def empty_all_tables(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            tables = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    connection.execute(text(f"DELETE FROM {name}"))  # noqa: S608  names come from our metadata
    finally:
        engine.dispose()
