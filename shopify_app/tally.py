"""Counters that add up: what a worker run reports, per kind of work."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self


class Tally:
    """Mixed into a frozen dataclass of int fields: `a + b` adds them field by field."""

    def __add__(self, other: Self) -> Self:
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        values: dict[str, Any] = {name: getattr(self, name) + getattr(other, name) for name in names}
        return type(self)(**values)
