"""Journeys in the database: read as plain rows with their locks, changed by the engine's decisions, written
back together.

A transaction that moves journeys holds one `JourneyRows`: every read goes through it (each row once, the
same object however often it is read), every change goes through its `apply` (the new state and its
decisions together, so the trace is complete by construction), and `write` stores them all: the changed
rows in one statement, the new ones in another, then the decisions. A batch of webhooks or of due journeys
moves thousands of journeys; as ORM objects each one cost more than the decision itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, update
from sqlalchemy import select as rows_of
from sqlmodel import Session, col

from flows import journey as pure
from flows.definition import FlowDefinition
from flows.facts import Facts
from flows.journey import Advance, Performed, Status
from flows.reasons import Reason
from shopify_app.db.statements import among, append_rows, insert_rows, update_rows
from shopify_app.models import Decision, Journey, Message, MessageStatus

OPEN_STATES = tuple(s.value for s in pure.OPEN)
ACTIVE_STATES = tuple(s.value for s in pure.ACTIVE)

_JOURNEYS: Table = Journey.__table__  # type: ignore[attr-defined]
_DECISIONS: Table = Decision.__table__  # type: ignore[attr-defined]


@dataclass(eq=False, slots=True)
class JourneyRow:
    """A row of `journeys` (the model `Journey`), its fields in the table's column order, as `select(table)`
    reads them."""

    id: int | None
    shop_id: int
    flow: str
    subject: str
    customer_id: int | None
    email: str | None
    exclusive_key: str | None
    state: str
    step: str | None
    reason: str
    due_at: datetime | None
    entered_at: datetime | None
    arrived_at: datetime | None
    previous_at: datetime | None
    performed: dict[str, str]
    created_at: datetime
    updated_at: datetime
    unusable: dict[str, str]
    contact_id: int | None


FIELDS = tuple(f.name for f in fields(JourneyRow))
# What a decision may change: not the id, shop, flow, subject, nor when the row was made.
_WRITTEN = (*FIELDS[4:15], "updated_at", "unusable", "contact_id")


def customer_key(customer_id: int | None, email: str | None, contact_id: int | None = None) -> str | None:
    """Who a journey is about, for one active journey each: its contact; else (a subject not seen since
    contacts came) the Shopify customer id, else the lower-cased email."""
    if contact_id is not None:
        return f"contact:{contact_id}"
    if customer_id is not None:
        return f"id:{customer_id}"
    return f"email:{email}" if email else None


def to_pure(row: JourneyRow) -> pure.Journey:
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
        unusable={channel: _reason(why) for channel, why in (row.unusable or {}).items()},
    )


class JourneyRows:
    """The journeys one transaction reads and changes (see the module)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._held: dict[int, tuple[JourneyRow, tuple[Any, ...]]] = {}  # id -> the row, its values as stored
        self._touched: dict[int, JourneyRow] = {}  # stored rows `apply` changed since, by id
        self._new: list[JourneyRow] = []
        self._decisions: list[tuple[JourneyRow, dict[str, Any]]] = []

    # Reading: each query first writes what this transaction changed, so that it sees it, as the ORM's
    # autoflush would; rows come back locked, in id order (two transactions never wait on each other in a
    # cycle).

    def open(self, shop_id: int, flow: str, subjects: Collection[str]) -> dict[str, JourneyRow]:
        """The subjects' open (ineligible, waiting or sending) journeys in the flow."""
        if not subjects:
            return {}
        ties = [_JOURNEYS.c.flow == flow, among(self.session, _JOURNEYS.c.subject, subjects)]
        return {row.subject: row for row in self._locked(shop_id, OPEN_STATES, ties)}

    def active_by_customer(
        self, shop_id: int, flow: str, keys: Collection[str], contact_ids: Collection[int] = ()
    ) -> dict[str, list[JourneyRow]]:
        """The active journeys of these customers in the flow (where it allows one each), by key: those holding
        the key, and those of the key's contact whatever key they hold (one taken before contacts)."""
        if not keys and not contact_ids:
            return {}
        found: dict[str, list[JourneyRow]] = {}
        c = _JOURNEYS.c
        ties = [
            c.flow == flow,
            or_(among(self.session, c.exclusive_key, keys), among(self.session, c.contact_id, contact_ids)),
        ]
        for row in self._locked(shop_id, ACTIVE_STATES, ties):
            named = {row.exclusive_key or "", customer_key(None, None, row.contact_id) or ""}
            for key in sorted(k for k in named if k):
                found.setdefault(key, []).append(row)
        return found

    def active_of_contacts(self, shop_id: int, contact_ids: Collection[int]) -> list[JourneyRow]:
        """The active journeys of these contacts, in every flow."""
        return self._locked(shop_id, ACTIVE_STATES, [among(self.session, _JOURNEYS.c.contact_id, contact_ids)])

    def touching(
        self,
        shop_id: int,
        *,
        subjects: Collection[str] = (),
        customer_ids: Collection[int] = (),
        emails: Collection[str] = (),
    ) -> list[JourneyRow]:
        """Active journeys about these subjects or customers: events may end or move them."""
        ties = [
            among(self.session, column, values)
            for column, values in (
                (_JOURNEYS.c.subject, subjects),
                (_JOURNEYS.c.customer_id, customer_ids),
                (_JOURNEYS.c.email, emails),
            )
            if values
        ]
        return self._locked(shop_id, ACTIVE_STATES, [or_(*ties)]) if ties else []

    def of_shop(self, shop_id: int) -> list[JourneyRow]:
        """Every open journey of the shop."""
        return self._locked(shop_id, OPEN_STATES, [])

    def by_id(self, journey_ids: Iterable[int]) -> dict[int, JourneyRow]:
        ids = sorted(set(journey_ids))
        if not ids:
            return {}
        rows = self._read([among(self.session, _JOURNEYS.c.id, ids)])
        return {row.id: row for row in rows if row.id is not None}

    def due(self, now: datetime, limit: int) -> list[JourneyRow]:
        """Up to `limit` waiting journeys due at `now`, soonest first, skipping those another worker holds."""
        return self._read(
            [_JOURNEYS.c.state == Status.WAITING, _JOURNEYS.c.due_at <= now],
            order=(_JOURNEYS.c.due_at, _JOURNEYS.c.id), limit=limit, skip_locked=True,
        )  # fmt: skip

    def last_entries(self, shop_id: int, flow: str, subjects: Collection[str]) -> dict[str, datetime]:
        """Each subject's latest entry into the flow, for those that entered before."""
        if not subjects:
            return {}
        self.write()
        rows = self.session.execute(
            rows_of(_JOURNEYS.c.subject, func.max(_JOURNEYS.c.entered_at))
            .where(_JOURNEYS.c.shop_id == shop_id, _JOURNEYS.c.flow == flow)
            .where(among(self.session, _JOURNEYS.c.subject, subjects))
            .group_by(_JOURNEYS.c.subject)
        )
        return {subject: at for subject, at in rows if at is not None}

    def _locked(self, shop_id: int, states: Collection[str], ties: list[ColumnElement[bool]]) -> list[JourneyRow]:
        return self._read([_JOURNEYS.c.shop_id == shop_id, _JOURNEYS.c.state.in_(states), *ties])

    def _read(
        self,
        where: list[ColumnElement[bool]],
        *,
        order: tuple[Any, ...] = (_JOURNEYS.c.id,),
        limit: int | None = None,
        skip_locked: bool = False,
    ) -> list[JourneyRow]:
        self.write()
        query = rows_of(_JOURNEYS).where(*where).order_by(*order).limit(limit).with_for_update(skip_locked=skip_locked)
        found: list[JourneyRow] = []
        for values in self.session.execute(query):
            held = self._held.get(values[0])
            if held is None:
                row = JourneyRow(*values)
                held = self._held[values[0]] = (row, _written(row))
            found.append(held[0])
        return found

    # Changing

    def new(self, shop_id: int, definition: FlowDefinition, subject: str, now: datetime) -> JourneyRow:
        """A journey not yet entered; it is stored by `write` once `apply` has given it a state."""
        row = JourneyRow(
            id=None, shop_id=shop_id, flow=definition.name, subject=subject, customer_id=None, email=None,
            exclusive_key=None, state=Status.INELIGIBLE.value, step=None, reason="new", due_at=None, entered_at=None,
            arrived_at=None, previous_at=None, performed={}, created_at=now, updated_at=now, unusable={},
            contact_id=None,
        )  # fmt: skip
        self._new.append(row)
        return row

    def apply(
        self,
        row: JourneyRow,
        advance: Advance,
        *,
        definition: FlowDefinition | None,
        facts: Facts | None,
        now: datetime,
    ) -> None:
        """The journey's new state and its decisions; a deferred message of a step it leaves is cancelled."""
        journey = advance.journey
        left_step = row.step is not None and (journey.step != row.step or journey.status is Status.DONE)
        if left_step and row.id is not None and row.reason == Reason.SEND_DEFERRED:
            self.session.execute(
                update(Message)
                .where(col(Message.journey_id) == row.id, col(Message.step) == row.step)
                .where(col(Message.status) == MessageStatus.DEFERRED)
                .values(status=MessageStatus.CANCELLED)
            )
        if facts is not None:
            row.customer_id = facts.customer_id if facts.customer_id is not None else row.customer_id
            row.email = facts.email or row.email
            row.contact_id = facts.contact.contact_id if facts.contact is not None else row.contact_id
        row.state = journey.status.value
        row.step = journey.step
        row.reason = journey.reason.value
        row.due_at = journey.due_at
        row.entered_at = journey.entered_at
        row.arrived_at = journey.arrived_at
        row.previous_at = journey.previous_at
        row.performed = {step: str(outcome) for step, outcome in journey.performed.items()}
        row.unusable = {channel: str(why) for channel, why in journey.unusable.items()}
        exclusive = definition is not None and definition.entry.one_active_per_customer and journey.active
        # An active journey keeps the key it took (one taken before contacts stays until the journey ends).
        key = row.exclusive_key or customer_key(row.customer_id, row.email, row.contact_id)
        row.exclusive_key = key if exclusive else None
        row.updated_at = now
        if row.id is not None:
            self._touched[row.id] = row
        for decision in advance.decisions:
            self.record(row, decision.step, decision.outcome, decision.reason, decision.detail, now)

    def record(
        self, row: JourneyRow, step: str | None, outcome: str, reason: str, detail: Mapping[str, Any], at: datetime
    ) -> None:
        """A decision about the journey (the engine's, or one taken outside it: a hand-over's outcome)."""
        # The row, not its id: a journey entered in this transaction gets its id when it is written.
        values = {"step": step, "outcome": outcome, "reason": str(reason), "detail": dict(detail), "decided_at": at}
        self._decisions.append((row, values))

    # Writing

    def write(self) -> None:
        """Store every change so far: changed rows, new rows, then the decisions."""
        self.session.flush()  # the ORM's changes first (mirror rows a decision was read from, say)
        changed = [row for id_, row in self._touched.items() if _written(row) != self._held[id_][1]]
        # A journey giving up its customer's place (superseded, ended) is written before one taking it: a
        # unique index holds one active journey per customer and flow, checked row by row.
        for group in ([r for r in changed if r.exclusive_key is None], [r for r in changed if r.exclusive_key]):
            update_rows(self.session, _JOURNEYS, [{"id": row.id, **_named(row, _WRITTEN)} for row in group])
        for row in changed:
            assert row.id is not None
            self._held[row.id] = (row, _written(row))
        self._touched = {}
        ids = insert_rows(self.session, _JOURNEYS, [_named(row, FIELDS[1:]) for row in self._new])
        for row, new_id in zip(self._new, ids, strict=True):
            row.id = new_id
            self._held[new_id] = (row, _written(row))
        self._new = []
        decisions = [
            {"shop_id": row.shop_id, "journey_id": row.id, "flow": row.flow, **values}
            for row, values in self._decisions
        ]
        append_rows(self.session, _DECISIONS, decisions)
        self._decisions = []


def _written(row: JourneyRow) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _WRITTEN)


def _named(row: JourneyRow, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def _reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.WAIT  # a row from before its reason existed: it is simply waiting
