"""Statements whose SQL differs per backend."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, time
from decimal import Decimal
from typing import Any, cast

import orjson
import psycopg
from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Table,
    Text,
    any_,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator
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


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert rows (every row names the same columns, not `id`); returns their new ids, in order. On
    PostgreSQL the ids are taken from the table's sequence first and the rows sent with COPY (see
    `append_rows`); elsewhere one multi-row INSERT … RETURNING."""
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(returning, list(rows)).scalars())
    sequence = func.pg_get_serial_sequence(literal(table.name), literal("id"))
    ids = list(
        session.execute(select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))).scalars()
    )
    append_rows(session, table, [{"id": new_id, **row} for new_id, row in zip(ids, rows, strict=True)])
    return ids


def update_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Set each row's columns (every row names the same ones) where `id` is its "id". On PostgreSQL one
    statement whose rows come from one JSON document (`UPDATE … FROM json_to_recordset(…)`), whatever their
    number: written by orjson and parsed by the server, where arrays of text would be escaped value by value
    in Python. Elsewhere one statement with a parameter set per row."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        placeholders: dict[str, Any] = {name: bindparam(f"v_{name}") for name in columns}
        statement = update(table).where(table.c.id == bindparam("v_id")).values(placeholders)
        session.execute(statement, [{f"v_{name}": value for name, value in row.items()} for row in rows])
        return
    # A TypeDecorator's own conversion (if any), as a single value would have it.
    decorators: dict[str, TypeDecorator[Any]] = {}
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, TypeDecorator) and (
            type(column_type).process_bind_param is not TypeDecorator.process_bind_param
        ):
            decorators[name] = column_type
    if decorators:
        rows = [
            {**row, **{name: kind.process_bind_param(row[name], dialect) for name, kind in decorators.items()}}
            for row in rows
        ]
    document = bindparam("v_rows", dump_record_set(rows), type_=Text)
    given = (
        func.json_to_recordset(sql_cast(document, JSON))
        .table_valued(*(column(name, table.c[name].type) for name in ["id", *columns]))
        .render_derived(name="given", with_types=True)
    )
    session.execute(update(table).where(table.c.id == given.c.id).values({name: given.c[name] for name in columns}))


def dump_record_set(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the JSON array `json_to_recordset` reads: datetimes in ISO 8601, decimals as their digits."""
    try:
        return orjson.dumps(list(rows), default=_as_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, which the standard library writes
        return json.dumps(list(rows), default=_as_text)


def _as_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time):  # datetime included; orjson writes its own, json.dumps does not
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
