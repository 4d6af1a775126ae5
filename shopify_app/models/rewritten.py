"""Rows that webhooks rewrite over and over, most of each time with the values they already hold."""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import flag_modified, instance_state, manager_of_class
from sqlmodel import SQLModel

_UNSET = object()


class Rewritten(SQLModel):
    """Assigning a column the value it already holds changes nothing: the row is not made dirty, so the
    flush neither writes the column nor visits the row. A checkout update rewrites two dozen fields of which
    one or two changed; every assignment through SQLModel and SQLAlchemy's instrumentation costs several
    microseconds, and a dirty row its share of the UPDATE.

    Equal means of the same type and equal (1 is not True, Decimal("1.0") not 1.0); a string enumeration is
    held as its plain string. As without it, a JSON value changed in place is not seen: assign a new one.

    When a flush writes many rows of one table, each row writes every column any of them changed (see
    `_one_update_per_table`).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, StrEnum):
            value = value.value  # as the database gives it back: a state set again is not a change
        held = self.__dict__.get(name, _UNSET)
        if held is not _UNSET and type(held) is type(value) and held == value:
            return
        column = _columns(type(self)).get(name)
        if column is None:
            super().__setattr__(name, value)
            return
        # What SQLModel does for a column, without its checks on every assignment: SQLAlchemy's instrumented
        # set (history, the row made dirty, the value into __dict__), then the field noted as set, as Pydantic
        # does for a model field.
        column.set(instance_state(self), self.__dict__, value, None)
        self.__pydantic_fields_set__.add(name)


_COLUMNS: dict[type[Rewritten], dict[str, Any]] = {}


def _columns(model: type[Rewritten]) -> dict[str, Any]:
    """The model's fields that are mapped columns -> SQLAlchemy's attribute implementation of each."""
    found = _COLUMNS.get(model)
    if found is None:
        manager = manager_of_class(model)
        found = {name: manager[name].impl for name in model.model_fields if name in manager}
        if any(impl is None for impl in found.values()):
            return {}  # the mapper is not configured yet (the first row is being made): SQLModel's way for now
        _COLUMNS[model] = found
    return found


@event.listens_for(Session, "before_flush")
def _one_update_per_table(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    """The rows of a table that changed different columns would each be a statement of its own; written with
    the same columns (the union of what they changed, unchanged ones with the value they hold), they are one
    statement with many parameter sets. A batch of webhooks changes hundreds of rows a few columns each."""
    changed: dict[type[Rewritten], list[tuple[Any, set[str]]]] = defaultdict(list)
    for instance in session.dirty:
        if isinstance(instance, Rewritten):
            state = inspect(instance)
            if state.committed_state:
                changed[type(instance)].append((instance, set(state.committed_state)))
    for rows in changed.values():
        if len(rows) < 2:
            continue
        columns = set().union(*(keys for _, keys in rows))
        for instance, keys in rows:
            for key in columns - keys:
                if key in instance.__dict__:
                    flag_modified(instance, key)
