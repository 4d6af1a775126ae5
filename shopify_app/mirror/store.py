"""Row access for the mirror: lock (or create) a row, and decide whether incoming data is newer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, select

from shopify_app.db.statements import dialect_insert

M = TypeVar("M", bound=SQLModel)


def locked_row(session: Session, model: type[M], key: dict[str, Any], defaults: dict[str, Any] | None = None) -> M:
    """The row with `key`, created if missing, locked until the transaction ends.

    Insert-if-absent first, then select for update: two workers racing on a new row both end up
    holding the same row in turn instead of one failing on the unique key.
    """
    query = select(model).filter_by(**key).with_for_update()
    row = session.exec(query).first()
    if row is None:
        dialect = session.get_bind().dialect.name
        session.execute(dialect_insert(dialect, model).values(**key, **(defaults or {})).on_conflict_do_nothing())
        row = session.exec(query).one()
    return row


def is_newer(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether data versioned `incoming` may replace data versioned `stored`.

    Equal versions may: a repeat carries the same data. Unversioned data never replaces versioned data.
    """
    if stored is None:
        return True
    if incoming is None:
        return False
    return incoming >= stored
