"""Linking a storefront browser to a contact, only by proof.

A pixel event says whatever its browser wants, so it never identifies anyone by itself. The proof is a join
done here, on the server: a `checkout_started` or `checkout_completed` event names a checkout token, and a
signed `checkouts/*` or `orders/create` webhook names the same token with the person's email or customer id.
Whichever arrives first, the other completes the join: the pixel's side when its events are stored, the
webhook's side when its transaction commits (after the contacts it observed are resolved). A logged-in customer
on a signed app-proxy request is the other proof (`link_browser`).

A browser id is an identity of one contact at a time and never merges two contacts: a shared computer proven
to be someone else's moves to them (the latest proof wins), and the events it sent while nobody was known
join the contact's history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, event, func, or_, update
from sqlalchemy import select as rows_of
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from shopify_app.contacts import BROWSER, CUSTOMER, EMAIL, contacts_of, resolve_pending
from shopify_app.db.statements import among, dialect_insert
from shopify_app.models import Checkout, ContactIdentity, Order, PixelEvent

_EVENTS: Table = PixelEvent.__table__  # type: ignore[attr-defined]
CHECKOUT_EVENTS = ("checkout_started", "checkout_completed")
PENDING = "stitching_pending"  # the checkout tokens signed webhooks named in this transaction, by shop


def note_checkout(session: Session, shop_id: int, token: str | None) -> None:
    """A signed webhook named this checkout token: its browsers are linked when the transaction commits."""
    if token:
        session.info.setdefault(PENDING, set()).add((shop_id, token))


@event.listens_for(OrmSession, "before_commit")
def _stitch_before_commit(session: OrmSession) -> None:
    pending: set[tuple[int, str]] = session.info.pop(PENDING, set())
    if not pending:
        return
    resolve_pending(session)  # type: ignore[arg-type]  # the contacts those webhooks named, first
    by_shop: dict[int, set[str]] = {}
    for shop_id, token in pending:
        by_shop.setdefault(shop_id, set()).add(token)
    for shop_id, tokens in sorted(by_shop.items()):
        stitch(session, shop_id, tokens)  # type: ignore[arg-type]


def stitch(session: Session, shop_id: int, tokens: Collection[str], now: datetime | None = None) -> int:
    """Link the browsers whose checkout events name these tokens to the contacts the signed webhooks of those
    checkouts name; returns how many browsers were linked."""
    e = _EVENTS.c
    found = session.execute(
        rows_of(e.client_id, e.checkout_token, e.received_at)
        .where(e.shop_id == shop_id, e.name.in_(CHECKOUT_EVENTS), among(session, e.checkout_token, sorted(tokens)))
        .distinct()
    ).all()
    if not found:
        return 0
    owners = _contacts_of_checkouts(session, shop_id, {token for _client, token, _at in found})
    links = {client: (owners[token], token) for client, token, _at in found if token in owners}
    for client, (contact_id, token) in sorted(links.items()):
        link_browser(session, shop_id, client, contact_id, now or max(at for _c, _t, at in found), token)
    return len(links)


def link_browser(
    session: Session, shop_id: int, client_id: str, contact_id: int, now: datetime, token: str | None = None
) -> None:
    """`client_id` is proven to be the contact's browser: its identity (moved from another contact if it was
    theirs), and its events that named nobody, or that came after the other contact's last checkout on it (a
    shared computer changed hands then), join the contact. `token`: the checkout that proves it, if one does."""
    previous = contacts_of(session, shop_id, [(BROWSER, client_id)]).get((BROWSER, client_id))
    session.execute(
        dialect_insert(session.get_bind().dialect.name, ContactIdentity)
        .values(shop_id=shop_id, contact_id=contact_id, kind=BROWSER, value=client_id, seen_at=now)
        .on_conflict_do_update(index_elements=["shop_id", "kind", "value"], set_={"contact_id": contact_id})
    )
    e = _EVENTS.c
    theirs: ColumnElement[bool] = e.contact_id.is_(None)
    if previous is not None and previous != contact_id:
        last_theirs = rows_of(func.max(e.id)).where(e.shop_id == shop_id, e.client_id == client_id)
        last_theirs = last_theirs.where(e.contact_id == previous, e.name.in_(CHECKOUT_EVENTS))
        handed_over = session.execute(last_theirs.where(e.checkout_token != (token or ""))).scalar()
        theirs = or_(theirs, and_(e.contact_id == previous, e.id > (handed_over or 0)))
    session.execute(
        update(_EVENTS).where(e.shop_id == shop_id, e.client_id == client_id, theirs).values(contact_id=contact_id)
    )


def browsers_of(session: Session, shop_id: int, client_ids: Collection[str]) -> dict[str, int]:
    """The contact each of these browsers is linked to (those linked)."""
    if not client_ids:
        return {}
    owners = contacts_of(session, shop_id, [(BROWSER, c) for c in client_ids])
    return {value: contact for (_kind, value), contact in owners.items()}


def _contacts_of_checkouts(session: Session, shop_id: int, tokens: set[str]) -> Mapping[str, int]:
    """The contact each checkout token belongs to, as its signed checkout or order says: by customer id, else
    by email."""
    named: dict[str, list[tuple[str, str]]] = {}
    checkouts = session.execute(
        rows_of(col(Checkout.token), col(Checkout.customer_id), col(Checkout.email))
        .where(col(Checkout.shop_id) == shop_id, among(session, col(Checkout.token), sorted(tokens)))
    )  # fmt: skip
    orders = session.execute(
        rows_of(col(Order.checkout_token), col(Order.customer_id), col(Order.email))
        .where(col(Order.shop_id) == shop_id, among(session, col(Order.checkout_token), sorted(tokens)))
    )  # fmt: skip
    for token, customer_id, email in [*checkouts, *orders]:
        if token is None:
            continue
        if customer_id is not None:
            named.setdefault(token, []).append((CUSTOMER, str(customer_id)))
        if email:
            named.setdefault(token, []).append((EMAIL, email))
    owners = contacts_of(session, shop_id, [i for ids in named.values() for i in ids])
    found: dict[str, int] = {}
    for token, identities in named.items():
        contact = next((owners[i] for i in identities if i in owners), None)
        if contact is not None:
            found[token] = contact
    return found
