"""Handling customers/data_request, customers/redact and shop/redact."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, SQLModel, col, select

from shopify_app.contacts import erase as erase_contacts
from shopify_app.events.context import PermanentEventError, WebhookContext
from shopify_app.mirror import fields
from shopify_app.models import Link, PrivacyRequest, Shop, WebhookEvent
from shopify_app.privacy.footprint import Footprint, Identity, find_footprint

log = logging.getLogger(__name__)

REDACTED = "redacted"


class ErasureDeferred(Exception):
    """Part of what is to be erased is in another worker's hands for a moment: the erasure is tried again."""


def on_data_request(ctx: WebhookContext) -> None:
    """Export everything Chorus holds about the customer, for the merchant to download and hand over."""
    identity = Identity.from_payload(ctx.payload)
    shop_id = _shop_id(ctx)
    found = find_footprint(ctx.session, shop_id, identity, order_ids=_ids(ctx.payload, "orders_requested"))
    ctx.session.add(
        PrivacyRequest(
            shop_id=shop_id,
            shop_domain=ctx.shop.domain,
            kind="data_request",
            shopify_request_id=fields.integer(fields.obj(ctx.payload, "data_request").get("id")),
            customer_id=identity.customer_id,
            received_at=ctx.observed_at,
            completed_at=ctx.now,
            export=_export(found, identity, ctx.now),
        )
    )


def on_customers_redact(ctx: WebhookContext) -> None:
    """Erase the customer's personal data everywhere; keep what counts and sums need, anonymised."""
    identity = Identity.from_payload(ctx.payload)
    shop_id = _shop_id(ctx)
    session = ctx.session
    found = find_footprint(session, shop_id, identity, order_ids=_ids(ctx.payload, "orders_to_redact"), lock=True)
    _erase(session, found, home=ctx.shop.storefront_url)
    for event in found.events:
        event.body, event.body_purged_at = None, ctx.now
        event.email = None
    # Earlier exports held the same data (locked in id order too, then erased).
    exports = list(
        session.exec(
            select(PrivacyRequest.id)
            .where(col(PrivacyRequest.shop_id) == shop_id, col(PrivacyRequest.kind) == "data_request")
            .where(col(PrivacyRequest.customer_id) == identity.customer_id)
            .where(col(PrivacyRequest.export).is_not(None))
            .order_by(col(PrivacyRequest.id))
            .with_for_update()
        )
    )
    if exports:
        session.execute(
            update(PrivacyRequest)
            .where(col(PrivacyRequest.id).in_(exports))
            .values(export=None, export_erased_at=ctx.now)
        )
    _forget_own_body(ctx)
    session.add(
        PrivacyRequest(
            shop_id=shop_id,
            shop_domain=ctx.shop.domain,
            kind="customers_redact",
            customer_id=identity.customer_id,
            received_at=ctx.observed_at,
            completed_at=ctx.now,
        )
    )
    log.info("shop %s: customer %s redacted", ctx.shop.domain, identity.customer_id)


def on_shop_redact(ctx: WebhookContext) -> None:
    """Delete everything of the shop; only the record that this happened remains."""
    session, shop = ctx.session, ctx.shop
    domain = shop.domain
    others = select(WebhookEvent.id).where(
        col(WebhookEvent.shop_domain) == domain, col(WebhookEvent.id) != ctx.event.id
    )
    # In id order, and never waiting for an event another worker has claimed (it may be waiting for this one):
    # while one is being handled, the whole erasure waits for the next attempt.
    free = list(session.exec(others.order_by(col(WebhookEvent.id)).with_for_update(skip_locked=True)))
    busy = set(session.exec(others)) - set(free)
    if busy:
        raise ErasureDeferred(f"{len(busy)} of the shop's webhook events are being handled by another worker")
    if free:
        session.execute(delete(WebhookEvent).where(col(WebhookEvent.id).in_(free)))
    session.execute(delete(PrivacyRequest).where(col(PrivacyRequest.shop_domain) == domain))
    _forget_own_body(ctx)
    ctx.event.shop_id = None
    session.delete(session.get(Shop, shop.id))  # every shop table cascades from here
    session.add(
        PrivacyRequest(shop_domain=domain, kind="shop_redact", received_at=ctx.observed_at, completed_at=ctx.now)
    )
    log.info("shop %s redacted", domain)


def _erase(session: Session, found: Footprint, *, home: str) -> None:
    for row in [
        *found.customers,
        *found.consent_records,
        *found.suppressions,
        *found.consent_confirmations,
        *found.whatsapp_windows,
        *found.pixel_events,
    ]:
        session.delete(row)
    for order in found.orders:  # kept for revenue, without the person
        order.email = order.phone = None
        order.customer_id = None
    for checkout in found.checkouts:
        checkout.email = checkout.phone = checkout.sms_marketing_phone = None
        checkout.customer_id = None
        checkout.abandoned_checkout_url = None
    for message in found.messages:  # kept for counts and costs, without address or content
        message.address = REDACTED
        message.payload = {}
        message.error = None
        message.contact_id = None
    for click in found.clicks:  # kept for counts, without the browser that made them
        click.user_agent = None
    message_ids = [m.id for m in found.messages]
    if message_ids:  # where its links led (a checkout's recovery link, say) is about the customer: now the shop
        session.execute(update(Link).where(col(Link.message_id).in_(message_ids)).values(target=home))
    for journey in found.journeys:  # kept for counts, without whom they were about
        journey.email = journey.exclusive_key = None
        journey.contact_id = None
    if found.contacts:
        session.flush()  # nothing refers to them any more
        erase_contacts(session, found.contacts[0].shop_id, [c.id for c in found.contacts if c.id is not None])
    for decision in found.decisions:
        decision.detail = {k: v for k, v in decision.detail.items() if k != "error"}


def _forget_own_body(ctx: WebhookContext) -> None:
    ctx.event.body, ctx.event.body_purged_at = None, ctx.now


def _shop_id(ctx: WebhookContext) -> int:
    assert ctx.shop.id is not None
    return ctx.shop.id


def _ids(payload: dict[str, Any], key: str) -> list[int]:
    """The ids listed under `key`; a value that is no 64-bit integer names nothing stored and is left out."""
    values = payload.get(key)
    ids = []
    for value in values if isinstance(values, list) else []:
        try:
            number = fields.integer(value)
        except PermanentEventError:
            continue
        if number is not None:
            ids.append(number)
    return ids


def _export(found: Footprint, identity: Identity, now: datetime) -> dict[str, Any]:
    def rows(models: list[Any]) -> list[dict[str, Any]]:
        return [_row(m) for m in models]

    return {
        "generated_at": now.isoformat(),
        "customer": {"id": identity.customer_id, "email": identity.email, "phone": identity.phone},
        "profiles": rows(found.customers),
        "contacts": rows(found.contacts),
        "identities": rows(found.contact_identities),
        "consent_history": rows(found.consent_records),
        "orders": rows(found.orders),
        "checkouts": rows(found.checkouts),
        "journeys": rows(found.journeys),
        "decisions": rows(found.decisions),
        "messages": rows(found.messages),
        "clicks": rows(found.clicks),
        "suppressions": rows(found.suppressions),
        "consent_confirmations": rows(found.consent_confirmations),
        "storefront_events": rows(found.pixel_events),
        "events": [
            {
                "id": e.id,
                "topic": e.topic,
                "received_at": e.received_at.isoformat(),
                "body": _body(e.body),
            }
            for e in found.events
        ],
    }


def _body(body: bytes | None) -> Any:
    """A raw body for the export: its JSON, or its text when it is not JSON Python can read (a malformed
    delivery names the customer just as well)."""
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


def _row(model: SQLModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    data.pop("shop_id", None)
    return data
