"""Statements whose SQL differs per backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel


def dialect_insert(dialect_name: str, model: type[SQLModel]) -> Any:
    """A Core INSERT into the model's table that supports ON CONFLICT (SQLAlchemy spells it per dialect).

    Core rather than ORM: these statements run on hot paths and need none of the ORM's bookkeeping.
    """
    table = model.__table__  # type: ignore[attr-defined]
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)
