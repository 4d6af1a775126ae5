"""Customers and their marketing consent, with a record of every consent change observed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import ConsentRecord, Customer

Channel = Literal["email", "sms"]


def on_customer(ctx: WebhookContext) -> None:
    """customers/create, customers/update."""
    record_customer(ctx, ctx.payload)


def on_email_consent(ctx: WebhookContext) -> None:
    """customers_email_marketing_consent/update: {customer_id, email_address, email_marketing_consent}."""
    customer = _locked_customer(ctx, fields.integer(fields.required(ctx.payload, "customer_id")))
    if customer.email is None:
        customer.email = fields.email(ctx.payload.get("email_address"))
    apply_consent(ctx, customer, "email", fields.obj(ctx.payload, "email_marketing_consent"))


def on_sms_consent(ctx: WebhookContext) -> None:
    """customers_marketing_consent/update: {id, phone, sms_marketing_consent}."""
    customer = _locked_customer(ctx, fields.integer(fields.required(ctx.payload, "id")))
    if customer.phone is None:
        customer.phone = fields.text(ctx.payload.get("phone"))
    apply_consent(ctx, customer, "sms", fields.obj(ctx.payload, "sms_marketing_consent"))


def record_customer(ctx: WebhookContext, payload: dict[str, Any]) -> Customer | None:
    """Mirror a customer object, whether it came on its own or inside a checkout or order."""
    customer_id = fields.integer(payload.get("id"))
    if customer_id is None:
        return None
    customer = _locked_customer(ctx, customer_id)
    updated_at = fields.instant(payload.get("updated_at"))
    if is_newer(updated_at, customer.updated_at):
        address = fields.obj(payload, "default_address")
        customer.email = fields.email(payload.get("email")) or customer.email
        customer.phone = fields.text(payload.get("phone")) or customer.phone
        customer.first_name = fields.text(payload.get("first_name"))
        customer.last_name = fields.text(payload.get("last_name"))
        customer.country_code = fields.text(address.get("country_code")) or customer.country_code
        customer.locale = fields.text(payload.get("locale")) or customer.locale
        customer.state = fields.text(payload.get("state"))
        customer.created_at = fields.instant(payload.get("created_at")) or customer.created_at
        customer.updated_at = updated_at
    for channel, key in (("email", "email_marketing_consent"), ("sms", "sms_marketing_consent")):
        consent = payload.get(key)
        if isinstance(consent, dict):
            apply_consent(ctx, customer, channel, consent)  # type: ignore[arg-type]
    return customer


def apply_consent(ctx: WebhookContext, customer: Customer, channel: Channel, consent: dict[str, Any]) -> None:
    """Take a consent state if it is not older than the one held; record it when it changes."""
    state = fields.text(consent.get("state"))
    level = fields.text(consent.get("opt_in_level"))
    changed_at = fields.instant(consent.get("consent_updated_at")) or ctx.observed_at
    held_state, held_level, held_at = _held_consent(customer, channel)
    if not is_newer(changed_at, held_at):
        return
    _set_consent(customer, channel, state, level, changed_at)
    if channel == "sms":
        customer.sms_consent_collected_from = fields.text(consent.get("consent_collected_from"))
    if (state, level) != (held_state, held_level):
        ctx.session.add(
            ConsentRecord(
                shop_id=customer.shop_id,
                customer_id=customer.customer_id,
                channel=channel,
                state=state,
                opt_in_level=level,
                collected_from=fields.text(consent.get("consent_collected_from")),
                consent_updated_at=changed_at,
                source=ctx.event.topic,
                webhook_event_id=ctx.event.id,
                recorded_at=ctx.now,
            )
        )


def _locked_customer(ctx: WebhookContext, customer_id: int | None) -> Customer:
    return locked_row(ctx.session, Customer, {"shop_id": ctx.shop.id, "customer_id": customer_id})


def _held_consent(customer: Customer, channel: Channel) -> tuple[str | None, str | None, datetime | None]:
    if channel == "email":
        return (
            customer.email_consent_state,
            customer.email_consent_opt_in_level,
            customer.email_consent_updated_at,
        )
    return customer.sms_consent_state, customer.sms_consent_opt_in_level, customer.sms_consent_updated_at


def _set_consent(
    customer: Customer, channel: Channel, state: str | None, level: str | None, changed_at: datetime
) -> None:
    if channel == "email":
        customer.email_consent_state = state
        customer.email_consent_opt_in_level = level
        customer.email_consent_updated_at = changed_at
    else:
        customer.sms_consent_state = state
        customer.sms_consent_opt_in_level = level
        customer.sms_consent_updated_at = changed_at
