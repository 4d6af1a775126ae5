"""How journeys follow the store, inside the transaction that handles what the store said.

A trigger enters its subject into every flow it starts (or moves the subject's journey on, when it has
one); any other change of an order, checkout or customer moves the journeys it touches, so that a goal
ends a journey the moment its event is handled. Nothing is sent here: a send the engine asks for leaves the
journey due now, and the worker's next pass (after this transaction commits) decides it again and hands it
over.

The worker handles webhooks in batches: `JourneyBatch` collects what a batch's handlers ask for and carries
it out at the end, each flow's subjects decided together on facts read together, as the batch left the
mirror.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from flows import engine
from flows.definition import FlowDefinition
from flows.engine import Precedents
from flows.journey import Status
from flows.reasons import Reason
from shopify_app.journeys import store
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import gather_many
from shopify_app.journeys.tuning import load_tuning
from shopify_app.messaging.channels import configured_names
from shopify_app.models import Journey, Shop
from shopify_app.runtime import Runtime

ConfiguredChannels = Callable[[Shop], frozenset[str]]


@dataclass(frozen=True)
class JourneyHooks:
    catalog: FlowCatalog
    configured: ConfiguredChannels  # which channels a shop can be reached on

    def trigger(
        self, session: Session, shop: Shop, event: str, subject: str, now: datetime, *, at: datetime | None = None
    ) -> int:
        """Enter `subject` into every flow `event` starts (the event happened `at`); returns how many entered."""
        trace = store.Trace()
        entered = sum(
            self.enter_many(session, shop, definition, {subject: at}, now, trace)
            for definition in self.catalog.triggered_by(event)
        )
        trace.write(session)
        return entered

    def touch(
        self,
        session: Session,
        shop: Shop,
        now: datetime,
        *,
        subjects: Collection[str] = (),
        customer_id: int | None = None,
        email: str | None = None,
    ) -> int:
        """Move the active journeys about these subjects or this customer; returns how many ended."""
        trace = store.Trace()
        ids = (customer_id,) if customer_id is not None else ()
        ended = self.touch_many(session, shop, now, trace, subjects=subjects, customer_ids=ids, emails=_some(email))
        trace.write(session)
        return ended

    def enter_many(
        self,
        session: Session,
        shop: Shop,
        definition: FlowDefinition,
        subjects: Mapping[str, datetime | None],
        now: datetime,
        trace: store.Trace,
        moved_rows: list[Journey] | None = None,
    ) -> int:
        """Enter each subject (-> when its trigger happened) into the flow, or move its journey on; returns how
        many entered. The journeys it changes are added to `moved_rows`."""
        shop_id = _id(shop)
        rows = store.open_journeys(session, shop_id, definition.name, subjects)
        tuning = load_tuning(session, shop_id, definition)
        steps = {subject: rows[subject].step if subject in rows else None for subject in subjects}
        facts = gather_many(session, shop, definition, steps, configured=self.configured(shop))
        for subject, row in rows.items():
            if row.state != Status.INELIGIBLE:  # already on its way: the trigger may move it (a later update)
                moved = engine.advance(definition, tuning, store.to_pure(row), facts[subject], now)
                store.apply(session, row, moved, definition=definition, facts=facts[subject], now=now, trace=trace)
                _note(moved_rows, row)
        candidates = [s for s in subjects if s not in rows or rows[s].state == Status.INELIGIBLE]
        if not candidates:
            return 0
        last = store.last_entries(session, shop_id, definition.name, candidates)
        keys = {s: store.customer_key(facts[s].customer_id, facts[s].email) for s in candidates}
        exclusive = definition.entry.one_active_per_customer
        active = store.active_by_customer(session, shop_id, definition.name, _set(keys.values())) if exclusive else {}
        entered = 0
        for subject in candidates:
            key = keys[subject]
            others = [r for r in active.get(key or "", []) if r.subject != subject]
            current = rows.get(subject)
            entry = engine.enter(
                definition, tuning, facts[subject], subject, now,
                current=store.to_pure(current) if current is not None else None,
                precedents=Precedents(last.get(subject), tuple(o.subject for o in others)),
                triggered_at=subjects[subject],
            )  # fmt: skip
            if entry is None:
                continue
            for other in others if entry.ended else ():
                ended = engine.end(store.to_pure(other), Reason.SUPERSEDED)
                store.apply(session, other, ended, definition=definition, facts=None, now=now, trace=trace)
                active[key or ""].remove(other)
                _note(moved_rows, other)
            if entry.ended and current is not None and current.id is not None:
                # The superseded journeys give up the customer's place before this row takes it: a flush
                # updates a table's rows in id order, and this one may come first. (A new row is inserted
                # after every update of the same flush.)
                session.flush()
            row = current or store.new_row(shop_id, definition, subject, now)
            store.apply(session, row, entry, definition=definition, facts=facts[subject], now=now, trace=trace)
            _note(moved_rows, row)
            if entry.journey.active and exclusive and key is not None:
                active.setdefault(key, []).append(row)  # a later subject of this batch meets it
            entered += int(entry.journey.status is not Status.INELIGIBLE)
        return entered

    def touch_many(
        self,
        session: Session,
        shop: Shop,
        now: datetime,
        trace: store.Trace,
        *,
        subjects: Collection[str] = (),
        customer_ids: Collection[int] = (),
        emails: Collection[str] = (),
        skip: Collection[int] = (),
    ) -> int:
        """Move the active journeys about these subjects or customers (but those in `skip`); returns how many
        ended."""
        shop_id = _id(shop)
        rows = store.journeys_touching(session, shop_id, subjects=subjects, customer_ids=customer_ids, emails=emails)
        by_flow: dict[str, list[Journey]] = defaultdict(list)
        for row in rows:
            if row.state == Status.WAITING and row.id not in skip and row.flow in self.catalog:
                by_flow[row.flow].append(row)  # one sending is moved by its hand-over; an undeployed flow, by no one
        ended = 0
        for flow, group in by_flow.items():
            definition = self.catalog[flow]
            tuning = load_tuning(session, shop_id, definition)
            steps = {row.subject: row.step for row in group}
            facts = gather_many(session, shop, definition, steps, configured=self.configured(shop))
            for row in group:
                moved = engine.advance(definition, tuning, store.to_pure(row), facts[row.subject], now)
                store.apply(session, row, moved, definition=definition, facts=facts[row.subject], now=now, trace=trace)
                ended += int(moved.journey.status is Status.DONE)
        return ended


@dataclass
class _ShopWork:
    shop: Shop
    triggers: dict[str, dict[str, datetime | None]] = field(default_factory=lambda: defaultdict(dict))
    subjects: set[str] = field(default_factory=set)
    customer_ids: set[int] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)


class JourneyBatch:
    """What one batch of webhooks means for journeys: collected while its handlers run (with the same calls
    as `JourneyHooks`), carried out together by `flush`."""

    def __init__(self, hooks: JourneyHooks) -> None:
        self._hooks = hooks
        self._work: dict[int, _ShopWork] = {}

    @property
    def catalog(self) -> FlowCatalog:
        return self._hooks.catalog

    def trigger(
        self, session: Session, shop: Shop, event: str, subject: str, now: datetime, *, at: datetime | None = None
    ) -> int:
        triggers = self._of(shop).triggers[event]
        held = triggers.get(subject)
        triggers[subject] = held if held is not None and at is not None and held > at else at  # the latest
        return 0

    def touch(
        self,
        session: Session,
        shop: Shop,
        now: datetime,
        *,
        subjects: Collection[str] = (),
        customer_id: int | None = None,
        email: str | None = None,
    ) -> int:
        work = self._of(shop)
        work.subjects.update(subjects)
        work.customer_ids.update((customer_id,) if customer_id is not None else ())
        work.emails.update(_some(email))
        return 0

    def flush(self, session: Session, now: datetime) -> None:
        """Triggers first (a subject with a journey is moved on by its trigger), then every other journey the
        batch touched, on the mirror as the whole batch left it."""
        trace = store.Trace()
        for work in self._work.values():
            moved: list[Journey] = []
            for event, subjects in work.triggers.items():
                for definition in self._hooks.catalog.triggered_by(event):
                    self._hooks.enter_many(session, work.shop, definition, subjects, now, trace, moved)
            session.flush()  # the journeys just entered get their ids
            self._hooks.touch_many(
                session, work.shop, now, trace, subjects=work.subjects, customer_ids=work.customer_ids,
                emails=work.emails, skip={row.id for row in moved if row.id is not None},
            )  # fmt: skip
        trace.write(session)
        self._work = {}

    def _of(self, shop: Shop) -> _ShopWork:
        return self._work.setdefault(_id(shop), _ShopWork(shop))


def end_all(session: Session, shop_id: int, reason: Reason, now: datetime) -> int:
    """End every open journey of the shop at once (it uninstalled)."""
    rows = session.exec(
        select(Journey)
        .where(Journey.shop_id == shop_id, col(Journey.state).in_(store.OPEN_STATES))
        .order_by(col(Journey.id))
        .with_for_update()
    ).all()
    trace = store.Trace()
    for row in rows:
        ended = engine.end(store.to_pure(row), reason)
        store.apply(session, row, ended, definition=None, facts=None, now=now, trace=trace)
    trace.write(session)
    return len(rows)


def for_runtime(runtime: Runtime) -> JourneyHooks:
    """The hooks of this deployment: its flows, and the channels its settings set up."""
    configured = configured_names(runtime.settings)
    return JourneyHooks(runtime.flows, lambda _shop: configured)


def _note(rows: list[Journey] | None, row: Journey) -> None:
    if rows is not None:
        rows.append(row)


def _some(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _set(values: Collection[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def _id(shop: Shop) -> int:
    assert shop.id is not None
    return shop.id
