"""Durations as flow definitions and merchants write them: "90d", "24h", "1d12h", "30m", "0s"."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """A non-negative duration from units d, h, m and s, largest first; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration such as 90d, 24h, 1d12h or 30m, got {text!r}")
    units = [u for _n, u in parts]
    if units != sorted(set(units), key="dhms".index):
        raise ValueError(f"each unit once, largest first (e.g. 1d12h), got {text!r}")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """The shortest spelling parse_duration reads back: 1d12h, 30m, 0s."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    text = ""
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            text += f"{count}{unit}"
    return text
