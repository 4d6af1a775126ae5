"""Checkouts: what a customer was about to buy, and where to send them back to finish."""

from __future__ import annotations

from datetime import datetime

from flows.consent import SINGLE_OPT_IN, SUBSCRIBED, Source
from flows.phones import normalise_phone
from shopify_app.browsing.stitching import note_checkout
from shopify_app.contacts import Seen, observe
from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.customers import customer_from_webhook, write_customer
from shopify_app.mirror.orders import line_from_webhook, line_item_json
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import Checkout, ConsentRecord


def on_checkout(ctx: WebhookContext) -> None:
    """checkouts/create, checkouts/update."""
    payload = ctx.payload
    token = str(fields.required(payload, "token"))
    checkout = locked_row(ctx.session, Checkout, {"shop_id": ctx.shop.id, "token": token}, {"line_items": []})
    updated_at = fields.instant(payload.get("updated_at"))
    customer = write_customer(ctx.mirror, customer_from_webhook(fields.obj(payload, "customer")))
    if not is_newer(updated_at, checkout.updated_at):
        return
    address = fields.obj(payload, "shipping_address") or fields.obj(payload, "billing_address")
    checkout.cart_token = fields.text(payload.get("cart_token"))
    checkout.checkout_id = fields.integer(payload.get("id"))
    checkout.customer_id = customer.customer_id if customer else None
    checkout.email = fields.email(payload.get("email")) or (customer.email if customer else None)
    checkout.phone = fields.text(payload.get("phone"))
    ticked = (checkout.buyer_accepts_marketing, checkout.buyer_accepts_sms_marketing, checkout.sms_marketing_phone)
    checkout.buyer_accepts_marketing = fields.flag(payload.get("buyer_accepts_marketing"))
    checkout.buyer_accepts_sms_marketing = fields.flag(payload.get("buyer_accepts_sms_marketing"))
    checkout.sms_marketing_phone = fields.text(payload.get("sms_marketing_phone"))
    _record_boxes(ctx, checkout, ticked, updated_at or ctx.now)
    checkout.currency = fields.text(payload.get("presentment_currency") or payload.get("currency"))
    checkout.abandoned_checkout_url = fields.text(payload.get("abandoned_checkout_url"))
    checkout.line_items = [
        line_item_json(line_from_webhook(item), variant_title=fields.text(item.get("variant_title")))
        for item in fields.objects(payload, "line_items")
    ]
    checkout.subtotal_price = fields.amount(payload.get("subtotal_price"))
    checkout.total_price = fields.amount(payload.get("total_price"))
    checkout.customer_locale = fields.text(payload.get("customer_locale"))
    checkout.country_code = fields.text(address.get("country_code"))
    checkout.province_code = fields.text(address.get("province_code"))
    checkout.created_at = fields.instant(payload.get("created_at"))
    checkout.updated_at = updated_at
    checkout.completed_at = fields.instant(payload.get("completed_at"))
    checkout.closed_at = fields.instant(payload.get("closed_at"))
    seen = Seen(checkout.customer_id, (checkout.email,), (checkout.sms_marketing_phone, checkout.phone),
                checkout.country_code, checkout.province_code, checkout.customer_locale)  # fmt: skip
    observe(ctx.session, ctx.mirror.shop_id, seen, ctx.now)
    note_checkout(ctx.session, ctx.mirror.shop_id, checkout.token)  # the storefront browsers it proves


def _record_boxes(
    ctx: WebhookContext, checkout: Checkout, before: tuple[bool | None, bool | None, str | None], at: datetime
) -> None:
    """A marketing box newly ticked in the checkout is a consent signal: kept as proof, with the checkout."""
    was_email, was_sms, was_phone = before
    ticked: list[tuple[str, str | None]] = []
    if checkout.buyer_accepts_marketing and not was_email:
        ticked.append(("email", checkout.email))
    phone = normalise_phone(checkout.sms_marketing_phone)
    if checkout.buyer_accepts_sms_marketing and (not was_sms or checkout.sms_marketing_phone != was_phone):
        ticked.append(("sms", phone))
    for channel, address in ticked:
        if address:
            ctx.session.add(
                ConsentRecord(
                    shop_id=ctx.mirror.shop_id, customer_id=checkout.customer_id, address=address, channel=channel,
                    state=SUBSCRIBED, opt_in_level=SINGLE_OPT_IN, consent_updated_at=at, source=Source.CHECKOUT,
                    evidence={"topic": ctx.event.topic, "checkout_token": checkout.token, "event_id": ctx.event.id},
                    recorded_at=ctx.now,
                )
            )  # fmt: skip
