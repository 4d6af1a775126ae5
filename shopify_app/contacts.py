"""Contacts: one person per shop, found by any identity they were seen with, merged when two turn out to be one.

Every write of the mirror that names a person (a customer, a checkout, an order) notes with `observe` what
it saw together: a Shopify customer id, email addresses, phone numbers, an address's country and province,
a language. The transaction's notes are resolved together, in a few statements, before anything reads
contacts and at the latest before it commits (one statement per note made a batch of webhooks eight times
slower). The identities already known name the contacts involved. None: a new contact. Several: they are
one person and are merged into one (the one with the customer id, else the oldest), except that two
contacts of two different Shopify customers are never merged: an identity seen with both stays with the
contact that had it first.

A merge moves identities, journeys and messages (decisions follow their journey) to the contact that stays;
when both had an active journey in one flow, the one that entered first goes on and the other ends as
`merged`, as the engine ends any journey. Identities are inserted with ON CONFLICT DO NOTHING: a worker
that loses a race leaves the identity with the contact that won it, and the next observation merges.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, delete, event, or_, update
from sqlalchemy import select as rows_of
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from flows import engine
from flows.phones import normalise_phone
from flows.reasons import Reason
from flows.zones import contact_zone
from shopify_app.db.statements import among
from shopify_app.models import Contact, ContactIdentity, Journey, Message

log = logging.getLogger(__name__)

_IDENTITIES: Table = ContactIdentity.__table__  # type: ignore[attr-defined]
CUSTOMER, EMAIL, PHONE = "customer", "email", "phone"
BROWSER = "browser"  # a storefront browser's client id, linked only by proof (`browsing.stitching`)
MAX_IDENTITY = 320


@dataclass(frozen=True)
class Seen:
    """What one record said of one person, together."""

    customer_id: int | None = None
    emails: tuple[str | None, ...] = ()
    phones: tuple[str | None, ...] = ()  # as given: normalised to E.164 here
    country: str | None = None
    province: str | None = None
    language: str | None = None

    def identities(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.customer_id is not None:
            found.append((CUSTOMER, str(self.customer_id)))
        found += [(EMAIL, e.strip().lower()) for e in self.emails if e and "@" in e]
        found += [(PHONE, p) for p in (normalise_phone(raw) for raw in self.phones) if p]
        return list(dict.fromkeys(i for i in found if len(i[1]) <= MAX_IDENTITY))


PENDING = "contacts_pending"  # the session's observations not yet resolved


def observe(session: Session, shop_id: int, seen: Seen, now: datetime) -> None:
    """Note what one record said of one person; resolved with the others of the transaction, together, before
    anything reads contacts (`resolve_pending`) and at the latest before the transaction commits."""
    if seen.identities():
        session.info.setdefault(PENDING, []).append((shop_id, seen, now))


def resolve_pending(session: Session) -> None:
    """The contacts of every observation noted in this transaction: created, described or merged as they
    require. A few statements per shop, whatever the number of observations (a batch holds hundreds)."""
    pending: list[tuple[int, Seen, datetime]] = session.info.pop(PENDING, [])
    by_shop: dict[int, list[tuple[Seen, datetime]]] = {}
    for shop_id, seen, now in pending:
        by_shop.setdefault(shop_id, []).append((seen, now))
    for shop_id, observed in sorted(by_shop.items()):
        with session.no_autoflush:  # the mirror's rows go with the transaction's own flush
            _resolve(session, shop_id, observed)


@event.listens_for(OrmSession, "before_commit")
def _resolve_before_commit(session: OrmSession) -> None:
    if session.info.get(PENDING):
        resolve_pending(session)  # type: ignore[arg-type]  # every session of the app is SQLModel's


def _resolve(session: Session, shop_id: int, observed: list[tuple[Seen, datetime]]) -> None:
    wanted = list(dict.fromkeys(i for seen, _now in observed for i in seen.identities()))
    held = _owners(session, shop_id, wanted)
    rows = {c.id: c for c in _contacts(session, shop_id, set(held.values()))}
    owner: dict[tuple[str, str], Contact] = {i: rows[c] for i, c in held.items() if c in rows}
    added: dict[tuple[str, str], Contact] = {}  # identities first seen now, with their contact
    for seen, now in observed:
        identities = seen.identities()
        found = list({id(c): c for c in (owner[i] for i in identities if i in owner)}.values())
        survivor = _survivor(found, seen.customer_id)
        if survivor is None:
            survivor = Contact(shop_id=shop_id, customer_id=seen.customer_id, created_at=now, updated_at=now)
            session.add(survivor)
        customer_id = survivor.customer_id if survivor.customer_id is not None else seen.customer_id
        for other in found:
            if other is survivor or other.customer_id not in (None, customer_id):
                continue
            if other.id is None:  # made in this same transaction: nothing refers to it yet
                session.expunge(other)
            else:
                session.flush()
                merge(session, survivor, other, now)
            for identity, contact in [*owner.items(), *added.items()]:
                if contact is other:
                    owner[identity] = survivor
                    if identity in added:
                        added[identity] = survivor
        _describe(survivor, seen, now)
        for identity in identities:
            if identity not in owner:
                owner[identity] = added[identity] = survivor
    session.flush()  # the new contacts get their ids
    if added:
        _insert_identities(session, shop_id, [(k, v, c.id) for (k, v), c in added.items() if c.id is not None],
                           observed[0][1])  # fmt: skip


def merge(session: Session, survivor: Contact, other: Contact, now: datetime) -> None:
    """`other` is `survivor`: its identities, journeys and messages move over, duplicate journeys end."""
    from shopify_app.journeys.store import JourneyRow, JourneyRows, to_pure  # the store sits above contacts

    assert survivor.id is not None
    assert other.id is not None
    rows = JourneyRows(session)
    by_flow: dict[str, list[JourneyRow]] = {}
    for row in rows.active_of_contacts(survivor.shop_id, (survivor.id, other.id)):
        by_flow.setdefault(row.flow, []).append(row)
    for same_flow in by_flow.values():
        same_flow.sort(key=lambda r: (r.entered_at or r.created_at, r.id or 0))
        for row in same_flow[1:]:  # the earliest goes on
            rows.apply(row, engine.end(to_pure(row), Reason.MERGED), definition=None, facts=None, now=now)
    rows.write()
    session.execute(update(Journey).where(col(Journey.contact_id) == other.id).values(contact_id=survivor.id))
    session.execute(update(Message).where(col(Message.contact_id) == other.id).values(contact_id=survivor.id))
    session.execute(update(_IDENTITIES).where(_IDENTITIES.c.contact_id == other.id).values(contact_id=survivor.id))
    for name in ("country", "province", "timezone", "language"):
        if getattr(survivor, name) is None:
            setattr(survivor, name, getattr(other, name))
    survivor.created_at = min(survivor.created_at, other.created_at)
    survivor.updated_at = now
    customer_id = other.customer_id
    session.delete(other)
    session.flush()  # gone before its customer id moves over (one contact per customer)
    if survivor.customer_id is None:
        survivor.customer_id = customer_id
    log.info("shop %s: contact %s merged into contact %s", survivor.shop_id, other.id, survivor.id)


def contacts_of(session: Session, shop_id: int, identities: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which contact each identity belongs to (those known)."""
    return _owners(session, shop_id, list(identities), lock=False)


def _owners(
    session: Session, shop_id: int, wanted: list[tuple[str, str]], *, lock: bool = True
) -> dict[tuple[str, str], int]:
    if not wanted:
        return {}
    i = _IDENTITIES.c
    by_kind: dict[str, set[str]] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, set()).add(value)
    # One array of values per kind: a batch names hundreds of identities, and a condition per pair would make
    # a statement that takes longer to build than to run.
    named = [and_(i.kind == kind, among(session, i.value, sorted(values))) for kind, values in sorted(by_kind.items())]
    query = rows_of(i.kind, i.value, i.contact_id).where(i.shop_id == shop_id, or_(*named))
    if lock:
        query = query.order_by(i.id).with_for_update()
    return {(kind, value): contact_id for kind, value, contact_id in session.execute(query)}


def _contacts(session: Session, shop_id: int, ids: set[int]) -> list[Contact]:
    if not ids:
        return []
    query = select(Contact).where(Contact.shop_id == shop_id, col(Contact.id).in_(sorted(ids)))
    return list(session.exec(query.order_by(col(Contact.id)).with_for_update()))


def _survivor(found: Iterable[Contact], customer_id: int | None) -> Contact | None:
    ordered = sorted(found, key=lambda c: c.id if c.id is not None else 1 << 62)  # the stored first, oldest first
    if customer_id is not None:
        mine = [c for c in ordered if c.customer_id == customer_id]
        if mine:
            return mine[0]
        free = [c for c in ordered if c.customer_id is None]
        return free[0] if free else None  # all belong to other customers: this customer is someone new
    with_customer = [c for c in ordered if c.customer_id is not None]
    return with_customer[0] if with_customer else (ordered[0] if ordered else None)


def _describe(contact: Contact, seen: Seen, now: datetime) -> None:
    """What the record says of where the person lives and reads, over what was known."""
    changed = False
    if seen.customer_id is not None and contact.customer_id is None:
        contact.customer_id, changed = seen.customer_id, True
    if seen.country and (seen.country.upper(), seen.province) != (contact.country, contact.province):
        contact.country = seen.country.upper()[:2]
        contact.province = seen.province.upper()[:10] if seen.province else None
        changed = True
    if seen.language and seen.language[:20] != contact.language:
        contact.language, changed = seen.language[:20], True
    phones = [p for p in (normalise_phone(raw) for raw in seen.phones) if p]
    zone = contact_zone(contact.country, contact.province, phones[0] if phones else None)
    if zone is not None and zone != contact.timezone:
        contact.timezone, changed = zone, True
    if changed:
        contact.updated_at = now


def _insert_identities(session: Session, shop_id: int, identities: list[tuple[str, str, int]], now: datetime) -> None:
    values = [
        {"shop_id": shop_id, "contact_id": contact_id, "kind": k, "value": v, "seen_at": now}
        for k, v, contact_id in identities
    ]
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(make(_IDENTITIES).values(values).on_conflict_do_nothing())


def erase(session: Session, shop_id: int, contact_ids: Iterable[int]) -> None:
    """Forget these contacts and their identities; their journeys and messages are the caller's to erase."""
    ids = sorted(set(contact_ids))
    if ids:
        session.execute(delete(_IDENTITIES).where(_IDENTITIES.c.shop_id == shop_id, _IDENTITIES.c.contact_id.in_(ids)))
        session.execute(delete(Contact).where(col(Contact.shop_id) == shop_id, col(Contact.id).in_(ids)))
