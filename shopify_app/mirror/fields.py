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
    return value


def integer(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PermanentEventError(f"expected an integer id, got {value!r}") from None


def amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PermanentEventError(f"expected a decimal amount, got {value!r}") from None


def instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_instant(str(value))
    except ValueError:
        raise PermanentEventError(f"expected an ISO-8601 time, got {value!r}") from None


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
