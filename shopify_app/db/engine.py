"""Engine creation with the per-backend settings that make concurrency safe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin)
        return engine
    # Parameters stay out of error messages and logs: they carry customer data.
    return create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control from the driver so that every transaction can start with
    # BEGIN IMMEDIATE: SQLite has one writer, and a deferred transaction that later writes
    # fails at once (no busy wait) when another process wrote in between.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout for it); read-only work
    # asks for DEFERRED (see `read_only`), which in WAL mode never waits for a writer.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def read_only(engine: Engine) -> Engine:
    """The engine for transactions that only read: on SQLite they then never wait for a writer."""
    return engine.execution_options(sqlite_begin="DEFERRED")
