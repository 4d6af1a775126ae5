"""Journeys in the database: reading them as the engine's plain model, writing back what it decided.

Every change of a journey goes through `apply`, which stores the new state and its decisions together, so
the trace is complete by construction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, update
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from flows import journey as pure
from flows.definition import FlowDefinition
from flows.facts import Facts
from flows.journey import Advance, Performed, Status
from flows.reasons import Reason
from shopify_app.db.statements import among, append_rows
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


def open_journeys(session: Session, shop_id: int, flow: str, subjects: Collection[str]) -> dict[str, Journey]:
    """The subjects' open (ineligible, waiting or sending) journeys in the flow, locked in id order."""
    if not subjects:
        return {}
    rows = session.exec(
        select(Journey)
        .where(Journey.shop_id == shop_id, Journey.flow == flow, among(session, col(Journey.subject), subjects))
        .where(col(Journey.state).in_(OPEN_STATES))
        .order_by(col(Journey.id))
        .with_for_update()
    )
    return {row.subject: row for row in rows}


def last_entries(session: Session, shop_id: int, flow: str, subjects: Collection[str]) -> dict[str, datetime]:
    """Each subject's latest entry into the flow, for those that entered before."""
    if not subjects:
        return {}
    rows = session.execute(
        rows_of(Journey.subject, func.max(Journey.entered_at))  # type: ignore[call-overload]
        .where(Journey.shop_id == shop_id, Journey.flow == flow, among(session, col(Journey.subject), subjects))
        .group_by(Journey.subject)
    )
    return {subject: at for subject, at in rows if at is not None}


def active_by_customer(session: Session, shop_id: int, flow: str, keys: Collection[str]) -> dict[str, list[Journey]]:
    """The active journeys of these customers in the flow (where it allows one each), locked in id order."""
    if not keys:
        return {}
    found: dict[str, list[Journey]] = {}
    for row in session.exec(
        select(Journey)
        .where(Journey.shop_id == shop_id, Journey.flow == flow, among(session, col(Journey.exclusive_key), keys))
        .where(col(Journey.state).in_(ACTIVE_STATES))
        .order_by(col(Journey.id))
        .with_for_update()
    ):
        found.setdefault(row.exclusive_key or "", []).append(row)
    return found


def journeys_touching(
    session: Session,
    shop_id: int,
    *,
    subjects: Collection[str] = (),
    customer_ids: Collection[int] = (),
    emails: Collection[str] = (),
) -> list[Journey]:
    """Active journeys about these subjects or customers, locked in id order: events may end or move them."""
    ties: list[ColumnElement[bool]] = [
        among(session, col(column), values)
        for column, values in (
            (Journey.subject, subjects),
            (Journey.customer_id, customer_ids),
            (Journey.email, emails),
        )
        if values
    ]
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


class Trace:
    """Decisions to write together at the end of a batch (one multi-row insert or COPY, not one object each)."""

    def __init__(self) -> None:
        self._rows: list[tuple[Journey, dict[str, Any]]] = []

    def add(
        self, row: Journey, step: str | None, outcome: str, reason: str, detail: Mapping[str, Any], at: datetime
    ) -> None:
        # The row, not its id: a journey entered in this batch gets its id when the batch is flushed.
        values = {"step": step, "outcome": outcome, "reason": str(reason), "detail": dict(detail), "decided_at": at}
        self._rows.append((row, values))

    def write(self, session: Session) -> None:
        if not self._rows:
            return
        session.flush()  # new journeys (one multi-row insert), and the unique indexes checked
        rows = [
            {"shop_id": row.shop_id, "journey_id": row.id, "flow": row.flow, **values} for row, values in self._rows
        ]
        append_rows(session, _DECISIONS, rows)
        self._rows = []


_DECISIONS: Table = Decision.__table__  # type: ignore[attr-defined]


def apply(
    session: Session,
    row: Journey,
    advance: Advance,
    *,
    definition: FlowDefinition | None,
    facts: Facts | None,
    now: datetime,
    trace: Trace | None = None,
) -> None:
    """Store the journey's new state and its decisions (into `trace`, else at once); a deferred message of a
    step it leaves is cancelled."""
    journey = advance.journey
    left_step = row.step is not None and (journey.step != row.step or journey.status is Status.DONE)
    if left_step and row.id is not None and row.reason == Reason.SEND_DEFERRED:
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
    own = trace or Trace()
    for decision in advance.decisions:
        own.add(row, decision.step, decision.outcome, decision.reason, decision.detail, now)
    if trace is None:
        own.write(session)


def record(
    session: Session,
    row: Journey,
    step: str | None,
    outcome: str,
    reason: Reason,
    detail: dict[str, object],
    now: datetime,
    trace: Trace | None = None,
) -> None:
    """A decision taken outside the engine (the hand-over's outcome)."""
    own = trace or Trace()
    own.add(row, step, outcome, reason, detail, now)
    if trace is None:
        own.write(session)


def _reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.WAIT  # a row from before its reason existed: it is simply waiting
