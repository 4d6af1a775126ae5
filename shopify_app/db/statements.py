"""Statements whose SQL differs per backend."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


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
