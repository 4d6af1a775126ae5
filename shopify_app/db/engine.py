"""Engine creation with the per-backend settings that make concurrency safe."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.pool import ConnectionPoolEntry

# What may sit between Chorus and PostgreSQL (`DATABASE_POOLER`). The choice travels inside the database URL,
# under a query key that only `make_engine` reads (and removes before connecting): every engine is built from
# the URL alone, the runtime's as well as alembic's in `chorus db upgrade`, so none can be built without it.
POOLERS = ("none", "pgbouncer")
POOLER_QUERY_KEY = "chorus_pooler"


def with_pooler(url: str, pooler: str) -> str:
    """The URL `make_engine` connects through `pooler` with (`none`: the URL unchanged)."""
    if pooler not in POOLERS:
        raise ValueError(f"expected one of {', '.join(POOLERS)}, got {pooler!r}")
    if pooler == "none":
        return url
    return make_url(url).update_query_dict({POOLER_QUERY_KEY: pooler}).render_as_string(hide_password=False)


def dump_json(value: Any) -> str:
    """JSON as Chorus stores it (orjson, the standard library for what orjson cannot write)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson cannot write (an integer beyond 64 bits), the standard library may
        return json.dumps(value)


# Any run of this many digits may be an integer orjson cannot hold exactly (beyond 64 bits it gives a float).
_LONG_NUMBER = b"0" * 19
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))  # each digit -> "0", the rest " "
_LONG_NUMBER_TEXT = re.compile("[0-9]{19}")


def load_json(value: str | bytes | float) -> Any:
    """JSON as orjson reads it, where that is exact; else as the standard library does. orjson turns an
    integer beyond 64 bits into a float (the standard library keeps it, so a value out of range is reported
    as sent), and what orjson refuses the standard library reads or refuses with its own message."""
    if isinstance(value, int | float):  # SQLite's numeric affinity made a bare number of a JSON column a number
        return value
    exact = (
        _LONG_NUMBER_TEXT.search(value) is None
        if isinstance(value, str)
        else _LONG_NUMBER not in value.translate(_DIGITS_ONLY)
    )
    if exact:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return json.loads(value)


# JSON columns (order and checkout lines, journeys' steps) are read and written on every event: orjson is
# several times faster than the standard library at both.
_JSON = {"json_serializer": dump_json, "json_deserializer": load_json}


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin)
        return engine
    parsed = make_url(url)
    pooler = parsed.query.get(POOLER_QUERY_KEY, "none")
    if pooler not in POOLERS:
        raise ValueError(f"{POOLER_QUERY_KEY}: expected one of {', '.join(POOLERS)}, got {pooler!r}")
    connect_args: dict[str, Any] = {}
    if pooler == "pgbouncer":
        # Transaction pooling hands each transaction whichever server connection is free, so nothing may
        # outlive a transaction on the server. psycopg would prepare a statement run often enough
        # (`prepare_threshold`, 5 by default) and use it by name in later transactions: on another server
        # connection it does not exist, on a shared one another client's `_pg3_0` already does. PgBouncer
        # before 1.21 (Debian 12 ships 1.18) cannot keep track of them, so psycopg never prepares any.
        # Nothing else in Chorus needs a session across transactions: no session-level SET, advisory lock,
        # LISTEN or temporary table; `FOR UPDATE SKIP LOCKED` locks and `yield_per`'s server-side cursor
        # (DECLARE without HOLD) end with their transaction.
        connect_args["prepare_threshold"] = None
    # SQLAlchemy's own pool stays as it is behind PgBouncer: a client connection held open costs PgBouncer
    # little and no PostgreSQL backend (those are shared per transaction), while `NullPool` would pay a TCP
    # (often TLS) handshake and an authentication on every checkout. Pre-ping still notices connections
    # PgBouncer closed (`client_idle_timeout`, a restart).
    # Parameters stay out of error messages and logs: they carry customer data.
    engine = create_engine(
        parsed.difference_update_query([POOLER_QUERY_KEY]),
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args=connect_args,
        **_JSON,
    )
    if pooler == "none":
        event.listen(engine, "connect", _plan_each_execution)
    return engine


def _plan_each_execution(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # A statement psycopg has prepared keeps its parse, but is planned for the values it runs with: a generic
    # plan, chosen without them, reads a batch's `= ANY(:ids)` lists (see `among`) at up to three times the
    # cost. (Behind PgBouncer nothing is prepared, so every plan is custom already.)
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


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
