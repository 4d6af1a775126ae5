"""Statements whose SQL differs per backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(dialect_name: str, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT (both backends have it; SQLAlchemy spells it per dialect)."""
    if dialect_name == "sqlite":
        return sqlite.insert(model)
    return postgresql.insert(model)
