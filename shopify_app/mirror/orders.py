"""Orders, from any sales channel (online store, POS, draft orders, other apps)."""

from __future__ import annotations

from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.checkouts import line_item
from shopify_app.mirror.customers import record_customer
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import Order


def on_order(ctx: WebhookContext) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled: each carries the whole order."""
    payload = ctx.payload
    order_id = fields.integer(fields.required(payload, "id"))
    order = locked_row(ctx.session, Order, {"shop_id": ctx.shop.id, "order_id": order_id}, {"line_items": []})
    updated_at = fields.instant(payload.get("updated_at"))
    customer = record_customer(ctx, fields.obj(payload, "customer"))
    if not is_newer(updated_at, order.updated_at):
        return
    order.name = fields.text(payload.get("name"))
    order.checkout_token = fields.text(payload.get("checkout_token"))
    order.cart_token = fields.text(payload.get("cart_token"))
    order.customer_id = customer.customer_id if customer else None
    order.email = (
        fields.email(payload.get("email"))
        or fields.email(payload.get("contact_email"))
        or (customer.email if customer else None)
    )
    order.phone = fields.text(payload.get("phone"))
    order.source_name = fields.text(payload.get("source_name"))
    order.financial_status = fields.text(payload.get("financial_status"))
    order.currency = fields.text(payload.get("currency"))  # the shop currency, as total_price is
    order.total_price = fields.amount(payload.get("total_price"))
    order.line_items = [line_item(item) for item in fields.objects(payload, "line_items")]
    order.created_at = fields.instant(payload.get("created_at"))
    order.processed_at = fields.instant(payload.get("processed_at"))
    order.updated_at = updated_at
    order.cancelled_at = fields.instant(payload.get("cancelled_at"))
