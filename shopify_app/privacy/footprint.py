"""Everything Chorus holds about one customer of one shop, found once, for export and for erasure alike:
what a data request exports is exactly what a redaction erases."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from shopify_app.models import (
    Checkout,
    ConsentRecord,
    Customer,
    Decision,
    Journey,
    Message,
    Order,
    Suppression,
    WebhookEvent,
)


@dataclass(frozen=True)
class Identity:
    """How Shopify names the customer in a privacy request."""

    customer_id: int | None
    email: str | None
    phone: str | None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Identity:
        customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
        assert isinstance(customer, dict)
        raw_id = customer.get("id")
        email = str(customer.get("email") or "").strip().lower() or None
        phone = str(customer.get("phone") or "").strip() or None
        return cls(customer_id=int(raw_id) if raw_id not in (None, "") else None, email=email, phone=phone)

    def needles(self) -> list[bytes]:
        """Byte strings whose presence in a raw webhook body ties it to this customer."""
        found = []
        if self.email:
            found.append(self.email.encode())
        if self.phone:
            found.append(self.phone.encode())
            digits = re.sub(r"\D", "", self.phone)
            if len(digits) >= 7:
                found.append(digits.encode())
        if self.customer_id is not None:
            found.append(str(self.customer_id).encode())
        return found


@dataclass
class Footprint:
    customers: list[Customer] = field(default_factory=list)
    consent_records: list[ConsentRecord] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    journeys: list[Journey] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    events: list[WebhookEvent] = field(default_factory=list)


def find_footprint(session: Session, shop_id: int, identity: Identity, *, order_ids: Collection[int] = ()) -> Footprint:
    found = Footprint()
    customers = select(Customer).where(Customer.shop_id == shop_id)
    found.customers = list(session.exec(customers.where(or_(*_matching(Customer, identity)))))
    customer_ids = {c.customer_id for c in found.customers}
    if identity.customer_id is not None:
        customer_ids.add(identity.customer_id)
    addresses = {a for a in [identity.email, identity.phone, *(c.email for c in found.customers)] if a}
    found.consent_records = list(
        session.exec(
            select(ConsentRecord).where(
                ConsentRecord.shop_id == shop_id, col(ConsentRecord.customer_id).in_(customer_ids)
            )
        )
    )
    found.orders = list(
        session.exec(
            select(Order).where(
                Order.shop_id == shop_id,
                or_(*_matching(Order, identity, customer_ids), col(Order.order_id).in_(list(order_ids))),
            )
        )
    )
    found.checkouts = list(
        session.exec(
            select(Checkout).where(Checkout.shop_id == shop_id, or_(*_matching(Checkout, identity, customer_ids)))
        )
    )
    subjects = [c.token for c in found.checkouts] + [str(o.order_id) for o in found.orders]
    subjects += [str(i) for i in customer_ids]
    journey_ties = [col(Journey.subject).in_(subjects)]
    if customer_ids:
        journey_ties.append(col(Journey.customer_id).in_(customer_ids))
    emails = [a for a in addresses if "@" in a]
    if emails:
        journey_ties.append(col(Journey.email).in_(emails))
    found.journeys = list(session.exec(select(Journey).where(Journey.shop_id == shop_id, or_(*journey_ties))))
    journey_ids = [j.id for j in found.journeys]
    found.decisions = list(
        session.exec(select(Decision).where(Decision.shop_id == shop_id, col(Decision.journey_id).in_(journey_ids)))
    )
    found.messages = list(
        session.exec(
            select(Message).where(
                Message.shop_id == shop_id,
                or_(col(Message.address).in_(addresses), col(Message.journey_id).in_(journey_ids)),
            )
        )
    )
    found.suppressions = list(
        session.exec(select(Suppression).where(Suppression.shop_id == shop_id, col(Suppression.address).in_(addresses)))
    )
    found.events = _events_mentioning(session, shop_id, identity, customer_ids, emails)
    return found


def _matching(model: Any, identity: Identity, customer_ids: Collection[int] = ()) -> list[Any]:
    conditions: list[Any] = []
    ids = set(customer_ids)
    if identity.customer_id is not None:
        ids.add(identity.customer_id)
    if ids:
        conditions.append(col(model.customer_id).in_(ids))
    if identity.email:
        conditions.append(col(model.email) == identity.email)
    if identity.phone:
        conditions.append(col(model.phone) == identity.phone)
    return conditions or [col(model.id).is_(None)]  # no identifier: match nothing


def _events_mentioning(
    session: Session, shop_id: int, identity: Identity, customer_ids: Collection[int], emails: Collection[str]
) -> list[WebhookEvent]:
    """Webhook events noted as about the customer, or whose raw body names them (searched in Python: bodies
    are bytes)."""
    needles = identity.needles()
    noted = [col(WebhookEvent.customer_id).in_(list(customer_ids)), col(WebhookEvent.email).in_(list(emails))]
    ids = set(session.exec(select(WebhookEvent.id).where(WebhookEvent.shop_id == shop_id, or_(*noted))))
    if not needles:
        return list(
            session.exec(select(WebhookEvent).where(col(WebhookEvent.id).in_(ids)).order_by(col(WebhookEvent.id)))
        )
    bodies = session.exec(
        select(WebhookEvent.id, WebhookEvent.body)
        .where(WebhookEvent.shop_id == shop_id, col(WebhookEvent.body).is_not(None))
        .execution_options(yield_per=500)  # bodies are large: stream them
    )
    ids |= {event_id for event_id, body in bodies if body is not None and any(n in body.lower() for n in needles)}
    return list(session.exec(select(WebhookEvent).where(col(WebhookEvent.id).in_(ids)).order_by(col(WebhookEvent.id))))
