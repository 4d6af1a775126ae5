"""Journeys in the database: reading them as the engine's plain model, writing back what it decided.

Every change of a journey goes through `apply`, which stores the new state and its decisions together, so
the trace is complete by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import Session, col, select

from flows import journey as pure
from flows.definition import FlowDefinition
from flows.facts import Facts
from flows.journey import Advance, Performed, Status
from flows.reasons import Reason
from shopify_app.models import Decision, Journey, Message, MessageStatus

OPEN_STATES = tuple(s.value for s in pure.OPEN)
ACTIVE_STATES = tuple(s.value for s in pure.ACTIVE)


def customer_key(customer_id: int | None, email: str | None) -> str | None:
    """Who a journey is about, until contacts exist: the Shopify customer id, else the lower-cased email."""
    if customer_id is not None:
        return f"id:{customer_id}"
    return f"email:{email}" if email else None


def to_pure(row: Journey) -> pure.Journey:
    return pure.Journey(
        flow=row.flow,
        subject=row.subject,
        status=Status(row.state),
        reason=_reason(row.reason),
        step=row.step,
        entered_at=row.entered_at,
        arrived_at=row.arrived_at,
        previous_at=row.previous_at,
        due_at=row.due_at,
        performed={step: Performed(outcome) for step, outcome in (row.performed or {}).items()},
    )


def open_journey(session: Session, shop_id: int, flow: str, subject: str) -> Journey | None:
    """The subject's open (ineligible, waiting or sending) journey in the flow, locked."""
    return session.exec(
        select(Journey)
        .where(Journey.shop_id == shop_id, Journey.flow == flow, Journey.subject == subject)
        .where(col(Journey.state).in_(OPEN_STATES))
        .with_for_update()
    ).first()


def last_entry(session: Session, shop_id: int, flow: str, subject: str) -> datetime | None:
    latest: datetime | None = session.exec(
        select(func.max(Journey.entered_at)).where(
            Journey.shop_id == shop_id, Journey.flow == flow, Journey.subject == subject
        )
    ).one()
    return latest


def active_of_customer(session: Session, shop_id: int, flow: str, key: str | None, subject: str) -> list[Journey]:
    """The customer's other active journeys in the flow, locked."""
    if key is None:
        return []
    return list(
        session.exec(
            select(Journey)
            .where(Journey.shop_id == shop_id, Journey.flow == flow, Journey.exclusive_key == key)
            .where(col(Journey.state).in_(ACTIVE_STATES), Journey.subject != subject)
            .with_for_update()
        )
    )


def journeys_touching(
    session: Session, shop_id: int, *, subjects: Sequence[str], customer_id: int | None, email: str | None
) -> list[Journey]:
    """Active journeys about these subjects or this customer, locked: an event may end or move them."""
    ties: list[ColumnElement[bool]] = [col(Journey.subject).in_(list(subjects))] if subjects else []
    if customer_id is not None:
        ties.append(col(Journey.customer_id) == customer_id)
    if email:
        ties.append(col(Journey.email) == email)
    if not ties:
        return []
    return list(
        session.exec(
            select(Journey)
            .where(Journey.shop_id == shop_id, col(Journey.state).in_(ACTIVE_STATES), or_(*ties))
            .order_by(col(Journey.id))
            .with_for_update()
        )
    )


def new_row(shop_id: int, definition: FlowDefinition, subject: str, now: datetime) -> Journey:
    return Journey(
        shop_id=shop_id,
        flow=definition.name,
        subject=subject,
        state=Status.INELIGIBLE,
        reason="new",
        created_at=now,
        updated_at=now,
    )


def apply(
    session: Session,
    row: Journey,
    advance: Advance,
    *,
    definition: FlowDefinition | None,
    facts: Facts | None,
    now: datetime,
) -> None:
    """Store the journey's new state and its decisions; deferred messages of a step it left are cancelled."""
    journey = advance.journey
    left_step = row.step is not None and (journey.step != row.step or journey.status is Status.DONE)
    if left_step and row.id is not None:
        session.execute(
            update(Message)
            .where(col(Message.journey_id) == row.id, col(Message.step) == row.step)
            .where(col(Message.status) == MessageStatus.DEFERRED)
            .values(status=MessageStatus.CANCELLED)
        )
    if facts is not None:
        row.customer_id = facts.customer_id if facts.customer_id is not None else row.customer_id
        row.email = facts.email or row.email
    row.state = journey.status
    row.step = journey.step
    row.reason = journey.reason
    row.due_at = journey.due_at
    row.entered_at = journey.entered_at
    row.arrived_at = journey.arrived_at
    row.previous_at = journey.previous_at
    row.performed = {step: str(outcome) for step, outcome in journey.performed.items()}
    exclusive = definition is not None and definition.entry.one_active_per_customer and journey.active
    row.exclusive_key = customer_key(row.customer_id, row.email) if exclusive else None
    row.updated_at = now
    if row.id is None:
        session.add(row)
    session.flush()  # the id, for the decisions, and the unique indexes checked now
    assert row.id is not None
    for decision in advance.decisions:
        session.add(
            Decision(
                shop_id=row.shop_id,
                journey_id=row.id,
                flow=row.flow,
                step=decision.step,
                outcome=decision.outcome,
                reason=decision.reason,
                detail=dict(decision.detail),
                decided_at=now,
            )
        )


def record(
    session: Session,
    row: Journey,
    step: str | None,
    outcome: str,
    reason: Reason,
    detail: dict[str, object],
    now: datetime,
) -> None:
    """A decision taken outside the engine (the hand-over's outcome)."""
    assert row.id is not None
    session.add(
        Decision(
            shop_id=row.shop_id,
            journey_id=row.id,
            flow=row.flow,
            step=step,
            outcome=outcome,
            reason=reason,
            detail=detail,
            decided_at=now,
        )
    )


def _reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.WAIT  # a row from before its reason existed: it is simply waiting
