"""Everything Chorus holds about one customer of one shop, found once, for export and for erasure alike:
what a data request exports is exactly what a redaction erases."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import or_
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from flows.phones import normalise_phone
from shopify_app.contacts import BROWSER, CUSTOMER, EMAIL, PHONE, contacts_of, resolve_pending
from shopify_app.events.context import PermanentEventError
from shopify_app.mirror import fields
from shopify_app.models import (
    Checkout,
    Click,
    ConsentConfirmation,
    ConsentRecord,
    Contact,
    ContactIdentity,
    Customer,
    Decision,
    EventStatus,
    Journey,
    Message,
    Order,
    PixelEvent,
    Suppression,
    WebhookEvent,
    WhatsAppWindow,
)
from shopify_app.shopify.topics import CUSTOMERS_REDACT, SHOP_REDACT

log = logging.getLogger(__name__)

M = TypeVar("M", bound=SQLModel)

# Their handlers erase their own raw body: while one waits to be handled (or is being handled), another
# request leaves its body to it, and never waits for the worker that has claimed it.
SELF_ERASING_TOPICS = frozenset({CUSTOMERS_REDACT, SHOP_REDACT})


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
        email = str(customer.get("email") or "").strip().lower() or None
        phone = str(customer.get("phone") or "").strip() or None
        return cls(customer_id=_customer_id(customer.get("id")), email=email, phone=phone)

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
    contacts: list[Contact] = field(default_factory=list)
    contact_identities: list[ContactIdentity] = field(default_factory=list)
    consent_records: list[ConsentRecord] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    journeys: list[Journey] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)  # of those messages' links
    suppressions: list[Suppression] = field(default_factory=list)
    consent_confirmations: list[ConsentConfirmation] = field(default_factory=list)
    whatsapp_windows: list[WhatsAppWindow] = field(default_factory=list)
    pixel_events: list[PixelEvent] = field(default_factory=list)  # the storefront events linked to them
    events: list[WebhookEvent] = field(default_factory=list)


def find_footprint(
    session: Session, shop_id: int, identity: Identity, *, order_ids: Collection[int] = (), lock: bool = False
) -> Footprint:
    """Everything held about the customer. With `lock` (to erase it), every row found is locked until the
    transaction ends, in one order whatever the request, so that two erasures (or an erasure and the handling
    of an event) never wait on each other in a cycle: the raw webhook events first, as the worker's claim of
    a batch locks them, then the mirror's tables one after the other, each in id order."""
    resolve_pending(session)  # what this transaction's earlier records said of people: found, then erased
    found = Footprint()
    customers = select(Customer).where(Customer.shop_id == shop_id, or_(*_matching(Customer, identity)))
    if lock:
        # Whose events to look for; the profiles themselves are read again, locked, once the events are.
        named = list(session.exec(customers))
        found.events = _events_mentioning(session, shop_id, identity, *_ties(identity, named), lock=True)
    found.customers = _rows(session, customers, Customer, lock)
    customer_ids, emails = _ties(identity, found.customers)
    # Emails as stored (lower-cased) and numbers as channels address them (E.164).
    phones = [normalise_phone(identity.phone), *(normalise_phone(c.phone, c.country_code) for c in found.customers)]
    # The contacts any of these name, and every address they were seen with: all of it is the customer's.
    known_as = [(CUSTOMER, str(i)) for i in customer_ids] + [(EMAIL, e) for e in emails]
    known_as += [(PHONE, p) for p in phones if p]
    contact_ids = sorted(set(contacts_of(session, shop_id, known_as).values()))
    found.contacts = _rows(
        session, select(Contact).where(Contact.shop_id == shop_id, col(Contact.id).in_(contact_ids)), Contact, lock
    )
    found.contact_identities = _rows(
        session,
        select(ContactIdentity).where(
            ContactIdentity.shop_id == shop_id, col(ContactIdentity.contact_id).in_(contact_ids)
        ),
        ContactIdentity,
        lock,
    )
    emails = sorted({*emails, *(i.value for i in found.contact_identities if i.kind == EMAIL)})
    phones += [i.value for i in found.contact_identities if i.kind == PHONE]
    addresses = {a for a in [identity.email, identity.phone, *phones, *emails] if a}
    found.consent_records = _rows(
        session,
        select(ConsentRecord).where(
            ConsentRecord.shop_id == shop_id,
            or_(col(ConsentRecord.customer_id).in_(customer_ids), col(ConsentRecord.address).in_(addresses)),
        ),
        ConsentRecord,
        lock,
    )
    found.orders = _rows(
        session,
        select(Order).where(
            Order.shop_id == shop_id,
            or_(*_matching(Order, identity, customer_ids), col(Order.order_id).in_(list(order_ids))),
        ),
        Order,
        lock,
    )
    found.checkouts = _rows(
        session,
        select(Checkout).where(Checkout.shop_id == shop_id, or_(*_matching(Checkout, identity, customer_ids))),
        Checkout,
        lock,
    )
    subjects = [c.token for c in found.checkouts] + [str(o.order_id) for o in found.orders]
    subjects += [str(i) for i in customer_ids]
    journey_ties = [col(Journey.subject).in_(subjects), col(Journey.contact_id).in_(contact_ids)]
    if customer_ids:
        journey_ties.append(col(Journey.customer_id).in_(customer_ids))
    if emails:
        journey_ties.append(col(Journey.email).in_(emails))
    found.journeys = _rows(
        session, select(Journey).where(Journey.shop_id == shop_id, or_(*journey_ties)), Journey, lock
    )
    journey_ids = [j.id for j in found.journeys]
    found.decisions = _rows(
        session,
        select(Decision).where(Decision.shop_id == shop_id, col(Decision.journey_id).in_(journey_ids)),
        Decision,
        lock,
    )
    found.messages = _rows(
        session,
        select(Message).where(
            Message.shop_id == shop_id,
            or_(
                col(Message.address).in_(addresses),
                col(Message.journey_id).in_(journey_ids),
                col(Message.contact_id).in_(contact_ids),
            ),
        ),
        Message,
        lock,
    )
    found.clicks = _rows(
        session,
        select(Click).where(Click.shop_id == shop_id, col(Click.message_id).in_([m.id for m in found.messages])),
        Click,
        lock,
    )
    found.suppressions = _rows(
        session,
        select(Suppression).where(Suppression.shop_id == shop_id, col(Suppression.address).in_(addresses)),
        Suppression,
        lock,
    )
    found.consent_confirmations = _rows(
        session,
        select(ConsentConfirmation).where(
            ConsentConfirmation.shop_id == shop_id, col(ConsentConfirmation.address).in_(addresses)
        ),
        ConsentConfirmation,
        lock,
    )
    found.whatsapp_windows = _rows(
        session,
        select(WhatsAppWindow).where(
            WhatsAppWindow.shop_id == shop_id, col(WhatsAppWindow.phone).in_([p for p in phones if p])
        ),
        WhatsAppWindow,
        lock,
    )
    browsers = sorted(i.value for i in found.contact_identities if i.kind == BROWSER)
    found.pixel_events = _rows(
        session,
        select(PixelEvent).where(
            PixelEvent.shop_id == shop_id,
            or_(col(PixelEvent.contact_id).in_(contact_ids), col(PixelEvent.client_id).in_(browsers)),
        ),
        PixelEvent,
        lock,
    )
    if not lock:
        found.events = _events_mentioning(session, shop_id, identity, customer_ids, emails)
    return found


def _ties(identity: Identity, customers: Collection[Customer]) -> tuple[set[int], list[str]]:
    """The customer ids and email addresses that tie a row to the customer."""
    customer_ids = {c.customer_id for c in customers}
    if identity.customer_id is not None:
        customer_ids.add(identity.customer_id)
    addresses = {a for a in [identity.email, identity.phone, *(c.email for c in customers)] if a}
    return customer_ids, sorted(a for a in addresses if "@" in a)


def _rows(session: Session, query: SelectOfScalar[M], model: type[M], lock: bool) -> list[M]:
    ordered = query.order_by(col(model.id))  # type: ignore[attr-defined]
    if lock:
        # Re-read under the lock: a row loaded earlier in the transaction may have changed since.
        ordered = ordered.with_for_update().execution_options(populate_existing=True)
    return list(session.exec(ordered))


def _customer_id(value: Any) -> int | None:
    """The request's customer id. One that is no Shopify id (not a 64-bit integer) can name no stored row:
    the customer is then found by email and phone alone, rather than the request failing for ever."""
    try:
        return fields.integer(value)
    except PermanentEventError as exc:
        log.warning("privacy request: customer id ignored (%s)", exc)
        return None


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
    session: Session,
    shop_id: int,
    identity: Identity,
    customer_ids: Collection[int],
    emails: Collection[str],
    *,
    lock: bool = False,
) -> list[WebhookEvent]:
    """Webhook events noted as about the customer, or whose raw body names them (searched in Python: bodies
    are bytes). With `lock`, those to erase, locked in id order: all but the pending self-erasing requests,
    which may be claimed by another worker right now (waiting for it could close a cycle, as it may be
    waiting for this very request's event) and whose bodies go when they are handled."""
    needles = identity.needles()
    noted = [col(WebhookEvent.customer_id).in_(list(customer_ids)), col(WebhookEvent.email).in_(list(emails))]
    ids = set(session.exec(select(WebhookEvent.id).where(WebhookEvent.shop_id == shop_id, or_(*noted))))
    if needles:
        bodies = session.exec(
            select(WebhookEvent.id, WebhookEvent.body)
            .where(WebhookEvent.shop_id == shop_id, col(WebhookEvent.body).is_not(None))
            .execution_options(yield_per=500)  # bodies are large: stream them
        )
        ids |= {event_id for event_id, body in bodies if body is not None and any(n in body.lower() for n in needles)}
    query = select(WebhookEvent).where(col(WebhookEvent.id).in_(ids))
    if lock:
        query = query.where(
            or_(col(WebhookEvent.status) != EventStatus.PENDING, col(WebhookEvent.topic).not_in(SELF_ERASING_TOPICS))
        )
    return _rows(session, query, WebhookEvent, lock)
