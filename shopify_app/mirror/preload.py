"""What a batch of webhooks will write to the mirror, locked at once before any handler runs.

One statement or three per table for the whole batch (instead of two per row), in one order (table by
table, each in id order), so that two workers' batches never wait on each other in a cycle. The handlers
then find their rows in the session's `RowCache`. Keys are read with the handlers' own field readers; a
payload they cannot read is left to its handler, which says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from flows.consent import SHOPIFY_SOURCES
from shopify_app.db.statements import among
from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.customers import customer_from_webhook
from shopify_app.mirror.store import RowCache, lock_rows
from shopify_app.models import Checkout, ConsentRecord, Customer, Order, Product, Variant


@dataclass
class MirrorKeys:
    customers: set[int] = field(default_factory=set)
    checkouts: set[str] = field(default_factory=set)
    orders: set[int] = field(default_factory=set)
    products: set[int] = field(default_factory=set)  # with every variant they have
    variants: set[int] = field(default_factory=set)

    def add(self, topic: str, payload: dict[str, Any]) -> None:
        resource = topic.split("/", 1)[0]
        if resource in ("checkouts", "orders"):
            self._customer(customer_from_webhook(fields.obj(payload, "customer")))
            if resource == "checkouts":
                self.checkouts.add(str(fields.required(payload, "token")))
            else:
                self._some(self.orders, fields.integer(fields.required(payload, "id")))
        elif resource == "customers":
            self._customer(customer_from_webhook(payload))
        elif resource == "customers_email_marketing_consent":
            self._some(self.customers, fields.integer(payload.get("customer_id")))
        elif resource == "customers_marketing_consent":
            self._some(self.customers, fields.integer(payload.get("id")))
        elif resource == "products":
            self._some(self.products, fields.integer(fields.required(payload, "id")))
            for variant in fields.objects(payload, "variants"):
                self._some(self.variants, fields.integer(variant.get("id")))
        elif resource == "variants" and fields.integer(payload.get("product_id")) is not None:
            self._some(self.variants, fields.integer(payload.get("id")))

    def _customer(self, record: Any) -> None:
        if record is not None:
            self.customers.add(record.customer_id)

    @staticmethod
    def _some(into: set[Any], value: Any) -> None:
        if value is not None:
            into.add(value)


def preload(session: Session, contexts: Iterable[WebhookContext]) -> None:
    """Lock (creating them if missing) the mirror rows these deliveries will write, shop by shop."""
    by_shop: dict[int, MirrorKeys] = {}
    for ctx in contexts:
        keys = by_shop.setdefault(ctx.mirror.shop_id, MirrorKeys())
        with suppress(Exception):  # unreadable here is unreadable to its handler, which says why
            keys.add(ctx.event.topic, ctx.payload)
    for shop_id, keys in sorted(by_shop.items()):
        _preload_shop(session, shop_id, keys)


def _preload_shop(session: Session, shop_id: int, keys: MirrorKeys) -> None:
    lock_rows(session, Customer, shop_id, "customer_id", keys.customers)
    cache = RowCache.of(session) or RowCache.start(session)
    cache.subscriptions.update({customer_id: [] for customer_id in keys.customers})
    if keys.customers:
        for customer_id, event_id, at in session.exec(
            select(ConsentRecord.customer_id, ConsentRecord.webhook_event_id, ConsentRecord.consent_updated_at)
            .where(ConsentRecord.shop_id == shop_id, among(session, col(ConsentRecord.customer_id), keys.customers))
            .where(ConsentRecord.channel == "email", ConsentRecord.state == "subscribed")
            .where(col(ConsentRecord.source).in_(SHOPIFY_SOURCES))
        ):
            if customer_id is not None:
                cache.subscriptions[customer_id].append((event_id, at))
    lock_rows(session, Checkout, shop_id, "token", keys.checkouts, {"line_items": []})
    lock_rows(session, Order, shop_id, "order_id", keys.orders, {"line_items": []})
    lock_rows(session, Product, shop_id, "product_id", keys.products)
    lock_rows(session, Variant, shop_id, "variant_id", keys.variants, also=("product_id", keys.products))
    cache.complete |= {("variants_of", (shop_id, product_id)) for product_id in keys.products}
