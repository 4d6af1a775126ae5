"""Gathering what journey decisions need from the mirror, for one shop and many subjects at once, as plain
facts.

A batch of due journeys (or the journeys one batch of webhooks touches) is decided on facts read with a
handful of set-based queries, whatever its size: the subjects, their customers, the customers' orders,
Chorus's suppressions of their addresses, the variants their lines name. `gather` is the one-subject case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, String, func, or_, union
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from flows.caps import YIELD_AHEAD
from flows.consent import SUBSCRIBED, Source, with_chorus_opt_in
from flows.contents import CONTENTS
from flows.definition import DEFAULT_PRIORITY, FlowDefinition, SendStep
from flows.facts import (
    MIN_PRICE_DROP,
    NO_RECORDED_CONSENT,
    BrowsedProduct,
    BrowsingFacts,
    CartItem,
    CheckoutFacts,
    CheckoutLine,
    Consent,
    ContactFacts,
    CustomerFacts,
    Facts,
    OrderFacts,
    OrderLine,
    PriceDrop,
    ProductNow,
    ShopFacts,
    VariantNow,
)
from flows.phones import normalise_phone
from shopify_app.browsing.stitching import CHECKOUT_EVENTS
from shopify_app.browsing.views import interested_views_of, seen_prices
from shopify_app.contacts import CUSTOMER, EMAIL, PHONE, contacts_of, resolve_pending
from shopify_app.db.statements import among
from shopify_app.models import (
    SENT_STATUSES,
    Checkout,
    ConsentRecord,
    Contact,
    ContactIdentity,
    Customer,
    Journey,
    Message,
    Order,
    PixelEvent,
    Product,
    Shop,
    Suppression,
    Variant,
    WhatsAppWindow,
)
from shopify_app.models.mirror import in_stock
from shopify_app.shop_policy import policy_of
from shopify_app.suppressions import UNSUBSCRIBED

CUSTOMER_ORDERS = 50  # the most recent orders of a customer a decision looks at
RELATED_CANDIDATES = 40  # products read as candidates for a recommendation


def gather(
    session: Session,
    shop: Shop,
    definition: FlowDefinition,
    subject: str,
    *,
    configured: frozenset[str],
    step: str | None = None,
) -> Facts:
    """The facts of one subject of `definition`; the subject's own field is None when it is gone."""
    return gather_many(session, shop, definition, {subject: step}, configured=configured)[subject]


def gather_many(
    session: Session,
    shop: Shop,
    definition: FlowDefinition,
    subjects: Mapping[str, str | None],
    *,
    configured: frozenset[str],
    now: datetime | None = None,
) -> dict[str, Facts]:
    """The facts of each subject of `definition` (subject -> the step it is at, which says whether the facts
    include related products), read together; with `now`, the shop's growth stage as of then."""
    assert shop.id is not None
    resolve_pending(session)  # what this transaction's records said of people, before their contacts are read
    described = shop_facts(shop)
    if now is not None and described.policy.growth_threshold > 0:  # a threshold of 0 needs no count
        described = replace(described, monthly_active=monthly_active(session, shop.id, now))
    base = Facts(shop=described, configured_channels=configured)
    mirror = _Mirror(session, shop.id)
    match definition.subject:
        case "customer" if definition.keyed_on_contact:
            event = definition.trigger.event
            found = _contact_facts(
                mirror, list(subjects), base, views=event == "product_browsed", prices=event == "price_dropped"
            )
        case "checkout":
            found = _checkout_facts(mirror, list(subjects), base)
        case "order":
            found = _order_facts(mirror, list(subjects), base)
            wanting = [
                s for s, step in subjects.items() if found[s].order is not None and _needs_related(definition, step)
            ]
            for subject in wanting:
                found[subject] = _with_related(session, shop.id, found[subject])
        case _:
            found = _customer_facts(mirror, list(subjects), base)
    found = _with_contacts(mirror, _with_suppressions(mirror, _with_form_opt_ins(mirror, found)))
    return _with_whatsapp_opt_ins(mirror, found) if "whatsapp" in configured else found


def _with_contacts(mirror: _Mirror, found: dict[str, Facts]) -> dict[str, Facts]:
    """Each subject's contact: the one its customer id, else its email, else its number belongs to."""

    def named(facts: Facts) -> list[tuple[str, str]]:
        customer = [(CUSTOMER, str(facts.customer_id))] if facts.customer_id is not None else []
        return [*customer, (EMAIL, facts.email or ""), (PHONE, facts.phone or "")]

    unknown = {subject: facts for subject, facts in found.items() if facts.contact is None}  # a browse flow's: known
    owners = contacts_of(mirror.session, mirror.shop_id, {i for f in unknown.values() for i in named(f) if i[1]})
    if not owners:
        return found
    wanted = among(mirror.session, col(Contact.id), set(owners.values()))
    rows = {c.id: c for c in mirror.session.exec(select(Contact).where(Contact.shop_id == mirror.shop_id, wanted))}
    for subject, facts in unknown.items():
        contact = rows.get(next((owners[i] for i in named(facts) if i in owners), None))
        if contact is not None and contact.id is not None:
            described = ContactFacts(contact.id, contact.timezone, contact.country, contact.province, contact.language)
            found[subject] = replace(facts, contact=described)
    return found


ACTIVE_DAYS = 30


def monthly_active(session: Session, shop_id: int, now: datetime) -> int:
    """Distinct contacts with an uncancelled order or a storefront visit (an event of a browser proven theirs)
    in the last 30 days."""
    orders, identities = Order.__table__, ContactIdentity.__table__  # type: ignore[attr-defined]
    o, i, p = orders.c, identities.c, PixelEvent.__table__.c  # type: ignore[attr-defined]
    since = now - timedelta(days=ACTIVE_DAYS)
    named = or_(
        (i.kind == CUSTOMER) & (i.value == func.cast(o.customer_id, String)),
        (i.kind == EMAIL) & (i.value == o.email),
    )
    buyers = (
        rows_of(i.contact_id.label("contact_id"))
        .select_from(orders.join(identities, (i.shop_id == o.shop_id) & named))
        .where(o.shop_id == shop_id, o.created_at > since, o.cancelled_at.is_(None))
    )
    visitors = rows_of(p.contact_id.label("contact_id")).where(
        p.shop_id == shop_id, p.received_at > since, p.contact_id.is_not(None)
    )
    active = union(buyers, visitors).subquery()
    return int(session.execute(rows_of(func.count(func.distinct(active.c.contact_id)))).scalar_one())


def with_activity(
    session: Session,
    shop: Shop,
    found: dict[str, Facts],
    now: datetime,
    *,
    flow: str,
    priorities: Mapping[str, int],
) -> dict[str, Facts]:
    """Each subject's facts with what its contact's frequency caps look at: their marketing messages within the
    longest cap's window, and their other journeys due within the hour (with their flows' priorities)."""
    contacts = sorted({f.contact.contact_id for f in found.values() if f.contact is not None})
    if not contacts:
        return found
    policy = shop_facts(shop).policy
    caps = [*policy.caps, *(c for caps in policy.channel_caps.values() for c in caps)]
    if not caps:  # nothing to count against
        return found
    sent: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    m = Message.__table__.c  # type: ignore[attr-defined]
    at = func.coalesce(m.sent_at, m.created_at)
    since = now - max(c.window for c in caps)
    query = rows_of(m.contact_id, at, m.channel).where(
        m.shop_id == shop.id, among(session, m.contact_id, contacts), m.status.in_([str(s) for s in SENT_STATUSES])
    )
    for contact_id, when, channel in session.execute(query.where(at > since)):
        sent[contact_id].append((when, channel))
    j = Journey.__table__.c  # type: ignore[attr-defined]
    soon: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for contact_id, other, due in session.execute(
        rows_of(j.contact_id, j.flow, j.due_at).where(
            j.shop_id == shop.id, among(session, j.contact_id, contacts), j.state == "waiting", j.flow != flow,
            j.due_at <= now + YIELD_AHEAD,
        )
    ):  # fmt: skip
        soon[contact_id].append((priorities.get(other, DEFAULT_PRIORITY), due))
    for subject, facts in found.items():
        if facts.contact is not None:
            c = facts.contact.contact_id
            found[subject] = replace(facts, recent_messages=tuple(sorted(sent[c])), due_soon=tuple(sorted(soon[c])))
    return found


def _consent(customer: Customer | None, channel: str) -> Consent:
    """The customer's consent on the channel as Shopify last reported it (Chorus's own opt-outs come later)."""
    if customer is None:
        return NO_RECORDED_CONSENT
    if channel == "sms":
        return Consent(customer.sms_consent_state, customer.sms_consent_updated_at, unsubscribed_here=False)
    return Consent(customer.email_consent_state, customer.email_consent_updated_at, unsubscribed_here=False)


def _with_suppressions(mirror: _Mirror, found: dict[str, Facts]) -> dict[str, Facts]:
    """Each subject's facts with what Chorus itself knows of its addresses: opted out through Chorus (an
    unsubscribe link, a STOP reply), or refused for good by a provider. Read together for the batch."""
    # By address: a number's suppressions on SMS and on WhatsApp come back together.
    wanted = [("email", f.email or "") for f in found.values()] + [("sms", f.phone or "") for f in found.values()]
    suppressed = mirror.suppressions(wanted)
    if not suppressed:
        return found
    for subject, facts in found.items():
        email = suppressed.get(("email", facts.email or ""), set())
        sms = suppressed.get(("sms", facts.phone or ""), set())
        whatsapp = suppressed.get(("whatsapp", facts.phone or ""), set())
        refused = {a for a, reasons in ((facts.email, email), (facts.phone, sms)) if a and reasons - {UNSUBSCRIBED}}
        found[subject] = replace(
            facts,
            email_consent=replace(facts.email_consent, unsubscribed_here=UNSUBSCRIBED in email),
            sms_consent=replace(facts.sms_consent, unsubscribed_here=UNSUBSCRIBED in sms),
            whatsapp_consent=replace(facts.whatsapp_consent, unsubscribed_here=UNSUBSCRIBED in whatsapp),
            refused_addresses=frozenset(refused),
        )
    return found


def _with_form_opt_ins(mirror: _Mirror, found: dict[str, Facts]) -> dict[str, Facts]:
    """Each subject's email and SMS consent with the opt-ins Chorus's own forms collected (confirmed, where the
    shop asks for double opt-in), when newer than what Shopify reports."""
    wanted = sorted({a for f in found.values() for a in (f.email, f.phone) if a})
    if not wanted:
        return found
    r = ConsentRecord
    newest = {
        (channel, address): at
        for channel, address, at in mirror.session.execute(
            rows_of(col(r.channel), col(r.address), func.max(col(r.consent_updated_at)))
            .where(col(r.shop_id) == mirror.shop_id, col(r.source) == Source.FORM, col(r.state) == SUBSCRIBED)
            .where(among(mirror.session, col(r.address), wanted))
            .group_by(col(r.channel), col(r.address))
        )
    }
    if not newest:
        return found
    for subject, facts in found.items():
        found[subject] = replace(
            facts,
            email_consent=with_chorus_opt_in(facts.email_consent, newest.get(("email", facts.email or ""))),
            sms_consent=with_chorus_opt_in(facts.sms_consent, newest.get(("sms", facts.phone or ""))),
        )
    return found


def _with_whatsapp_opt_ins(mirror: _Mirror, found: dict[str, Facts]) -> dict[str, Facts]:
    """Each subject's WhatsApp consent: the opt-in its number texted to the shop's WhatsApp number, if any."""
    phones = sorted({f.phone for f in found.values() if f.phone})
    if not phones:
        return found
    opted_in = dict(
        mirror.session.exec(
            select(WhatsAppWindow.phone, WhatsAppWindow.opted_in_at).where(
                WhatsAppWindow.shop_id == mirror.shop_id, among(mirror.session, col(WhatsAppWindow.phone), phones)
            )
        ).all()
    )
    for subject, facts in found.items():
        at = opted_in.get(facts.phone or "")
        if at is not None:
            found[subject] = replace(facts, whatsapp_consent=replace(facts.whatsapp_consent, state="subscribed",
                                                                     changed_at=at))  # fmt: skip
    return found


def shop_facts(shop: Shop) -> ShopFacts:
    return ShopFacts(
        installed=shop.installed, name=shop.name, postal_address=shop.postal_address, url=shop.storefront_url,
        timezone=shop.iana_timezone, currency=shop.currency, money_format=shop.money_format, policy=policy_of(shop),
    )  # fmt: skip


@dataclass
class _Mirror:
    """Set-based reads of one shop's mirror, each a single query for any number of keys."""

    session: Session
    shop_id: int

    def customers(
        self, ids: Collection[int], emails: Collection[str]
    ) -> tuple[dict[int, Customer], dict[str, Customer]]:
        ties = _ties(self.session, (Customer.customer_id, ids), (Customer.email, emails))
        by_id: dict[int, Customer] = {}
        by_email: dict[str, Customer] = {}
        if ties:
            for row in self.session.exec(select(Customer).where(Customer.shop_id == self.shop_id, or_(*ties))):
                by_id[row.customer_id] = row
                if row.email:
                    by_email.setdefault(row.email, row)
        return by_id, by_email

    def orders(self, **keys: Collection[Any]) -> list[Order]:
        columns = {"checkout_token": Order.checkout_token, "cart_token": Order.cart_token,
                   "customer_id": Order.customer_id, "email": Order.email, "order_id": Order.order_id}  # fmt: skip
        ties = _ties(self.session, *((columns[name], values) for name, values in keys.items()))
        if not ties:
            return []
        query = select(Order).where(Order.shop_id == self.shop_id, or_(*ties))
        return list(self.session.exec(query.order_by(col(Order.created_at).desc(), col(Order.id).desc())))

    def suppressions(self, addresses: Collection[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """Why each (channel, address) is suppressed, if it is."""
        found: dict[tuple[str, str], set[str]] = defaultdict(set)
        wanted = sorted({address for _channel, address in addresses if address})
        if wanted:
            for channel, address, reason in self.session.exec(
                select(Suppression.channel, Suppression.address, Suppression.reason).where(
                    Suppression.shop_id == self.shop_id, among(self.session, col(Suppression.address), wanted)
                )
            ):
                found[(channel, address)].add(reason)
        return found

    def variants(self, lines: Iterable[Iterable[dict[str, Any]]]) -> dict[int, VariantNow]:
        return current_variants(self.session, self.shop_id, [line.get("variant_id") for ls in lines for line in ls])


def _checkout_facts(mirror: _Mirror, tokens: Sequence[str], base: Facts) -> dict[str, Facts]:
    checkouts = {
        c.token: c
        for c in mirror.session.exec(
            select(Checkout).where(
                Checkout.shop_id == mirror.shop_id, among(mirror.session, col(Checkout.token), tokens)
            )
        )
    }
    rows = list(checkouts.values())
    by_id, by_email = mirror.customers(_ids(c.customer_id for c in rows), _set(c.email for c in rows))
    orders = _Orders(
        mirror.orders(
            checkout_token=[c.token for c in rows],
            cart_token=_set(c.cart_token for c in rows),
            customer_id=_ids(c.customer_id for c in rows),
            email=_set(c.email for c in rows),
        )
    )
    variants = mirror.variants(c.line_items for c in rows)
    found: dict[str, Facts] = {}
    for token in tokens:
        checkout = checkouts.get(token)
        if checkout is None:
            found[token] = base
            continue
        customer = _one(by_id, by_email, checkout.customer_id, checkout.email)
        found[token] = replace(
            base,
            checkout=checkout_facts(checkout, customer),
            customer=_customer(customer),
            orders=_latest(
                orders.of_checkout(token, checkout.cart_token)
                + orders.of_customer(checkout.customer_id, checkout.email)
            ),
            email_consent=_consent(customer, "email"),
            sms_consent=_consent(customer, "sms"),
            variants=_only(variants, checkout.line_items),
        )
    return found


def _order_facts(mirror: _Mirror, subjects: Sequence[str], base: Facts) -> dict[str, Facts]:
    order_ids = {subject: _int(subject) for subject in subjects}
    subject_orders = {o.order_id: o for o in mirror.orders(order_id=[i for i in order_ids.values() if i is not None])}
    rows = list(subject_orders.values())
    by_id, by_email = mirror.customers(_ids(o.customer_id for o in rows), _set(o.email for o in rows))
    customers = [_one(by_id, by_email, o.customer_id, o.email) for o in rows]
    emails = _set([o.email for o in rows] + [c.email for c in customers if c])
    orders = _Orders(mirror.orders(customer_id=_ids(o.customer_id for o in rows), email=emails))
    variants = mirror.variants(o.line_items for o in rows)
    found: dict[str, Facts] = {}
    for subject, order_id in order_ids.items():
        order = subject_orders.get(order_id) if order_id is not None else None
        if order is None:
            found[subject] = base
            continue
        customer = _one(by_id, by_email, order.customer_id, order.email)
        found[subject] = replace(
            base,
            order=order_facts(order),
            customer=_customer(customer),
            orders=_latest(orders.of_customer(order.customer_id, order.email)),
            email_consent=_consent(customer, "email"),
            sms_consent=_consent(customer, "sms"),
            variants=_only(variants, order.line_items),
        )
    return found


def _customer_facts(mirror: _Mirror, subjects: Sequence[str], base: Facts) -> dict[str, Facts]:
    ids = {subject: _int(subject) for subject in subjects}
    by_id, _by_email = mirror.customers([i for i in ids.values() if i is not None], ())
    rows = list(by_id.values())
    orders = _Orders(mirror.orders(customer_id=[c.customer_id for c in rows], email=_set(c.email for c in rows)))
    found: dict[str, Facts] = {}
    for subject, customer_id in ids.items():
        customer = by_id.get(customer_id) if customer_id is not None else None
        if customer is None:
            found[subject] = base
            continue
        found[subject] = replace(
            base,
            customer=_customer(customer),
            orders=_latest(orders.of_customer(customer.customer_id, customer.email)),
            email_consent=_consent(customer, "email"),
            sms_consent=_consent(customer, "sms"),
        )
    return found


CART_ITEMS = 10  # the most variants of a cart a reminder names
CART_EVENTS = ("product_added_to_cart", *CHECKOUT_EVENTS)


BROWSED_VIEWS = 50  # the most views of interest a contact's facts carry (the latest)


def _contact_facts(
    mirror: _Mirror, subjects: Sequence[str], base: Facts, views: bool = False, prices: bool = False
) -> dict[str, Facts]:
    """A browse flow's subjects: contacts (their ids), each as the person (`Facts.customer`, a guest's without a
    Shopify id) with their consent, orders and storefront activity: their cart since their last checkout (and
    with `views`, the products they viewed with interest and did not add to the cart; with `prices`, the variants
    they viewed or carted that are `MIN_PRICE_DROP` cheaper now)."""
    session, shop_id = mirror.session, mirror.shop_id
    ids = {subject: _int(subject) for subject in subjects}
    wanted = sorted({i for i in ids.values() if i is not None})
    contacts: dict[int, Contact] = {}
    if wanted:
        query = select(Contact).where(Contact.shop_id == shop_id, among(session, col(Contact.id), wanted))
        contacts = {c.id: c for c in session.exec(query) if c.id is not None}
    addresses: dict[tuple[int, str], str] = {}
    if contacts:
        i = ContactIdentity
        for contact_id, kind, value in session.execute(
            rows_of(col(i.contact_id), col(i.kind), col(i.value))
            .where(col(i.shop_id) == shop_id, among(session, col(i.contact_id), sorted(contacts)))
            .where(col(i.kind).in_([EMAIL, PHONE]))
            .order_by(col(i.seen_at), col(i.id))
        ):
            addresses[(contact_id, kind)] = value  # the latest seen
    by_id, _by_email = mirror.customers(_ids(c.customer_id for c in contacts.values()), ())
    people: dict[int, tuple[Customer | None, str | None, str | None]] = {}
    for contact_id, held in contacts.items():
        customer = by_id.get(held.customer_id) if held.customer_id is not None else None
        email = (customer.email if customer else None) or addresses.get((contact_id, EMAIL))
        described = _customer(customer)
        phone = (described.phone if described else None) or addresses.get((contact_id, PHONE))
        people[contact_id] = (customer, email, phone)
    emails = _set(email for _c, email, _p in people.values())
    orders = _Orders(mirror.orders(customer_id=_ids(c.customer_id for c in contacts.values()), email=emails))
    checkouts = _checkouts_started(mirror, _ids(c.customer_id for c in contacts.values()), emails)
    activity = _storefront_activity(session, shop_id, sorted(contacts))
    interested = interested_views_of(session, shop_id, sorted(contacts)) if views else {}
    browsed = {  # latest first
        contact_id: tuple(BrowsedProduct(v.product_id, v.variant_id, v.viewed_at) for v in held[::-1][:BROWSED_VIEWS])
        for contact_id, held in interested.items()
    }
    seen = seen_prices(session, shop_id, contact_ids=sorted(contacts)) if prices and contacts else []
    variants = current_variants(
        session, shop_id,
        [*(item.variant_id for b in activity.values() for item in b.cart),
         *(view.variant_id for held in browsed.values() for view in held), *(s.variant_id for s in seen)],
    )  # fmt: skip
    drops: dict[int, list[PriceDrop]] = defaultdict(list)
    for price in seen:  # latest first
        now = variants.get(price.variant_id)
        if now is not None and now.price is not None and now.price <= price.price * (1 - MIN_PRICE_DROP):
            drops[price.contact_id].append(PriceDrop(price.variant_id, price.product_id, price.price, price.seen_at))
    found: dict[str, Facts] = {}
    for subject, contact_id in ids.items():
        contact = contacts.get(contact_id) if contact_id is not None else None
        if contact is None or contact_id is None:
            found[subject] = base
            continue
        customer, email, phone = people[contact_id]
        browsing = activity.get(contact_id, BrowsingFacts())
        keys = [key for key in (("customer_id", contact.customer_id), ("email", email)) if key[1] is not None]
        webhook_checkout = max((at for key in keys for at in checkouts.get(key, ())), default=None)
        started = max((at for at in (browsing.checkout_started_at, webhook_checkout) if at is not None), default=None)
        cart = tuple(item for item in browsing.cart if started is None or item.added_at > started)
        looked = browsed.get(contact_id, ())
        cheaper = tuple(drops.get(contact_id, ()))
        shown = {item.variant_id for item in cart} | {view.variant_id for view in looked if view.variant_id is not None}
        shown |= {drop.variant_id for drop in cheaper}
        found[subject] = replace(
            base,
            contact=ContactFacts(contact_id, contact.timezone, contact.country, contact.province, contact.language),
            customer=CustomerFacts(
                customer_id=contact.customer_id,
                email=email,
                phone=phone,
                first_name=customer.first_name if customer else None,
                created_at=customer.created_at if customer else contact.created_at,
                last_order_at=customer.last_order_at if customer else None,
            ),
            orders=_latest(orders.of_customer(contact.customer_id, email)),
            email_consent=_consent(customer, "email"),
            sms_consent=_consent(customer, "sms"),
            browsing=BrowsingFacts(
                cart, cart[0].added_at if cart else None, started, looked, browsing.added_to_cart_at, cheaper
            ),
            variants={variant_id: variants[variant_id] for variant_id in shown if variant_id in variants},
        )
    return found


def _checkouts_started(
    mirror: _Mirror, customer_ids: Collection[int], emails: Collection[str]
) -> dict[tuple[str, Any], list[datetime]]:
    """When each checkout a signed webhook named these customers in (by id, and by email) was last active."""
    ties = _ties(mirror.session, (Checkout.customer_id, customer_ids), (Checkout.email, emails))
    found: dict[tuple[str, Any], list[datetime]] = defaultdict(list)
    if ties:
        for customer_id, email, created_at, updated_at in mirror.session.execute(
            rows_of(col(Checkout.customer_id), col(Checkout.email), col(Checkout.created_at), col(Checkout.updated_at))
            .where(col(Checkout.shop_id) == mirror.shop_id, or_(*ties))
        ):  # fmt: skip
            at = max((t for t in (created_at, updated_at) if t is not None), default=None)  # its latest activity
            for key in (("customer_id", customer_id), ("email", email)):
                if at is not None and key[1] is not None:
                    found[key].append(at)
    return found


def _storefront_activity(session: Session, shop_id: int, contact_ids: Sequence[int]) -> dict[int, BrowsingFacts]:
    """Each contact's latest checkout event and what their browsers added to the cart since it (one item per
    variant, its quantities summed, latest first)."""
    if not contact_ids:
        return {}
    e = PixelEvent.__table__.c  # type: ignore[attr-defined]
    events = session.execute(
        rows_of(e.contact_id, e.name, e.variant_id, e.product_id, e.data, e.occurred_at)
        .where(e.shop_id == shop_id, among(session, e.contact_id, contact_ids), e.name.in_(CART_EVENTS))
        .order_by(e.contact_id, e.occurred_at, e.id)
    ).all()
    started: dict[int, datetime] = {}
    last_added: dict[int, datetime] = {}  # the latest addition, whatever came after
    for contact_id, name, _variant, _product, _data, at in events:
        if name in CHECKOUT_EVENTS:
            started[contact_id] = at
        else:
            last_added[contact_id] = at
    carts: dict[int, dict[int, CartItem]] = defaultdict(dict)
    for contact_id, name, variant_id, product_id, data, at in events:
        if name in CHECKOUT_EVENTS or variant_id is None or (contact_id in started and at <= started[contact_id]):
            continue
        quantity = data.get("quantity") if isinstance(data, dict) else None
        added = quantity if isinstance(quantity, int) and quantity > 0 else 1
        held = carts[contact_id].pop(variant_id, None)
        carts[contact_id][variant_id] = CartItem(variant_id, product_id, added + (held.quantity if held else 0), at)
    found: dict[int, BrowsingFacts] = {}
    for contact_id in {*started, *carts, *last_added}:
        items = tuple(reversed(carts[contact_id].values()))[:CART_ITEMS]
        found[contact_id] = BrowsingFacts(
            cart=items,
            cart_updated_at=items[0].added_at if items else None,
            checkout_started_at=started.get(contact_id),
            added_to_cart_at=last_added.get(contact_id),
        )
    return found


def checkout_facts(checkout: Checkout, customer: Customer | None) -> CheckoutFacts:
    region = customer.country_code if customer else None  # reads a number typed without its country code
    return CheckoutFacts(
        token=checkout.token,
        cart_token=checkout.cart_token,
        email=checkout.email,
        customer_id=checkout.customer_id,
        first_name=customer.first_name if customer else None,
        accepts_marketing=checkout.buyer_accepts_marketing,
        currency=checkout.currency,
        recovery_url=checkout.abandoned_checkout_url,
        lines=tuple(
            CheckoutLine(
                variant_id=line.get("variant_id"),
                product_id=line.get("product_id"),
                title=line.get("title"),
                variant_title=line.get("variant_title"),
                quantity=int(line.get("quantity") or 0),
                price_at_checkout=_decimal(line.get("price")),
            )
            for line in checkout.line_items
        ),
        created_at=checkout.created_at,
        updated_at=checkout.updated_at,
        completed_at=checkout.completed_at,
        accepts_sms_marketing=checkout.buyer_accepts_sms_marketing,
        sms_marketing_phone=normalise_phone(checkout.sms_marketing_phone, region),
    )


def order_facts(order: Order) -> OrderFacts:
    return OrderFacts(
        order_id=order.order_id,
        checkout_token=order.checkout_token,
        cart_token=order.cart_token,
        customer_id=order.customer_id,
        email=order.email,
        created_at=order.created_at,
        source_name=order.source_name,
        name=order.name,
        financial_status=order.financial_status,
        cancelled_at=order.cancelled_at,
        fulfilled_at=order.fulfilled_at,
        accepts_marketing=order.buyer_accepts_marketing,
        currency=order.currency,
        total_price=order.total_price,
        lines=tuple(
            OrderLine(
                variant_id=line.get("variant_id"),
                product_id=line.get("product_id"),
                title=line.get("title"),
                quantity=int(line.get("quantity") or 0),
                price=_decimal(line.get("price")),
            )
            for line in order.line_items
        ),
    )


def current_variants(session: Session, shop_id: int, variant_ids: Iterable[Any]) -> dict[int, VariantNow]:
    ids = sorted({int(v) for v in variant_ids if isinstance(v, int)})
    if not ids:
        return {}
    # Columns, not rows as objects: a batch reads hundreds, and the objects would cost more than the query.
    rows = session.execute(
        rows_of(
            col(Variant.variant_id), col(Variant.title), col(Variant.price), col(Variant.currency),
            col(Variant.inventory_policy), col(Variant.inventory_quantity), col(Variant.deleted_at),
            col(Variant.image_url), col(Variant.url), col(Variant.product_id),
            col(Product.title), col(Product.deleted_at), col(Product.id),
        )
        .join(
            Product,
            (col(Product.shop_id) == col(Variant.shop_id)) & (col(Product.product_id) == col(Variant.product_id)),
            isouter=True,
        )
        .where(col(Variant.shop_id) == shop_id, among(session, col(Variant.variant_id), ids))
    )  # fmt: skip
    return {
        variant_id: VariantNow(
            variant_id=variant_id,
            product_title=product_title,
            variant_title=title,
            price=price,
            currency=currency,
            in_stock=in_stock(policy, quantity),
            deleted=deleted_at is not None or (product_row is not None and product_deleted_at is not None),
            image_url=image_url,
            url=url,
            product_id=product_id,
        )
        for (variant_id, title, price, currency, policy, quantity, deleted_at, image_url, url, product_id,
             product_title, product_deleted_at, product_row) in rows
    }  # fmt: skip


def _with_related(session: Session, shop_id: int, facts: Facts) -> Facts:
    """The products bought, and in-stock candidates of the same type or vendor, as the storefront shows them."""
    assert facts.order is not None
    bought = {line.product_id for o in (facts.order, *facts.orders) for line in o.lines if line.product_id}
    own = list(session.exec(select(Product).where(Product.shop_id == shop_id, col(Product.product_id).in_(bought))))
    kin = _ties(
        session,
        (Product.product_type, _set(p.product_type for p in own)),
        (Product.vendor, _set(p.vendor for p in own)),
    )
    candidates: list[Product] = []
    if kin:
        candidates = list(
            session.exec(
                select(Product)
                .where(Product.shop_id == shop_id, or_(*kin), col(Product.deleted_at).is_(None))
                .where(col(Product.product_id).not_in(bought))
                .order_by(col(Product.updated_at).desc(), col(Product.id))
                .limit(RELATED_CANDIDATES)
            )
        )
    products = own + candidates
    variants: dict[int, list[Variant]] = defaultdict(list)
    for variant in session.exec(
        select(Variant).where(
            Variant.shop_id == shop_id,
            col(Variant.product_id).in_([p.product_id for p in products]),
            col(Variant.deleted_at).is_(None),
        )
    ):
        variants[variant.product_id or 0].append(variant)
    return replace(facts, related=tuple(_product_now(p, variants[p.product_id]) for p in products))


def _product_now(product: Product, variants: list[Variant]) -> ProductNow:
    buyable = [v for v in variants if v.in_stock and v.price is not None]
    cheapest = min(buyable, key=lambda v: v.price or Decimal(0)) if buyable else None
    return ProductNow(
        product_id=product.product_id,
        title=product.title,
        product_type=product.product_type,
        vendor=product.vendor,
        url=product.url,
        image_url=product.image_url,
        price=cheapest.price if cheapest else None,
        currency=cheapest.currency if cheapest else None,
        in_stock=cheapest is not None,
        active=product.deleted_at is None and product.status in (None, "active"),
    )


def _needs_related(definition: FlowDefinition, step: str | None) -> bool:
    if step is None:
        return False
    current = definition.step(step)
    return isinstance(current, SendStep) and CONTENTS[current.content].needs_related


def _customer(customer: Customer | None) -> CustomerFacts | None:
    if customer is None:
        return None
    return CustomerFacts(
        customer_id=customer.customer_id,
        email=customer.email,
        phone=normalise_phone(customer.phone, customer.country_code),
        first_name=customer.first_name,
        created_at=customer.created_at,
        last_order_at=customer.last_order_at,
    )


def _one(
    by_id: Mapping[int, Customer], by_email: Mapping[str, Customer], customer_id: int | None, email: str | None
) -> Customer | None:
    """The customer by Shopify id, else by email (as a guest checkout names them)."""
    if customer_id is not None and customer_id in by_id:
        return by_id[customer_id]
    return by_email.get(email) if email else None


class _Orders:
    """A batch's orders indexed by what ties them to a subject, so that each subject finds its own without a
    scan of them all."""

    def __init__(self, orders: Iterable[Order]) -> None:
        self._by: dict[tuple[str, Any], list[Order]] = defaultdict(list)
        for order in orders:
            for name in ("customer_id", "email", "checkout_token", "cart_token"):
                if (value := getattr(order, name)) is not None:
                    self._by[name, value].append(order)

    def _find(self, **keys: Any) -> list[Order]:
        return [o for name, value in keys.items() if value is not None for o in self._by.get((name, value), ())]

    def of_customer(self, customer_id: int | None, email: str | None) -> list[Order]:
        return self._find(customer_id=customer_id, email=email or None)

    def of_checkout(self, token: str, cart_token: str | None) -> list[Order]:
        return self._find(checkout_token=token, cart_token=cart_token or None)


def _latest(orders: Iterable[Order]) -> tuple[OrderFacts, ...]:
    """Newest first, each once, at most CUSTOMER_ORDERS."""
    unique = {o.order_id: o for o in orders}
    newest = sorted(unique.values(), key=lambda o: (o.created_at is not None, o.created_at, o.id), reverse=True)
    return tuple(order_facts(o) for o in newest[:CUSTOMER_ORDERS])


def _only(variants: Mapping[int, VariantNow], lines: Iterable[dict[str, Any]]) -> dict[int, VariantNow]:
    ids: list[Any] = [line.get("variant_id") for line in lines]
    return {i: variants[i] for i in ids if i in variants}


def _ties(session: Session, *pairs: tuple[Any, Collection[Any]]) -> list[ColumnElement[bool]]:
    """`column IN (values)` for each pair with values: the ways a row may belong to the subjects."""
    return [among(session, col(column), values) for column, values in pairs if values]


def _ids(values: Iterable[int | None]) -> list[int]:
    return sorted({v for v in values if v is not None})


def _set(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
