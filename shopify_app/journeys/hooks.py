"""How journeys follow the store, inside the transaction that handles what the store said.

A trigger enters its subject into every flow it starts (or moves the subject's journey on, when it has
one); any other change of an order, checkout or customer moves the journeys it touches, so that a goal
ends a journey the moment its event is handled. Nothing is sent here: a send the engine asks for leaves the
journey due now, and the worker's next pass (after this transaction commits) decides it again and hands it
over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from flows import engine
from flows.definition import FlowDefinition
from flows.engine import Precedents
from flows.journey import Status
from flows.reasons import Reason
from shopify_app.journeys import store
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import gather
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
        entered = 0
        for definition in self.catalog.triggered_by(event):
            entered += self.enter(session, shop, definition, subject, now, at=at)
        return entered

    def enter(
        self,
        session: Session,
        shop: Shop,
        definition: FlowDefinition,
        subject: str,
        now: datetime,
        *,
        at: datetime | None = None,
    ) -> int:
        shop_id = _id(shop)
        row = store.open_journey(session, shop_id, definition.name, subject)
        tuning = load_tuning(session, shop_id, definition)
        step = row.step if row is not None else None
        facts = gather(session, shop, definition, subject, configured=self.configured(shop), step=step)
        if row is not None and row.state != Status.INELIGIBLE:
            advanced = engine.advance(definition, tuning, store.to_pure(row), facts, now)
            store.apply(session, row, advanced, definition=definition, facts=facts, now=now)
            return 0
        key = store.customer_key(facts.customer_id, facts.email)
        others = (
            store.active_of_customer(session, shop_id, definition.name, key, subject)
            if definition.entry.one_active_per_customer
            else []
        )
        precedents = Precedents(
            last_entry_at=store.last_entry(session, shop_id, definition.name, subject),
            customer_active=tuple(o.subject for o in others),
        )
        current = store.to_pure(row) if row is not None else None
        moved = engine.enter(
            definition, tuning, facts, subject, now, current=current, precedents=precedents, triggered_at=at
        )
        if moved is None:
            return 0
        for other in others if moved.ended else ():
            ended = engine.end(store.to_pure(other), Reason.SUPERSEDED)
            store.apply(session, other, ended, definition=definition, facts=None, now=now)
        row = row or store.new_row(shop_id, definition, subject, now)
        store.apply(session, row, moved, definition=definition, facts=facts, now=now)
        return int(moved.journey.status is not Status.INELIGIBLE)

    def touch(
        self,
        session: Session,
        shop: Shop,
        now: datetime,
        *,
        subjects: Sequence[str] = (),
        customer_id: int | None = None,
        email: str | None = None,
    ) -> int:
        """Move the active journeys about these subjects or this customer; returns how many ended."""
        ended = 0
        for row in store.journeys_touching(session, _id(shop), subjects=subjects, customer_id=customer_id, email=email):
            definition = self.catalog.get(row.flow)
            if definition is None or row.state != Status.WAITING:
                continue  # a flow no longer deployed; or a hand-over in progress, which moves it itself
            facts = gather(session, shop, definition, row.subject, configured=self.configured(shop), step=row.step)
            moved = engine.advance(
                definition, load_tuning(session, _id(shop), definition), store.to_pure(row), facts, now
            )
            store.apply(session, row, moved, definition=definition, facts=facts, now=now)
            ended += int(moved.journey.status is Status.DONE)
        return ended


def end_all(session: Session, shop_id: int, reason: Reason, now: datetime) -> int:
    """End every open journey of the shop at once (it uninstalled)."""
    rows = session.exec(
        select(Journey)
        .where(Journey.shop_id == shop_id, col(Journey.state).in_(store.OPEN_STATES))
        .order_by(col(Journey.id))
        .with_for_update()
    ).all()
    for row in rows:
        store.apply(session, row, engine.end(store.to_pure(row), reason), definition=None, facts=None, now=now)
    return len(rows)


def for_runtime(runtime: Runtime) -> JourneyHooks:
    """The hooks of this deployment: its flows, and the channels its settings set up."""
    configured = configured_names(runtime.settings)
    return JourneyHooks(runtime.flows, lambda _shop: configured)


def _id(shop: Shop) -> int:
    assert shop.id is not None
    return shop.id
