"""Taking in what a shop's web pixel sends: validated field by field, deduplicated, stored in one statement.

Nothing in a pixel request is signed: a browser (or anyone) may send anything. So every event is checked
against the shape Chorus uses and reduced to it (invalid ones are dropped and counted), an event's id is only a
deduplication key, its price is never believed (the mirror's price at the time is stored instead), and nothing
in it identifies a person: an email inside an event is not even kept. A browser is linked to a contact only by
proof (`browsing.stitching`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlmodel import Session, col, select

from shopify_app.browsing.stitching import browsers_of, stitch
from shopify_app.db.statements import dialect_insert
from shopify_app.models import PixelEvent, Variant

_EVENTS: Table = PixelEvent.__table__  # type: ignore[attr-defined]

MAX_EVENTS = 20
MAX_BODY = 64 * 1024
NAMES = frozenset({
    "page_viewed", "product_viewed", "collection_viewed", "search_submitted", "product_added_to_cart",
    "product_removed_from_cart", "cart_viewed", "checkout_started", "checkout_completed",
})  # fmt: skip
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GID = re.compile(r"(?:gid://shopify/[A-Za-z]+/)?(\d{1,19})")
# A browser's clock may be wrong; an event much older or later than its arrival is not one Chorus can place.
TOO_OLD = timedelta(days=2)
TOO_NEW = timedelta(hours=1)


class TooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Parsed:
    events: list[dict[str, Any]]
    dropped: int


@dataclass
class Received:
    """What one request brought: events stored, duplicates of ones already stored, invalid ones dropped."""

    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    client_ids: set[str] = field(default_factory=set)


def parse_body(body: bytes, now: datetime) -> Parsed:
    """The valid events of a request body (JSON, whatever its content type says), each reduced to the columns
    kept; raises TooLarge over the limits, ValueError when the body is no `{"events": [...]}` object."""
    if len(body) > MAX_BODY:
        raise TooLarge(f"over {MAX_BODY} bytes")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not JSON") from exc
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise ValueError('expected {"events": [...]}')
    if len(events) > MAX_EVENTS:
        raise TooLarge(f"over {MAX_EVENTS} events")
    valid = [e for e in (_event(raw, now) for raw in events) if e is not None]
    unique = list({e["event_id"]: e for e in valid}.values())  # one request repeating an event stores it once
    return Parsed(unique, len(events) - len(valid))


def store(session: Session, shop_id: int, parsed: Parsed, now: datetime) -> Received:
    """Store the events not stored before, with the mirror's price of the variants they name."""
    received = Received(dropped=parsed.dropped, client_ids={e["client_id"] for e in parsed.events})
    if not parsed.events:
        return received
    prices = _mirror_prices(session, shop_id, [e["variant_id"] for e in parsed.events if e["variant_id"]])
    linked = browsers_of(session, shop_id, received.client_ids)  # browsers already proven to be someone's
    rows = [{**e, "shop_id": shop_id, "received_at": now, "mirror_price": prices.get(e["variant_id"] or 0),
             "contact_id": linked.get(e["client_id"])} for e in parsed.events]  # fmt: skip
    inserted = session.execute(
        dialect_insert(session.get_bind().dialect.name, PixelEvent)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["shop_id", "event_id"])
        .returning(_EVENTS.c.id)
    ).all()
    received.stored = len(inserted)
    received.duplicates = len(rows) - len(inserted)
    tokens = {e["checkout_token"] for e in parsed.events if e["checkout_token"]}
    if tokens:  # the checkout's signed webhook may have come first
        stitch(session, shop_id, tokens, now)
    return received


def _event(raw: Any, now: datetime) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    event_id, name, client_id = raw.get("id"), raw.get("name"), raw.get("clientId")
    if not (_text_matching(event_id, _ID) and name in NAMES and _text_matching(client_id, _ID)):
        return None
    occurred = _instant(raw.get("timestamp"))
    if occurred is None or not now - TOO_OLD <= occurred <= now + TOO_NEW:
        return None
    data = _obj(raw.get("data"))
    product_id, variant_id = _merchandise(name, data)
    token = _checkout_token(data) if name in ("checkout_started", "checkout_completed") else None
    if name in ("checkout_started", "checkout_completed") and token is None:
        return None  # all a checkout event is kept for
    if name == "product_viewed" and variant_id is None and product_id is None:
        return None
    kept: dict[str, Any] = {}
    if isinstance(data.get("url"), str):
        kept["path"] = _printable(data["url"].split("?", 1)[0].split("#", 1)[0])[:300]
    query = _obj(data.get("searchResult")).get("query")
    if name == "search_submitted" and isinstance(query, str):
        kept["query"] = _printable(query)[:100]
    quantity = _cart_line(data).get("quantity")
    if isinstance(quantity, int) and not isinstance(quantity, bool) and 0 < quantity < 10_000:
        kept["quantity"] = quantity
    collection_id = _shopify_id(_obj(data.get("collection")).get("id"))
    if name == "collection_viewed" and collection_id is not None:
        kept["collection_id"] = collection_id
    return {"event_id": event_id, "name": name, "client_id": client_id, "occurred_at": occurred,
            "product_id": product_id, "variant_id": variant_id, "checkout_token": token, "data": kept}  # fmt: skip


def _merchandise(name: str, data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The product and variant an event names: the viewed variant, or the cart line's merchandise."""
    if name == "product_viewed":
        variant = data.get("productVariant")
    elif name in ("product_added_to_cart", "product_removed_from_cart"):
        variant = _cart_line(data).get("merchandise")
    else:
        return None, None
    if not isinstance(variant, dict):
        return None, None
    return _shopify_id(_obj(variant.get("product")).get("id")), _shopify_id(variant.get("id"))


def _cart_line(data: Mapping[str, Any]) -> dict[str, Any]:
    return _obj(data.get("cartLine"))


def _checkout_token(data: Mapping[str, Any]) -> str | None:
    token = _obj(data.get("checkout")).get("token")
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


def _printable(text: str) -> str:
    """Without control characters (a NUL is no text PostgreSQL stores)."""
    return _CONTROL.sub("", text)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shopify_id(value: Any) -> int | None:
    """A Shopify id as the pixel gives it: a number, digits, or a GID."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and (found := _GID.fullmatch(value)):
        number = int(found.group(1))
        return number if 0 < number < 2**63 else None
    return None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text_matching(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _mirror_prices(session: Session, shop_id: int, variant_ids: Sequence[int]) -> dict[int, Decimal]:
    if not variant_ids:
        return {}
    rows = session.exec(
        select(Variant.variant_id, col(Variant.price)).where(
            Variant.shop_id == shop_id, col(Variant.variant_id).in_(sorted(set(variant_ids)))
        )
    )
    return {variant_id: price for variant_id, price in rows if price is not None}
