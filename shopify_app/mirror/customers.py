"""Customers and their marketing consent, with a record of every consent change observed.

Webhooks and the store sync both arrive here as `CustomerRecord`s and `MarketingConsent`s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flows.consent import Source, lifts_opt_out
from flows.phones import normalise_phone
from shopify_app.contacts import Seen, observe
from shopify_app.events.context import MirrorWrite, WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.store import RowCache, is_newer, locked_row
from shopify_app.models import ConsentRecord, Customer
from shopify_app.shopify.sync_queries import CustomerRecord, MarketingConsent
from shopify_app.suppressions import lift_opt_out

Channel = Literal["email", "sms"]


def on_customer(ctx: WebhookContext) -> None:
    """customers/create, customers/update."""
    write_customer(ctx.mirror, customer_from_webhook(ctx.payload))


def on_email_consent(ctx: WebhookContext) -> None:
    """customers_email_marketing_consent/update: {customer_id, email_address, email_marketing_consent}."""
    customer = _locked_customer(ctx.mirror, fields.integer(fields.required(ctx.payload, "customer_id")))
    if customer.email is None:
        customer.email = fields.email(ctx.payload.get("email_address"))
    write_consent(ctx.mirror, customer, "email", consent_from_webhook(ctx.payload.get("email_marketing_consent")))


def on_sms_consent(ctx: WebhookContext) -> None:
    """customers_marketing_consent/update: {id, phone, sms_marketing_consent}."""
    customer = _locked_customer(ctx.mirror, fields.integer(fields.required(ctx.payload, "id")))
    if customer.phone is None:
        customer.phone = fields.text(ctx.payload.get("phone"))
    write_consent(ctx.mirror, customer, "sms", consent_from_webhook(ctx.payload.get("sms_marketing_consent")))


def customer_from_webhook(payload: dict[str, Any]) -> CustomerRecord | None:
    """A customer object from a webhook, on its own or inside a checkout or an order."""
    customer_id = fields.integer(payload.get("id"))
    if customer_id is None:
        return None
    return CustomerRecord(
        customer_id=customer_id,
        email=fields.email(payload.get("email")),
        phone=fields.text(payload.get("phone")),
        first_name=fields.text(payload.get("first_name")),
        last_name=fields.text(payload.get("last_name")),
        country_code=fields.text(fields.obj(payload, "default_address").get("country_code")),
        province_code=fields.text(fields.obj(payload, "default_address").get("province_code")),
        locale=fields.text(payload.get("locale")),
        state=fields.text(payload.get("state")),
        created_at=fields.instant(payload.get("created_at")),
        updated_at=fields.instant(payload.get("updated_at")),
        email_consent=consent_from_webhook(payload.get("email_marketing_consent")),
        sms_consent=consent_from_webhook(payload.get("sms_marketing_consent")),
    )


def consent_from_webhook(value: Any) -> MarketingConsent | None:
    if not isinstance(value, dict):
        return None
    return MarketingConsent(
        state=fields.text(value.get("state")),
        opt_in_level=fields.text(value.get("opt_in_level")),
        updated_at=fields.instant(value.get("consent_updated_at")),
        collected_from=fields.text(value.get("consent_collected_from")),
    )


def write_customer(write: MirrorWrite, record: CustomerRecord | None) -> Customer | None:
    if record is None:
        return None
    customer = _locked_customer(write, record.customer_id)
    if is_newer(record.updated_at, customer.updated_at):
        customer.email = record.email or customer.email
        customer.phone = record.phone or customer.phone
        customer.first_name = record.first_name
        customer.last_name = record.last_name
        customer.country_code = record.country_code or customer.country_code
        customer.province_code = record.province_code if record.country_code else customer.province_code
        customer.locale = record.locale or customer.locale
        customer.state = record.state
        customer.created_at = record.created_at or customer.created_at
        customer.updated_at = record.updated_at
    write_consent(write, customer, "email", record.email_consent)
    write_consent(write, customer, "sms", record.sms_consent)
    seen = Seen(customer.customer_id, (customer.email,), (customer.phone,), customer.country_code,
                customer.province_code, customer.locale)  # fmt: skip
    observe(write.session, write.shop_id, seen, write.now)
    return customer


def write_consent(write: MirrorWrite, customer: Customer, channel: Channel, consent: MarketingConsent | None) -> None:
    """Take a consent state if it is not older than the one held; record it when it changes."""
    if consent is None:
        return
    changed_at = consent.updated_at or write.observed_at
    held_state, held_level, held_at = _held_consent(customer, channel)
    if not is_newer(changed_at, held_at):
        return
    _set_consent(customer, channel, consent.state, consent.opt_in_level, changed_at)
    if channel == "sms":
        customer.sms_consent_collected_from = consent.collected_from
    if (consent.state, consent.opt_in_level) != (held_state, held_level):
        address = customer.email if channel == "email" else normalise_phone(customer.phone)
        source = Source.RECONCILIATION if write.source.startswith("sync") else Source.SHOPIFY_WEBHOOK
        if address and lifts_opt_out(source, consent.state, consent.opt_in_level):
            lift_opt_out(write.session, shop_id=customer.shop_id, channel=channel, address=address)
        cache = RowCache.of(write.session)
        if cache is not None and channel == "email" and consent.state == "subscribed":
            cache.note_subscription(customer.customer_id, write.event_id, changed_at)
        write.session.add(
            ConsentRecord(
                shop_id=customer.shop_id,
                customer_id=customer.customer_id,
                channel=channel,
                state=consent.state,
                opt_in_level=consent.opt_in_level,
                collected_from=consent.collected_from,
                consent_updated_at=changed_at,
                address=address,
                source=source,
                evidence={"topic": write.source},
                webhook_event_id=write.event_id,
                recorded_at=write.now,
            )
        )


def _locked_customer(write: MirrorWrite, customer_id: int | None) -> Customer:
    return locked_row(write.session, Customer, {"shop_id": write.shop_id, "customer_id": customer_id})


def _held_consent(customer: Customer, channel: Channel) -> tuple[str | None, str | None, datetime | None]:
    if channel == "email":
        return customer.email_consent_state, customer.email_consent_opt_in_level, customer.email_consent_updated_at
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
