"""Checkouts: what a customer was about to buy, and where to send them back to finish."""

from __future__ import annotations

from typing import Any

from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.customers import record_customer
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import Checkout


def on_checkout(ctx: WebhookContext) -> None:
    """checkouts/create, checkouts/update."""
    payload = ctx.payload
    token = str(fields.required(payload, "token"))
    checkout = locked_row(ctx.session, Checkout, {"shop_id": ctx.shop.id, "token": token}, {"line_items": []})
    updated_at = fields.instant(payload.get("updated_at"))
    customer = record_customer(ctx, fields.obj(payload, "customer"))
    if not is_newer(updated_at, checkout.updated_at):
        return
    address = fields.obj(payload, "shipping_address") or fields.obj(payload, "billing_address")
    checkout.cart_token = fields.text(payload.get("cart_token"))
    checkout.checkout_id = fields.integer(payload.get("id"))
    checkout.customer_id = customer.customer_id if customer else None
    checkout.email = fields.email(payload.get("email")) or (customer.email if customer else None)
    checkout.phone = fields.text(payload.get("phone"))
    checkout.buyer_accepts_marketing = payload.get("buyer_accepts_marketing")
    checkout.buyer_accepts_sms_marketing = payload.get("buyer_accepts_sms_marketing")
    checkout.sms_marketing_phone = fields.text(payload.get("sms_marketing_phone"))
    checkout.currency = fields.text(payload.get("presentment_currency") or payload.get("currency"))
    checkout.abandoned_checkout_url = fields.text(payload.get("abandoned_checkout_url"))
    checkout.line_items = [line_item(item) for item in fields.objects(payload, "line_items")]
    checkout.subtotal_price = fields.amount(payload.get("subtotal_price"))
    checkout.total_price = fields.amount(payload.get("total_price"))
    checkout.customer_locale = fields.text(payload.get("customer_locale"))
    checkout.country_code = fields.text(address.get("country_code"))
    checkout.created_at = fields.instant(payload.get("created_at"))
    checkout.updated_at = updated_at
    checkout.completed_at = fields.instant(payload.get("completed_at"))
    checkout.closed_at = fields.instant(payload.get("closed_at"))


def line_item(item: dict[str, Any]) -> dict[str, Any]:
    """The part of a checkout or order line Chorus needs, as JSON-safe values."""
    price = fields.amount(item.get("price"))
    return {
        "variant_id": fields.integer(item.get("variant_id")),
        "product_id": fields.integer(item.get("product_id")),
        "title": fields.text(item.get("title")),
        "variant_title": fields.text(item.get("variant_title")),
        "quantity": fields.integer(item.get("quantity")) or 0,
        "price": str(price) if price is not None else None,
    }
