"""Flows started by time passing: a customer whose last order becomes `after` old (winback).

Each shop's flow remembers up to which instant crossings were looked at (`ShopFlow.swept_until`). A sweep
reads, through the index on `last_order_at`, only the customers whose last order crossed the threshold
since then, so its cost follows the customers who newly cross it, not the size of the shop. A flow that
is switched on starts its watermark at that moment: no blast to the whole backlog.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from flows.definition import FlowDefinition
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.journeys.store import JourneyRows
from shopify_app.journeys.tuning import load_tuning
from shopify_app.mirror.store import locked_row
from shopify_app.models import Customer, Shop, ShopFlow

BATCH = 200  # customers entered per transaction


def sweep_lapses(db: Engine, hooks: JourneyHooks, now: datetime) -> int:
    """Enter every customer whose last order crossed a lapse flow's threshold since the last sweep."""
    entered = 0
    flows = hooks.catalog.triggered_by("order_lapsed")
    if not flows:
        return 0
    with Session(db) as session:
        shop_ids = list(session.exec(select(Shop.id).where(Shop.installed == True)))  # noqa: E712
    for shop_id in shop_ids:
        assert shop_id is not None
        for definition in flows:
            while (batch := _sweep_batch(db, hooks, shop_id, definition, now)) is not None:
                entered += batch
    return entered


def _sweep_batch(
    db: Engine, hooks: JourneyHooks, shop_id: int, definition: FlowDefinition, now: datetime
) -> int | None:
    """One batch of crossings; None once the shop's watermark has reached the threshold."""
    assert definition.trigger.after is not None
    threshold = now - definition.trigger.after
    with Session(db, expire_on_commit=False) as session, session.begin():
        shop = session.get(Shop, shop_id)
        if shop is None or not load_tuning(session, shop_id, definition).enabled:
            return None
        row = locked_row(
            session, ShopFlow, {"shop_id": shop_id, "flow": definition.name},
            {"enabled": definition.default_enabled, "steps": {}, "updated_at": now},
        )  # fmt: skip
        # Crossings from the (latest) install on: none of a time when Chorus was uninstalled.
        since_install = (shop.installed_at or now) - definition.trigger.after
        if row.swept_until is None or (shop.installed_at is not None and row.swept_until < since_install):
            row.swept_until = since_install
        if row.swept_until >= threshold:
            return None
        crossed = list(
            session.exec(
                select(Customer)
                .where(Customer.shop_id == shop_id)
                .where(col(Customer.last_order_at) > row.swept_until, col(Customer.last_order_at) <= threshold)
                .order_by(col(Customer.last_order_at), col(Customer.customer_id))
                .limit(BATCH)
                .with_for_update()
            )
        )
        if len(crossed) == BATCH:
            # Take every customer of the last instant, so that the watermark can move past it.
            last = crossed[-1].last_order_at
            seen = {c.customer_id for c in crossed}
            crossed += [
                c
                for c in session.exec(
                    select(Customer)
                    .where(Customer.shop_id == shop_id, Customer.last_order_at == last)
                    .with_for_update()
                )
                if c.customer_id not in seen
            ]
            row.swept_until = last
        else:
            row.swept_until = threshold
        crossings = {str(c.customer_id): c.last_order_at + definition.trigger.after for c in crossed if c.last_order_at}
        rows = JourneyRows(session)
        entered = hooks.enter_many(rows, shop, definition, crossings, now)
        rows.write()
        return entered
