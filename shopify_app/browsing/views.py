"""Which product views show interest: a product a known contact viewed twice (within `REPEAT_WITHIN`), or
stayed on (the browser's next page came `DWELL` or more later), and did not add to the cart, nor followed
with a checkout, afterwards. The browse abandonment flow's sweep enters on them; its facts read them again
before the send. And the mirror's price each contact last saw a variant at (`seen_prices`), that a price drop
is measured against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Table
from sqlalchemy import select as rows_of
from sqlmodel import Session

from shopify_app.browsing.stitching import CHECKOUT_EVENTS
from shopify_app.db.statements import among
from shopify_app.models import PixelEvent

DWELL = timedelta(seconds=30)  # this long on a product page before the next page is interest
REPEAT_WITHIN = timedelta(days=7)  # a second view of the product within this long is interest
PAGE_VIEWS = ("page_viewed", "product_viewed")  # what ends the time on a page
ADDED = "product_added_to_cart"
INTEREST_EVENTS = (*PAGE_VIEWS, ADDED, *CHECKOUT_EVENTS)
_EVENTS: Table = PixelEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StorefrontEvent:
    id: int
    name: str
    client_id: str
    product_id: int | None
    variant_id: int | None
    occurred_at: datetime


@dataclass(frozen=True)
class InterestedView:
    event_id: int
    product_id: int
    variant_id: int | None
    viewed_at: datetime


def interested_views(events: Sequence[StorefrontEvent]) -> list[InterestedView]:
    """One contact's views that show interest and were not answered by an addition of the product to the cart
    or by a checkout, in the order they happened."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    found: list[InterestedView] = []
    for index, view in enumerate(ordered):
        if view.name != "product_viewed" or view.product_id is None:
            continue
        later = ordered[index + 1 :]
        if any(e.name in CHECKOUT_EVENTS or (e.name == ADDED and e.product_id == view.product_id) for e in later):
            continue
        repeated = any(
            e.name == "product_viewed" and e.product_id == view.product_id
            and e.occurred_at >= view.occurred_at - REPEAT_WITHIN
            for e in ordered[:index]
        )  # fmt: skip
        following = next((e for e in later if e.client_id == view.client_id and e.name in PAGE_VIEWS), None)
        stayed = following is not None and following.occurred_at - view.occurred_at >= DWELL
        if repeated or stayed:
            found.append(InterestedView(view.id, view.product_id, view.variant_id, view.occurred_at))
    return found


def interested_views_of(session: Session, shop_id: int, contact_ids: Sequence[int]) -> dict[int, list[InterestedView]]:
    """`interested_views` of each contact, from their browsers' stored events."""
    if not contact_ids:
        return {}
    e = _EVENTS.c
    events: dict[int, list[StorefrontEvent]] = defaultdict(list)
    for event_id, contact_id, name, client_id, product_id, variant_id, occurred_at in session.execute(
        rows_of(e.id, e.contact_id, e.name, e.client_id, e.product_id, e.variant_id, e.occurred_at)
        .where(e.shop_id == shop_id, among(session, e.contact_id, sorted(set(contact_ids))))
        .where(e.name.in_(INTEREST_EVENTS))
    ):
        events[contact_id].append(StorefrontEvent(event_id, name, client_id, product_id, variant_id, occurred_at))
    return {contact_id: interested_views(held) for contact_id, held in events.items()}


PRICED_EVENTS = ("product_viewed", ADDED)  # what a later price drop is measured against


@dataclass(frozen=True)
class SeenPrice:
    contact_id: int
    variant_id: int
    product_id: int | None
    price: Decimal  # the mirror's, when the event came
    seen_at: datetime


def seen_prices(
    session: Session,
    shop_id: int,
    *,
    contact_ids: Sequence[int] | None = None,
    variant_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[SeenPrice]:
    """For each contact and variant (of these contacts, these variants), the mirror's price at their latest view
    of it or addition of it to the cart (since `since`), latest first."""
    e = _EVENTS.c
    query = (
        rows_of(e.contact_id, e.variant_id, e.product_id, e.mirror_price, e.occurred_at)
        .where(e.shop_id == shop_id, e.contact_id.is_not(None), e.variant_id.is_not(None))
        .where(e.name.in_(PRICED_EVENTS), e.mirror_price.is_not(None))
        .order_by(e.occurred_at.desc(), e.id.desc())
    )
    if contact_ids is not None:
        query = query.where(among(session, e.contact_id, sorted(set(contact_ids))))
    if variant_ids is not None:
        query = query.where(among(session, e.variant_id, sorted(set(variant_ids))))
    if since is not None:
        query = query.where(e.occurred_at >= since)
    if limit is not None:
        query = query.limit(limit)
    found: dict[tuple[int, int], SeenPrice] = {}
    for contact_id, variant_id, product_id, price, at in session.execute(query):
        found.setdefault((contact_id, variant_id), SeenPrice(contact_id, variant_id, product_id, price, at))
    return list(found.values())
