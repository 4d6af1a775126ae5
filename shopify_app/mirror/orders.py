"""Orders, from any sales channel (online store, POS, draft orders, other apps).

Webhooks and the store sync both arrive here as `OrderRecord`s. Only webhooks carry the checkout and
cart tokens that tie an order to its checkout; a synced order never erases them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col

from shopify_app.browsing.stitching import note_checkout
from shopify_app.contacts import Seen, observe
from shopify_app.events.context import MirrorWrite, WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.customers import customer_from_webhook, write_customer
from shopify_app.mirror.store import RowCache, is_newer, locked_row
from shopify_app.models import Customer, Order
from shopify_app.shopify.sync_queries import OrderLineRecord, OrderRecord


def on_order(ctx: WebhookContext) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled, orders/fulfilled: each carries the whole
    order."""
    payload = ctx.payload
    customer = write_customer(ctx.mirror, customer_from_webhook(fields.obj(payload, "customer")))
    record = order_from_webhook(payload)
    if customer is not None and record.email is None:
        record = replace(record, email=customer.email)
    write_order(
        ctx.mirror,
        record,
        checkout_token=fields.text(payload.get("checkout_token")),
        cart_token=fields.text(payload.get("cart_token")),
        fulfilled_by=ctx.observed_at,  # no fulfilment listed: when Shopify first said it was fulfilled
    )


def order_from_webhook(payload: dict[str, Any]) -> OrderRecord:
    order_id = fields.integer(fields.required(payload, "id"))
    assert order_id is not None
    fulfillment_status = fields.text(payload.get("fulfillment_status"))
    return OrderRecord(
        order_id=order_id,
        name=fields.text(payload.get("name")),
        customer_id=fields.integer(fields.obj(payload, "customer").get("id")),
        email=fields.email(payload.get("email")) or fields.email(payload.get("contact_email")),
        phone=fields.text(payload.get("phone")),
        source_name=fields.text(payload.get("source_name")),
        financial_status=fields.text(payload.get("financial_status")),
        fulfillment_status=fulfillment_status,
        fulfilled_at=_fulfilled_at(payload) if fulfillment_status == "fulfilled" else None,
        accepts_marketing=fields.flag(payload.get("buyer_accepts_marketing")),
        currency=fields.text(payload.get("currency")),  # the shop currency, as total_price is
        total_price=fields.amount(payload.get("total_price")),
        created_at=fields.instant(payload.get("created_at")),
        processed_at=fields.instant(payload.get("processed_at")),
        updated_at=fields.instant(payload.get("updated_at")),
        cancelled_at=fields.instant(payload.get("cancelled_at")),
        line_items=tuple(line_from_webhook(item) for item in fields.objects(payload, "line_items")),
    )


def line_from_webhook(item: dict[str, Any]) -> OrderLineRecord:
    """An order's or a checkout's line item, as webhooks carry it."""
    return OrderLineRecord(
        variant_id=fields.integer(item.get("variant_id")),
        product_id=fields.integer(item.get("product_id")),
        title=fields.text(item.get("title")),
        quantity=fields.integer(item.get("quantity")) or 0,
        price=fields.amount(item.get("price")),
    )


def write_order(
    write: MirrorWrite,
    record: OrderRecord,
    *,
    checkout_token: str | None = None,
    cart_token: str | None = None,
    fulfilled_by: datetime | None = None,
) -> None:
    """Take the order unless the one held is newer. A fully fulfilled order listing no fulfilment keeps the time
    it was first known fulfilled, else takes `fulfilled_by`: a later update must not push it back."""
    order = locked_row(
        write.session, Order, {"shop_id": write.shop_id, "order_id": record.order_id}, {"line_items": []}
    )
    if not is_newer(record.updated_at, order.updated_at):
        return
    order.name = record.name
    order.checkout_token = checkout_token or order.checkout_token
    order.cart_token = cart_token or order.cart_token
    order.customer_id = record.customer_id
    order.email = record.email
    order.phone = record.phone
    observe(write.session, write.shop_id, Seen(record.customer_id, (record.email,), (record.phone,)), write.now)
    note_checkout(write.session, write.shop_id, order.checkout_token)  # the storefront browsers it proves
    order.source_name = record.source_name
    order.financial_status = record.financial_status
    order.fulfillment_status = record.fulfillment_status
    fulfilled = record.fulfillment_status == "fulfilled"
    order.fulfilled_at = (record.fulfilled_at or order.fulfilled_at or fulfilled_by) if fulfilled else None
    order.buyer_accepts_marketing = (
        record.accepts_marketing if record.accepts_marketing is not None else order.buyer_accepts_marketing
    )
    order.currency = record.currency
    order.total_price = record.total_price
    order.line_items = [line_item_json(line) for line in record.line_items]
    order.created_at = record.created_at
    order.processed_at = record.processed_at
    order.updated_at = record.updated_at
    order.cancelled_at = record.cancelled_at
    if record.customer_id is not None and record.created_at is not None and record.cancelled_at is None:
        _note_last_order(write, record.customer_id, record.created_at)


def _note_last_order(write: MirrorWrite, customer_id: int, placed_at: datetime) -> None:
    """The customer's latest order time only moves forward (a lapse flow reads it through its index)."""
    cache = RowCache.of(write.session)
    held = cache.get(Customer, {"shop_id": write.shop_id, "customer_id": customer_id}) if cache else None
    if held is not None:
        if held.last_order_at is None or held.last_order_at < placed_at:
            held.last_order_at = placed_at
        return
    write.session.execute(
        update(Customer)
        .where(col(Customer.shop_id) == write.shop_id, col(Customer.customer_id) == customer_id)
        .where(or_(col(Customer.last_order_at).is_(None), col(Customer.last_order_at) < placed_at))
        .values(last_order_at=placed_at)
    )


def _fulfilled_at(payload: dict[str, Any]) -> datetime | None:
    """When a fully fulfilled order was last shipped: its latest fulfilment."""
    moments = [fields.instant(f.get("created_at")) for f in fields.objects(payload, "fulfillments")]
    return max((m for m in moments if m is not None), default=None)


def line_item_json(line: OrderLineRecord, variant_title: str | None = None) -> dict[str, Any]:
    """The part of a checkout or order line Chorus keeps, as JSON-safe values."""
    return {
        "variant_id": line.variant_id,
        "product_id": line.product_id,
        "title": line.title,
        "variant_title": variant_title,
        "quantity": line.quantity,
        "price": str(line.price) if line.price is not None else None,
    }
