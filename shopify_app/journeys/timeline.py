"""One customer's story in one shop: the webhooks that named them, every decision of their journeys and
every message, in time order (`chorus customers timeline`, `GET /api/customers/timeline`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from flows.phones import normalise_phone
from shopify_app.contacts import CUSTOMER, EMAIL, PHONE, contacts_of
from shopify_app.models import (
    ConsentRecord,
    Contact,
    ContactIdentity,
    Customer,
    Decision,
    Journey,
    Message,
    PixelEvent,
    WebhookEvent,
)

LIMIT = 1000  # entries of each kind

_ORDER = {"browse": 0, "event": 1, "decision": 2, "message": 3}


@dataclass(frozen=True)
class Person:
    """Whom a timeline is about: the customers the email or number names, their contacts and identities."""

    customers: list[Customer]
    contacts: list[Contact]
    identities: list[ContactIdentity]

    @property
    def customer_ids(self) -> list[int]:
        seen = {int(i.value) for i in self.identities if i.kind == CUSTOMER}
        return sorted({c.customer_id for c in self.customers} | seen)

    @property
    def addresses(self) -> list[str]:
        return sorted({i.value for i in self.identities if i.kind in (EMAIL, PHONE)})

    def describe(self, consent: list[ConsentRecord]) -> dict[str, Any]:
        """The person's identities and consent history, for the timeline's readers."""
        return {
            "contacts": [
                {"id": c.id, "customer_id": c.customer_id, "country": c.country, "province": c.province,
                 "timezone": c.timezone, "language": c.language,
                 "identities": [{"kind": i.kind, "value": i.value, "seen_at": i.seen_at.isoformat()}
                                for i in self.identities if i.contact_id == c.id]}
                for c in self.contacts
            ],
            "consent_history": [
                {"channel": r.channel, "state": r.state, "opt_in_level": r.opt_in_level,
                 "collected_from": r.collected_from, "at": r.consent_updated_at.isoformat() if r.consent_updated_at
                 else None, "source": r.source, "evidence": r.evidence}
                for r in consent
            ],
        }  # fmt: skip


def person(session: Session, shop_id: int, *, email: str | None = None, phone: str | None = None) -> Person:
    # Only the identifiers given: comparing a column with None would match every customer without one.
    named: list[ColumnElement[bool]] = []
    if email:
        named.append(col(Customer.email) == email)
    if phone:
        named.append(col(Customer.phone) == phone)
    people = list(
        session.exec(
            select(Customer).where(Customer.shop_id == shop_id, or_(*named) if named else col(Customer.id).is_(None))
        )
    )
    # The contacts these name, and every identity they were seen with: one person's whole story.
    known_as = [(EMAIL, email or ""), (PHONE, normalise_phone(phone) or "")]
    known_as += [(CUSTOMER, str(c.customer_id)) for c in people]
    contact_ids = sorted(set(contacts_of(session, shop_id, [i for i in known_as if i[1]]).values()))
    contacts = list(
        session.exec(
            select(Contact)
            .where(Contact.shop_id == shop_id, col(Contact.id).in_(contact_ids))
            .order_by(col(Contact.id))
        )
    )
    seen_as = list(
        session.exec(
            select(ContactIdentity)
            .where(ContactIdentity.shop_id == shop_id, col(ContactIdentity.contact_id).in_(contact_ids))
            .order_by(col(ContactIdentity.id))
        )
    )
    return Person(people, contacts, seen_as)


def consent_history(session: Session, shop_id: int, who: Person) -> list[ConsentRecord]:
    return list(
        session.exec(
            select(ConsentRecord)
            .where(
                ConsentRecord.shop_id == shop_id,
                or_(
                    col(ConsentRecord.customer_id).in_(who.customer_ids), col(ConsentRecord.address).in_(who.addresses)
                ),
            )
            .order_by(col(ConsentRecord.id))
            .limit(LIMIT)
        )
    )


def timeline(
    session: Session, shop_id: int, *, email: str | None = None, phone: str | None = None
) -> list[dict[str, Any]]:
    """Entries `{"at", "kind", "flow", "step", "outcome", "reason", "detail"}`, oldest first."""
    who = person(session, shop_id, email=email, phone=phone)
    people, seen_as = who.customers, who.identities
    contact_ids = [c.id for c in who.contacts]
    ids = who.customer_ids
    emails = {e for e in [email, *(c.email for c in people), *(i.value for i in seen_as if i.kind == EMAIL)] if e}
    addresses = emails | {a for a in [phone, *(i.value for i in seen_as if i.kind == PHONE)] if a}
    entries: list[tuple[datetime, str, int, dict[str, Any]]] = []

    for event in session.exec(
        select(WebhookEvent)
        .where(WebhookEvent.shop_id == shop_id)
        .where(or_(col(WebhookEvent.customer_id).in_(ids), col(WebhookEvent.email).in_(emails)))
        .order_by(col(WebhookEvent.id))
        .limit(LIMIT)
    ):
        at = event.triggered_at or event.received_at
        detail = {"event_id": event.id, "topic": event.topic}
        entries.append((at, "event", event.id or 0, _entry(at, "event", None, None, event.status, event.topic, detail)))

    journeys = {
        j.id: j
        for j in session.exec(
            select(Journey).where(
                Journey.shop_id == shop_id,
                or_(
                    col(Journey.customer_id).in_(ids),
                    col(Journey.email).in_(emails),
                    col(Journey.contact_id).in_(contact_ids),
                ),
            )
        )
    }
    for decision in session.exec(
        select(Decision)
        .where(Decision.shop_id == shop_id, col(Decision.journey_id).in_(list(journeys)))
        .order_by(col(Decision.id))
        .limit(LIMIT)
    ):
        journey = journeys[decision.journey_id]
        detail = {"journey_id": journey.id, "subject": journey.subject, **decision.detail}
        entry = _entry(
            decision.decided_at, "decision", decision.flow, decision.step, decision.outcome, decision.reason, detail
        )
        entries.append((decision.decided_at, "decision", decision.id or 0, entry))

    for message in session.exec(
        select(Message)
        .where(Message.shop_id == shop_id)
        .where(or_(col(Message.address).in_(addresses), col(Message.journey_id).in_(list(journeys))))
        .order_by(col(Message.id))
        .limit(LIMIT)
    ):
        at = message.sent_at or message.created_at
        detail = {
            "message_id": message.id, "channel": message.channel, "address": message.address,
            "subject": message.subject, "provider": message.provider,
            "provider_message_id": message.provider_message_id, "attempts": message.attempts,
        }  # fmt: skip
        entry = _entry(at, "message", message.flow, message.step, message.status, message.error, detail)
        entries.append((at, "message", message.id or 0, entry))

    for browsed in session.exec(
        select(PixelEvent)
        .where(PixelEvent.shop_id == shop_id, col(PixelEvent.contact_id).in_(contact_ids))
        .order_by(col(PixelEvent.id))
        .limit(LIMIT)
    ):  # what their browsers did on the storefront, once proven theirs
        detail = {"client_id": browsed.client_id, "product_id": browsed.product_id, "variant_id": browsed.variant_id,
                  "checkout_token": browsed.checkout_token, **browsed.data}  # fmt: skip
        entry = _entry(browsed.occurred_at, "browse", None, None, browsed.name, None, detail)
        entries.append((browsed.occurred_at, "browse", browsed.id or 0, entry))

    entries.sort(key=lambda e: (e[0], _ORDER[e[1]], e[2]))
    return [entry for *_key, entry in entries]


def _entry(
    at: datetime,
    kind: str,
    flow: str | None,
    step: str | None,
    outcome: str,
    reason: str | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "kind": kind,
        "flow": flow,
        "step": step,
        "outcome": outcome,
        "reason": reason,
        "detail": detail,
    }
