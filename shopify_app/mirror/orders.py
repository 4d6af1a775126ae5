"""Orders, from any sales channel (online store, POS, draft orders, other apps).

Webhooks and the store sync both arrive here as `OrderRecord`s. Only webhooks carry the checkout and
cart tokens that tie an order to its checkout; a synced order never erases them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shopify_app.events.context import MirrorWrite, WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.customers import customer_from_webhook, write_customer
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import Order
from shopify_app.shopify.sync_queries import OrderLineRecord, OrderRecord


def on_order(ctx: WebhookContext) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled: each carries the whole order."""
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
    )


def order_from_webhook(payload: dict[str, Any]) -> OrderRecord:
    order_id = fields.integer(fields.required(payload, "id"))
    assert order_id is not None
    return OrderRecord(
        order_id=order_id,
        name=fields.text(payload.get("name")),
        customer_id=fields.integer(fields.obj(payload, "customer").get("id")),
        email=fields.email(payload.get("email")) or fields.email(payload.get("contact_email")),
        phone=fields.text(payload.get("phone")),
        source_name=fields.text(payload.get("source_name")),
        financial_status=fields.text(payload.get("financial_status")),
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
    write: MirrorWrite, record: OrderRecord, *, checkout_token: str | None = None, cart_token: str | None = None
) -> None:
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
    order.source_name = record.source_name
    order.financial_status = record.financial_status
    order.currency = record.currency
    order.total_price = record.total_price
    order.line_items = [line_item_json(line) for line in record.line_items]
    order.created_at = record.created_at
    order.processed_at = record.processed_at
    order.updated_at = record.updated_at
    order.cancelled_at = record.cancelled_at


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
