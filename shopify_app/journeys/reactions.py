"""What each webhook means for journeys, run after the mirror took the delivery (same transaction).

A trigger enters subjects into flows; every change of an order, checkout or customer also moves the
journeys it touches, so a goal (an order, a completed checkout, an unsubscribe) ends them at once. A product's
update that makes a variant cheaper enough starts the price drop flows of the contacts who lately looked at it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from flows.consent import SHOPIFY_SOURCES
from flows.facts import MIN_PRICE_DROP, PRICE_DROP_WINDOW
from shopify_app.browsing.views import seen_prices
from shopify_app.db.statements import among
from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.store import RowCache, known_row
from shopify_app.models import ConsentRecord, Customer, Variant

# A subscription older than this when Chorus first hears of it is not a new subscriber.
NEW_SUBSCRIBER_WINDOW = timedelta(days=3)


def after_checkout(ctx: WebhookContext) -> None:
    """checkouts/create, checkouts/update: the checkout may enter its flows, or push its wait back."""
    if ctx.journeys is None:
        return
    token = str(fields.required(ctx.payload, "token"))
    ctx.journeys.trigger(ctx.session, ctx.shop, "checkout_changed", token, ctx.now, at=ctx.observed_at)
    _welcome_if_new(ctx, fields.integer(fields.obj(ctx.payload, "customer").get("id")))


def after_order(ctx: WebhookContext) -> None:
    """Any order topic: goals (an order, a cancellation, a refund) and waits on fulfilment; orders/paid starts
    the post-purchase flows."""
    if ctx.journeys is None:
        return
    payload = ctx.payload
    order_id = str(fields.integer(fields.required(payload, "id")))
    checkout_token = fields.text(payload.get("checkout_token"))
    customer_id = fields.integer(fields.obj(payload, "customer").get("id"))
    email = fields.email(payload.get("email")) or fields.email(fields.obj(payload, "customer").get("email"))
    subjects = [order_id, *([checkout_token] if checkout_token else [])]
    ctx.journeys.touch(ctx.session, ctx.shop, ctx.now, subjects=subjects, customer_id=customer_id, email=email)
    if ctx.event.topic == "orders/paid":
        ctx.journeys.trigger(ctx.session, ctx.shop, "order_paid", order_id, ctx.now, at=ctx.observed_at)
    _welcome_if_new(ctx, customer_id)


def after_customer(ctx: WebhookContext) -> None:
    """customers/create, customers/update and both consent topics: a first subscription starts the welcome
    flows; any consent change may end journeys (an unsubscribe is a goal)."""
    if ctx.journeys is None:
        return
    payload = ctx.payload
    raw_id = payload.get("customer_id") if ctx.event.topic.startswith("customers_email") else payload.get("id")
    customer = _customer(ctx, fields.integer(raw_id))
    if customer is None:
        return
    ctx.journeys.touch(
        ctx.session, ctx.shop, ctx.now,
        subjects=[str(customer.customer_id)], customer_id=customer.customer_id, email=customer.email,
    )  # fmt: skip
    _welcome_if_new(ctx, customer.customer_id)


def after_product(ctx: WebhookContext) -> None:
    """products/create, products/update: a variant now `MIN_PRICE_DROP` cheaper than the mirror's price when a
    known contact lately viewed it or added it to the cart starts the price drop flows for them (the store
    sync never does)."""
    if ctx.journeys is None:
        return
    variants = [v for v in (fields.integer(_obj(raw).get("id")) for raw in _list(ctx.payload.get("variants"))) if v]
    if not variants:
        return
    since = ctx.observed_at - PRICE_DROP_WINDOW
    # Storefront events are never written in a webhook's transaction: reading them needs no flush of the batch's
    # pending writes (which, once per product event, made a batch of webhooks 40% slower); and a shop none of
    # whose known shoppers viewed anything lately is asked once per transaction, not once per product.
    with ctx.session.no_autoflush:
        if not _any_seen(ctx.session, _shop_id(ctx)):
            return
        seen = seen_prices(ctx.session, _shop_id(ctx), variant_ids=variants, since=since)
    if not seen:
        return
    now = {
        variant_id: price
        for variant_id, price in ctx.session.execute(
            rows_of(col(Variant.variant_id), col(Variant.price))
            .where(col(Variant.shop_id) == ctx.shop.id, among(ctx.session, col(Variant.variant_id), variants))
        )
    }  # fmt: skip
    cheaper = sorted(
        {s.contact_id for s in seen if (p := now.get(s.variant_id)) is not None and p <= s.price * (1 - MIN_PRICE_DROP)}
    )
    for contact_id in cheaper:
        ctx.journeys.trigger(ctx.session, ctx.shop, "price_dropped", str(contact_id), ctx.now, at=ctx.observed_at)


def _any_seen(session: Session, shop_id: int) -> bool:
    """Whether any known shopper of the shop ever viewed or carted a variant (asked once per batch: the batch's
    session is its own, and storefront events are not written in it)."""
    asked: dict[int, bool] = session.info.setdefault("price_drop_any_seen", {})
    if shop_id not in asked:
        asked[shop_id] = bool(seen_prices(session, shop_id, limit=1))
    return asked[shop_id]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _shop_id(ctx: WebhookContext) -> int:
    assert ctx.shop.id is not None
    return ctx.shop.id


def _welcome_if_new(ctx: WebhookContext, customer_id: int | None) -> None:
    """Whichever delivery recorded a customer's first subscription (a consent webhook, a customer's, or the
    customer inside a checkout or an order), that subscription starts the flows of new subscribers."""
    customer = _customer(ctx, customer_id)
    if ctx.journeys is not None and customer is not None and _newly_subscribed(ctx, customer):
        subject = str(customer.customer_id)
        ctx.journeys.trigger(ctx.session, ctx.shop, "customer_subscribed", subject, ctx.now, at=ctx.observed_at)


def _customer(ctx: WebhookContext, customer_id: int | None) -> Customer | None:
    if customer_id is None:
        return None
    return known_row(ctx.session, Customer, {"shop_id": ctx.shop.id, "customer_id": customer_id})


def _newly_subscribed(ctx: WebhookContext, customer: Customer) -> bool:
    """This delivery recorded the customer's first email subscription ever, and it is recent.

    A customer the store sync found already subscribed has that subscription on record, so no later delivery
    counts as their first; nor does one that merely reports a years-old subscription.
    """
    if customer.email_consent_state != "subscribed":
        return False
    cache = RowCache.of(ctx.session)
    records = cache.subscriptions.get(customer.customer_id) if cache is not None else None
    if records is None:
        records = _subscriptions(ctx, customer.customer_id)
    if len(records) != 1:
        return False
    [(event_id, changed_at)] = records
    return event_id == ctx.event.id and changed_at >= ctx.observed_at - NEW_SUBSCRIBER_WINDOW


def _subscriptions(ctx: WebhookContext, customer_id: int) -> list[tuple[int | None, datetime]]:
    return list(
        ctx.session.exec(
            select(ConsentRecord.webhook_event_id, ConsentRecord.consent_updated_at).where(
                ConsentRecord.shop_id == ctx.shop.id,
                ConsentRecord.customer_id == customer_id,
                ConsentRecord.channel == "email",
                ConsentRecord.state == "subscribed",
                col(ConsentRecord.source).in_(SHOPIFY_SOURCES),  # the welcome follows Shopify's own record
            )
        )
    )
