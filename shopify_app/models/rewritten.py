"""Rows that webhooks rewrite over and over, most of each time with the values they already hold."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

_UNSET = object()


class Rewritten(SQLModel):
    """Assigning a column the value it already holds changes nothing: the row is not made dirty, so the
    flush neither writes the column nor visits the row. A checkout update rewrites two dozen fields of which
    one or two changed; every assignment through SQLModel and SQLAlchemy's instrumentation costs several
    microseconds, and a dirty row its share of the UPDATE.

    Equal means of the same type and equal (1 is not True, Decimal("1.0") not 1.0). As without it, a JSON
    value changed in place is not seen: assign a new one.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        held = self.__dict__.get(name, _UNSET)
        if held is not _UNSET and type(held) is type(value) and held == value:
            return
        super().__setattr__(name, value)
