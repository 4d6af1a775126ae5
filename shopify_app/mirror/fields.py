"""Reading fields out of Shopify's JSON payloads: tolerant of absent keys, strict where it matters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopify_app.clock import parse_instant
from shopify_app.events.context import PermanentEventError


def required(payload: dict[str, Any], key: str) -> Any:
    value = payload.get(key)
    if value is None or value == "":
        raise PermanentEventError(f"payload has no {key!r}")
    if isinstance(value, bool | list | dict):  # what a key is required for (an id, a token) is never one of these
        raise PermanentEventError(f"payload's {key!r} is not an id: {_quoted(value)}")
    return value


# Shopify's ids, and every integer the mirror keeps, are signed 64-bit (BIGINT).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def integer(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float) and not value.is_integer():
        raise PermanentEventError(f"expected an integer id, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise PermanentEventError(f"expected an integer id, got {_quoted(value)}") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise PermanentEventError(f"expected a 64-bit integer, got {_quoted(value)}")
    return number


def amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PermanentEventError(f"expected a decimal amount, got {_quoted(value)}") from None
    if not number.is_finite():  # NaN would poison every sum it enters
        raise PermanentEventError(f"expected a finite decimal amount, got {_quoted(value)}")
    return number


def instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_instant(str(value))
    except ValueError:
        raise PermanentEventError(f"expected an ISO-8601 time, got {_quoted(value)}") from None


def email(value: Any) -> str | None:
    text = str(value).strip().lower() if value else ""
    return text or None


def text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def obj(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def objects(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = payload.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _quoted(value: Any, limit: int = 100) -> str:
    """The value as the error names it: short enough for a log line however large the payload's value."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def flag(value: Any) -> bool | None:
    """A true/false field; anything else is as good as absent."""
    return value if isinstance(value, bool) else None
