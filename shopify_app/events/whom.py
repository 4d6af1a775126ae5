"""Whom a webhook delivery is about, noted on the stored event for the customer's timeline."""

from __future__ import annotations

from typing import Any

from shopify_app.events.context import PermanentEventError
from shopify_app.mirror import fields
from shopify_app.shopify.topics import PRIVACY_TOPICS


def whom(topic: str, payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """(Shopify customer id, lower-cased email) the payload names, as far as it does."""
    if topic in PRIVACY_TOPICS or topic.startswith(("shop/", "app/", "products/", "variants/")):
        return None, None
    customer = fields.obj(payload, "customer")
    raw_id: Any = customer.get("id")
    if topic.startswith("customers/"):
        raw_id = payload.get("id")
    elif topic.startswith("customers_"):
        raw_id = payload.get("customer_id") or payload.get("id")
    email = (
        fields.email(payload.get("email"))
        or fields.email(payload.get("email_address"))
        or fields.email(payload.get("contact_email"))
        or fields.email(customer.get("email"))
    )
    try:
        customer_id = fields.integer(raw_id)
    except PermanentEventError:
        customer_id = None
    return customer_id, email
