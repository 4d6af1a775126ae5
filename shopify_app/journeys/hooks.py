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
from typing import TypeVar

from sqlmodel import Session

from flows import engine
from flows.definition import FlowDefinition
from flows.engine import Precedents
from flows.facts import Facts
from flows.journey import Status
from flows.reasons import Reason
from shopify_app.journeys import store
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import gather_many
from shopify_app.journeys.store import JourneyRow
from shopify_app.journeys.tuning import load_tuning
from shopify_app.messaging.directory import reachable_channels
from shopify_app.models import Shop
from shopify_app.runtime import Runtime

ConfiguredChannels = Callable[[Session, Shop], frozenset[str]]
T = TypeVar("T", str, int)


@dataclass(frozen=True)
class JourneyHooks:
    catalog: FlowCatalog
    configured: ConfiguredChannels  # which channels a shop can be reached on

    def trigger(
        self, session: Session, shop: Shop, event: str, subject: str, now: datetime, *, at: datetime | None = None
    ) -> int:
        """Enter `subject` into every flow `event` starts (the event happened `at`); returns how many entered."""
        rows = store.JourneyRows(session)
        entered = sum(
            self.enter_many(rows, shop, definition, {subject: at}, now)
            for definition in self.catalog.triggered_by(event)
        )
        rows.write()
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
        rows = store.JourneyRows(session)
        ids = (customer_id,) if customer_id is not None else ()
        ended = self.touch_many(rows, shop, now, subjects=subjects, customer_ids=ids, emails=_some(email))
        rows.write()
        return ended

    def enter_many(
        self,
        rows: store.JourneyRows,
        shop: Shop,
        definition: FlowDefinition,
        subjects: Mapping[str, datetime | None],
        now: datetime,
        moved_rows: set[JourneyRow] | None = None,
    ) -> int:
        """Enter each subject (-> when its trigger happened) into the flow, or move its journey on; returns how
        many entered. The journeys it changes are added to `moved_rows`."""
        session, shop_id = rows.session, _id(shop)
        held = rows.open(shop_id, definition.name, subjects)
        tuning = load_tuning(session, shop_id, definition)
        steps = {subject: held[subject].step if subject in held else None for subject in subjects}
        facts = gather_many(session, shop, definition, steps, configured=self.configured(session, shop))
        for subject, row in held.items():
            if row.state != Status.INELIGIBLE:  # already on its way: the trigger may move it (a later update)
                moved = engine.advance(definition, tuning, store.to_pure(row), facts[subject], now)
                rows.apply(row, moved, definition=definition, facts=facts[subject], now=now)
                _note(moved_rows, row)
        candidates = [s for s in subjects if s not in held or held[s].state == Status.INELIGIBLE]
        if not candidates:
            return 0
        last = rows.last_entries(shop_id, definition.name, candidates)
        contacts = {s: _contact_id(facts[s]) for s in candidates}
        keys = {s: store.customer_key(facts[s].customer_id, facts[s].email, contacts[s]) for s in candidates}
        exclusive = definition.entry.one_active_per_customer
        active = (
            rows.active_by_customer(shop_id, definition.name, _set(keys.values()), _set(contacts.values()))
            if exclusive
            else {}
        )
        entered = 0
        for subject in candidates:
            key = keys[subject]
            others = [r for r in active.get(key or "", []) if r.subject != subject]
            current = held.get(subject)
            entry = engine.enter(
                definition, tuning, facts[subject], subject, now,
                current=store.to_pure(current) if current is not None else None,
                precedents=Precedents(last.get(subject), tuple(o.subject for o in others)),
                triggered_at=subjects[subject],
            )  # fmt: skip
            if entry is None:
                continue
            for other in others if entry.ended else ():
                rows.apply(other, engine.end(store.to_pure(other), Reason.SUPERSEDED), definition=definition,
                           facts=None, now=now)  # fmt: skip
                active[key or ""].remove(other)
                _note(moved_rows, other)
            row = current or rows.new(shop_id, definition, subject, now)
            rows.apply(row, entry, definition=definition, facts=facts[subject], now=now)
            _note(moved_rows, row)
            if entry.journey.active and exclusive and key is not None:
                active.setdefault(key, []).append(row)  # a later subject of this batch meets it
            entered += int(entry.journey.status is not Status.INELIGIBLE)
        return entered

    def touch_many(
        self,
        rows: store.JourneyRows,
        shop: Shop,
        now: datetime,
        *,
        subjects: Collection[str] = (),
        customer_ids: Collection[int] = (),
        emails: Collection[str] = (),
        skip: Collection[JourneyRow] = (),
    ) -> int:
        """Move the active journeys about these subjects or customers (but those in `skip`); returns how many
        ended."""
        session, shop_id = rows.session, _id(shop)
        by_flow: dict[str, list[JourneyRow]] = defaultdict(list)
        for row in rows.touching(shop_id, subjects=subjects, customer_ids=customer_ids, emails=emails):
            if row.state == Status.WAITING and row not in skip and row.flow in self.catalog:
                by_flow[row.flow].append(row)  # one sending is moved by its hand-over; an undeployed flow, by no one
        ended = 0
        for flow, group in by_flow.items():
            definition = self.catalog[flow]
            tuning = load_tuning(session, shop_id, definition)
            steps = {row.subject: row.step for row in group}
            facts = gather_many(session, shop, definition, steps, configured=self.configured(session, shop))
            for row in group:
                moved = engine.advance(definition, tuning, store.to_pure(row), facts[row.subject], now)
                rows.apply(row, moved, definition=definition, facts=facts[row.subject], now=now)
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
        rows = store.JourneyRows(session)
        for work in self._work.values():
            moved: set[JourneyRow] = set()
            for event, subjects in work.triggers.items():
                for definition in self._hooks.catalog.triggered_by(event):
                    self._hooks.enter_many(rows, work.shop, definition, subjects, now, moved)
            self._hooks.touch_many(
                rows, work.shop, now, subjects=work.subjects, customer_ids=work.customer_ids, emails=work.emails,
                skip=moved,
            )  # fmt: skip
        rows.write()
        self._work = {}

    def _of(self, shop: Shop) -> _ShopWork:
        return self._work.setdefault(_id(shop), _ShopWork(shop))


def end_all(session: Session, shop_id: int, reason: Reason, now: datetime) -> int:
    """End every open journey of the shop at once (it uninstalled)."""
    rows = store.JourneyRows(session)
    found = rows.of_shop(shop_id)
    for row in found:
        rows.apply(row, engine.end(store.to_pure(row), reason), definition=None, facts=None, now=now)
    rows.write()
    return len(found)


def for_runtime(runtime: Runtime) -> JourneyHooks:
    """The hooks of this deployment: its flows, and the channels its settings and each shop's accounts set up."""

    def configured(session: Session, shop: Shop) -> frozenset[str]:
        assert shop.id is not None
        return reachable_channels(session, runtime.settings, shop.id)

    return JourneyHooks(runtime.flows, configured)


def _note(rows: set[JourneyRow] | None, row: JourneyRow) -> None:
    if rows is not None:
        rows.add(row)


def _some(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _contact_id(facts: Facts) -> int | None:
    return facts.contact.contact_id if facts.contact is not None else None


def _set(values: Collection[T | None]) -> list[T]:
    return sorted({v for v in values if v is not None and v != ""})


def _id(shop: Shop) -> int:
    assert shop.id is not None
    return shop.id
