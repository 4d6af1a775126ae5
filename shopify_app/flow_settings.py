"""A shop's choices about its flows: on or off, and how long to wait."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from flows import abandoned_checkout
from shopify_app.mirror.store import locked_row
from shopify_app.models import Shop, ShopFlow

KNOWN_FLOWS = frozenset({abandoned_checkout.NAME})


class UnknownFlow(ValueError):
    pass


class UnknownShop(ValueError):
    pass


def configure_flow(
    session: Session,
    domain: str,
    flow: str,
    *,
    enabled: bool | None = None,
    delay: timedelta | None = None,
    now: datetime,
) -> ShopFlow:
    if flow not in KNOWN_FLOWS:
        raise UnknownFlow(f"unknown flow {flow!r}; known: {', '.join(sorted(KNOWN_FLOWS))}")
    shop_id = session.exec(select(Shop.id).where(Shop.domain == domain)).first()
    if shop_id is None:
        raise UnknownShop(f"no shop {domain!r}; register it with `chorus shops add`")
    row = locked_row(session, ShopFlow, {"shop_id": shop_id, "flow": flow}, {"enabled": True, "updated_at": now})
    if enabled is not None:
        row.enabled = enabled
    if delay is not None:
        row.delay_seconds = int(delay.total_seconds())
    row.updated_at = now
    return row
