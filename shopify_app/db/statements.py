"""Statements whose SQL differs per backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import ARRAY, JSON, ColumnElement, Table, any_, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from shopify_app.db.engine import dump_json


def dialect_insert(dialect_name: str, model: type[SQLModel]) -> Any:
    """A Core INSERT into the model's table that supports ON CONFLICT (SQLAlchemy spells it per dialect).

    Core rather than ORM: these statements run on hot paths and need none of the ORM's bookkeeping.
    """
    table = model.__table__  # type: ignore[attr-defined]
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL as `column = ANY(:values)`, one array parameter: the statement's text
    is the same for any number of values, so neither SQLAlchemy nor the driver renders and parses a
    placeholder per value on each execution (a batch's lists run to hundreds)."""
    listed = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, listed, type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(listed))


def append_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows nothing reads back in this transaction (attempts, decisions). PostgreSQL takes them with
    COPY: several times faster than a multi-row INSERT, whose text SQLAlchemy renders and the driver parses
    placeholder by placeholder. Every row names the same columns."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    as_json = {name for name in columns if isinstance(table.c[name].type, JSON)}
    raw = connection.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([dump_json(row[c]) if c in as_json else row[c] for c in columns])
