"""`chorus flows preview` and `GET /api/flows/<flow>/preview`: the mirror's last days replayed through a
flow as configured now, read-only.

The mirror keeps current state, not history, so each candidate's facts "as of" an instant are rebuilt from
what carries a time: orders count from their creation, cancellations and fulfilments from theirs, a
checkout's completion from its own; consent is taken from the recorded consent history. Prices and stock
are today's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from flows.consent import SHOPIFY_SOURCES
from flows.contents import CONTENTS
from flows.definition import FlowDefinition
from flows.facts import Consent, Facts, OrderFacts
from flows.preview import Candidate, replay
from shopify_app.journeys.facts import gather
from shopify_app.journeys.store import customer_key
from shopify_app.journeys.tuning import load_tuning
from shopify_app.models import Checkout, ConsentRecord, Order, Shop, Suppression

PAID = ("paid", "partially_refunded", "refunded", "partially_paid")


def preview(
    session: Session, shop: Shop, definition: FlowDefinition, *, days: int, configured: frozenset[str], now: datetime
) -> dict[str, Any]:
    assert shop.id is not None
    since = now - timedelta(days=days)
    tuning = load_tuning(session, shop.id, definition)
    candidates = list(_candidates(session, shop, definition, since, now, configured))
    return replay(definition, tuning, candidates, now).as_json(days)


def _candidates(
    session: Session, shop: Shop, definition: FlowDefinition, since: datetime, now: datetime, configured: frozenset[str]
) -> Iterable[Candidate]:
    assert shop.id is not None
    shop_id = shop.id
    event = definition.trigger.event
    # The facts of a step whose content recommends products include the candidates (as the worker gathers them).
    related = next((s.id for s in definition.send_steps if CONTENTS[s.content].needs_related), None)

    def candidate(subject: str, at: datetime) -> Candidate:
        facts = gather(session, shop, definition, subject, configured=configured, step=related)
        history = _ConsentHistory.load(session, shop_id, facts)
        return Candidate(
            subject, customer_key(facts.customer_id, facts.email), at, lambda t: _as_of(facts, history, t),
            changes_at=_changes(facts, history),
        )  # fmt: skip

    if event == "checkout_changed":
        rows = session.exec(
            select(Checkout.token, Checkout.created_at, Checkout.updated_at).where(
                Checkout.shop_id == shop_id, col(Checkout.created_at) >= since, col(Checkout.created_at) <= now
            )
        )
        for token, created_at, _updated in rows:
            assert created_at is not None
            yield candidate(token, created_at)
    elif event == "order_paid":
        orders = session.exec(
            select(Order.order_id, Order.created_at, Order.processed_at).where(
                Order.shop_id == shop_id, col(Order.financial_status).in_(PAID),
                col(Order.created_at) >= since, col(Order.created_at) <= now,
            )
        )  # fmt: skip
        for order_id, created_at, processed_at in orders:
            yield candidate(str(order_id), processed_at or created_at or since)
    elif event == "customer_subscribed":
        first: dict[int, datetime] = {}
        for customer_id, at in session.exec(
            select(ConsentRecord.customer_id, ConsentRecord.consent_updated_at)
            .where(ConsentRecord.shop_id == shop_id, ConsentRecord.channel == "email")
            .where(ConsentRecord.state == "subscribed", col(ConsentRecord.source).in_(SHOPIFY_SOURCES))
            .order_by(col(ConsentRecord.consent_updated_at))
        ):
            if customer_id is not None:
                first.setdefault(customer_id, at)
        for customer_id, at in first.items():
            if since <= at <= now:
                yield candidate(str(customer_id), at)
    elif event == "order_lapsed":
        assert definition.trigger.after is not None
        for customer_id, crossed_at in _lapses(session, shop_id, definition.trigger.after, since, now):
            yield candidate(str(customer_id), crossed_at)


def _lapses(
    session: Session, shop_id: int, after: timedelta, since: datetime, now: datetime
) -> Iterable[tuple[int, datetime]]:
    """(customer, instant) for every order of a customer that went `after` without a next one, in the window."""
    placed: dict[int, list[datetime]] = {}
    for customer_id, created_at in session.exec(
        select(Order.customer_id, Order.created_at)
        .where(Order.shop_id == shop_id, col(Order.customer_id).is_not(None), col(Order.cancelled_at).is_(None))
        .where(col(Order.created_at) >= since - after, col(Order.created_at) <= now - after)
    ):
        if customer_id is not None and created_at is not None:
            placed.setdefault(customer_id, []).append(created_at)
    for customer_id, moments in placed.items():
        later = session.exec(
            select(Order.created_at).where(
                Order.shop_id == shop_id, Order.customer_id == customer_id, col(Order.cancelled_at).is_(None)
            )
        ).all()
        for moment in sorted(moments):
            crossing = moment + after
            if since <= crossing <= now and not any(o is not None and moment < o <= crossing for o in later):
                yield customer_id, crossing


class _ConsentHistory:
    """The customer's email consent as recorded over time, and when their address unsubscribed here."""

    def __init__(self, changes: list[tuple[datetime, str | None]], unsubscribed_at: datetime | None) -> None:
        self._changes = sorted(changes, key=lambda c: c[0])
        self._unsubscribed_at = unsubscribed_at

    @classmethod
    def load(cls, session: Session, shop_id: int, facts: Facts) -> _ConsentHistory:
        changes: list[tuple[datetime, str | None]] = []
        if facts.customer is not None and facts.customer.customer_id is not None:
            changes = [
                (at, state)
                for at, state in session.exec(
                    select(ConsentRecord.consent_updated_at, ConsentRecord.state).where(
                        ConsentRecord.shop_id == shop_id,
                        ConsentRecord.customer_id == facts.customer.customer_id,
                        ConsentRecord.channel == "email",
                        col(ConsentRecord.source).in_(SHOPIFY_SOURCES),  # Chorus's own: its suppressions
                    )
                )
            ]
        unsubscribed = None
        if facts.email:
            unsubscribed = session.exec(
                select(Suppression.created_at).where(
                    Suppression.shop_id == shop_id, Suppression.channel == "email", Suppression.address == facts.email
                )
            ).first()
        return cls(changes, unsubscribed)

    @property
    def instants(self) -> list[datetime]:
        return [at for at, _state in self._changes] + ([self._unsubscribed_at] if self._unsubscribed_at else [])

    def at(self, moment: datetime, current: Consent) -> Consent:
        if not self._changes:
            return replace(current, unsubscribed_here=self._unsubscribed_by(moment))
        past = [c for c in self._changes if c[0] <= moment]
        state, changed_at = (past[-1][1], past[-1][0]) if past else (None, None)
        return Consent(state=state, changed_at=changed_at, unsubscribed_here=self._unsubscribed_by(moment))

    def _unsubscribed_by(self, moment: datetime) -> bool:
        return self._unsubscribed_at is not None and self._unsubscribed_at <= moment


def _changes(facts: Facts, history: _ConsentHistory) -> tuple[datetime, ...]:
    """When the facts changed, as far as the mirror tells: orders placed, shipped or cancelled, a checkout
    completed, consent changed."""
    orders = [*facts.orders, *([facts.order] if facts.order is not None else [])]
    moments = [m for o in orders for m in (o.created_at, o.cancelled_at, o.fulfilled_at)]
    moments += [facts.checkout.completed_at if facts.checkout is not None else None, *history.instants]
    return tuple(sorted({m for m in moments if m is not None}))


def _as_of(facts: Facts, history: _ConsentHistory, moment: datetime) -> Facts:
    """The facts with only what had happened by `moment`."""
    orders = tuple(_order_as_of(o, moment) for o in facts.orders if o.created_at is None or o.created_at <= moment)
    checkout = facts.checkout
    if checkout is not None and checkout.completed_at is not None and checkout.completed_at > moment:
        checkout = replace(checkout, completed_at=None)
    order = _order_as_of(facts.order, moment) if facts.order is not None else None
    customer = facts.customer
    if customer is not None:
        placed = [o.created_at for o in orders if o.created_at is not None and o.customer_id == customer.customer_id]
        customer = replace(customer, last_order_at=max(placed, default=None))
    return replace(
        facts,
        checkout=checkout,
        order=order,
        orders=orders,
        customer=customer,
        email_consent=history.at(moment, facts.email_consent),
    )


def _order_as_of(order: OrderFacts, moment: datetime) -> OrderFacts:
    def known(value: datetime | None) -> datetime | None:
        return value if value is not None and value <= moment else None

    return replace(order, cancelled_at=known(order.cancelled_at), fulfilled_at=known(order.fulfilled_at))
