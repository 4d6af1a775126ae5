"""Flows started by what known shoppers did on the storefront, once enough time passed: an addition to cart
with no checkout after it (abandoned cart), a product viewed with interest and not added to the cart, with no
checkout after it (browse abandonment: `shopify_app.browsing.views`).

Like the lapse sweeps, each shop's flow remembers up to which instant storefront events were looked at
(`ShopFlow.swept_until`, over when Chorus received them), so that each event is looked at once, when it
becomes `after` old. Only events of browsers proven to be a contact's count; one followed by a checkout event
of the same contact is left out here, and every other goal (a checkout webhook, an order) is checked by the
flow at entry and before the send. A flow switched on starts its watermark then: no blast to the backlog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Table, exists
from sqlalchemy import select as rows_of
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from flows.definition import FlowDefinition
from shopify_app.browsing.stitching import CHECKOUT_EVENTS
from shopify_app.browsing.views import interested_views_of
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.journeys.store import JourneyRows
from shopify_app.journeys.tuning import load_tuning
from shopify_app.mirror.store import locked_row
from shopify_app.models import PixelEvent, Shop, ShopFlow

BATCH = 200  # events looked at per transaction
_EVENTS: Table = PixelEvent.__table__  # type: ignore[attr-defined]


def _interested(session: Session, shop_id: int, contact_ids: Sequence[int]) -> set[int]:
    return {view.event_id for views in interested_views_of(session, shop_id, contact_ids).values() for view in views}


@dataclass(frozen=True)
class BrowseSweep:
    """A browse trigger: the storefront event that starts it, those that, coming after it, mean it did not,
    and (where not every such event starts it) which of the contacts' events do, by id."""

    starts: str
    answers: tuple[str, ...]
    keep: Callable[[Session, int, Sequence[int]], set[int]] | None = None


BROWSE_SWEEPS: Mapping[str, BrowseSweep] = {
    "cart_abandoned": BrowseSweep("product_added_to_cart", CHECKOUT_EVENTS),
    "product_browsed": BrowseSweep("product_viewed", CHECKOUT_EVENTS, keep=_interested),
}


def sweep_carts(db: Engine, hooks: JourneyHooks, now: datetime) -> int:
    """Enter every contact whose storefront event became a browse flow's `after` old since the last sweep,
    with nothing after it that answers it."""
    flows = [d for event in BROWSE_SWEEPS for d in hooks.catalog.triggered_by(event)]
    if not flows:
        return 0
    with Session(db) as session:
        shop_ids = list(session.exec(select(Shop.id).where(Shop.installed == True)))  # noqa: E712
    entered = 0
    for shop_id in shop_ids:
        assert shop_id is not None
        for definition in flows:
            while (batch := _sweep_batch(db, hooks, shop_id, definition, now)) is not None:
                entered += batch
    return entered


def _sweep_batch(
    db: Engine, hooks: JourneyHooks, shop_id: int, definition: FlowDefinition, now: datetime
) -> int | None:
    """One batch of events; None once the shop's watermark has reached the threshold."""
    after = definition.trigger.after
    assert after is not None
    sweep = BROWSE_SWEEPS[definition.trigger.event]
    threshold = now - after
    with Session(db, expire_on_commit=False) as session, session.begin():
        shop = session.get(Shop, shop_id)
        if shop is None or not load_tuning(session, shop_id, definition).enabled:
            return None
        row = locked_row(
            session, ShopFlow, {"shop_id": shop_id, "flow": definition.name},
            {"enabled": definition.default_enabled, "steps": {}, "updated_at": now},
        )  # fmt: skip
        # Events from the (latest) install on: none of a time when Chorus was uninstalled.
        since_install = (shop.installed_at or now) - after
        if row.swept_until is None or (shop.installed_at is not None and row.swept_until < since_install):
            row.swept_until = since_install
        if row.swept_until >= threshold:
            return None
        e = _EVENTS.c
        later = aliased(_EVENTS)
        answered = exists().where(
            later.c.shop_id == e.shop_id, later.c.contact_id == e.contact_id, later.c.name.in_(sweep.answers),
            later.c.occurred_at >= e.occurred_at,
        )  # fmt: skip
        query = (
            rows_of(e.id, e.contact_id, e.occurred_at, e.received_at)
            .where(e.shop_id == shop_id, e.name == sweep.starts, e.contact_id.is_not(None), ~answered)
            .where(e.received_at > row.swept_until, e.received_at <= threshold)
            .order_by(e.received_at, e.id)
        )
        found = session.execute(query.limit(BATCH)).all()
        if len(found) == BATCH:
            # Take every event of the last instant, so that the watermark can move past it.
            last = found[-1].received_at
            found = session.execute(query.where(e.received_at <= last)).all()
            row.swept_until = last
        else:
            row.swept_until = threshold
        if sweep.keep is not None and found:
            kept = sweep.keep(session, shop_id, sorted({contact_id for _id, contact_id, _o, _r in found}))
            found = [event for event in found if event.id in kept]
        crossings: dict[str, datetime] = {}
        for _event_id, contact_id, occurred_at, _received_at in found:
            subject = str(contact_id)
            crossings[subject] = max(crossings.get(subject, occurred_at), occurred_at)  # the latest one
        rows = JourneyRows(session)
        entered = hooks.enter_many(rows, shop, definition, crossings, now)
        rows.write()
        return entered
