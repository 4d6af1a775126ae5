"""Journeys that are due: decided again on the storefront as it is now, moved on, and their messages sent
through the send protocol.

Due journeys are claimed in batches (`FOR UPDATE SKIP LOCKED`, so several workers share them). In the
claim's transaction the batch's facts are read together, each journey is advanced by the engine, and the
messages it asks for are committed as SENDING with their journeys. The hand-overs follow, outside any
transaction, a few at a time per channel; their outcomes are then stored with each journey's next move, in
one transaction for the batch.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy import select as rows_of
from sqlmodel import Session, col

from flows import engine
from flows import journey as pure
from flows.channels import candidates
from flows.contents import summary
from flows.definition import DEFAULT_PRIORITY, FlowDefinition
from flows.engine import SendOutcome
from flows.facts import Facts
from flows.journey import Advance, Decision, Performed, SendIntent, Status
from flows.reasons import Reason
from flows.tuning import FlowTuning
from shopify_app.journeys import store
from shopify_app.journeys.budgets import BatchSpend, hold_budgets, priced_channels, with_prices
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import gather_many, with_activity
from shopify_app.journeys.store import JourneyRow
from shopify_app.journeys.tuning import load_tuning
from shopify_app.messaging.delivery import AlreadyHandled, BatchClock, Outcome, Prepared, SendProtocol, Unsendable
from shopify_app.models import Contact, MessageStatus, Shop
from shopify_app.tally import Tally

log = logging.getLogger(__name__)

STALL = timedelta(minutes=1)


@dataclass(frozen=True)
class JourneyReport(Tally):
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    refused: int = 0
    unknown: int = 0
    ended: int = 0


_COUNTED = {
    MessageStatus.SENT: JourneyReport(sent=1),
    MessageStatus.DEFERRED: JourneyReport(deferred=1),
    MessageStatus.FAILED: JourneyReport(refused=1),
    MessageStatus.UNKNOWN: JourneyReport(unknown=1),
}


@dataclass(frozen=True)
class _Send:
    """A journey whose step is to go out now, with what it was decided on."""

    row: JourneyRow
    shop: Shop
    definition: FlowDefinition
    tuning: FlowTuning
    moved: Advance  # its `send` is set
    facts: Facts

    @property
    def intent(self) -> SendIntent:
        assert self.moved.send is not None
        return self.moved.send


@dataclass(frozen=True)
class _Moving:
    """A journey about to be advanced, with what it is advanced from."""

    row: JourneyRow
    journey: pure.Journey


class JourneyRunner:
    def __init__(self, db: Engine, catalog: FlowCatalog, protocol: SendProtocol, *, batch_size: int = 250) -> None:
        self._db = db
        self._catalog = catalog
        self._protocol = protocol
        self._batch_size = batch_size
        self._priorities = {d.name: d.priority for d in catalog}

    def run(self, now: datetime, *, stop: threading.Event | None = None) -> JourneyReport:
        """Everything due at `now`, batch after batch, until nothing more is due (or, once `stop` is set, until
        the batches in hand are sent and recorded).

        The channel's round trips and the database's overlap: while one batch is handed over, the batch
        before it is recorded and the next one decided. Outcomes are recorded in batch order.
        """
        clock = BatchClock(now)
        report = self.expire_interrupted(now)
        with ThreadPoolExecutor(1, "hand-overs") as sender:
            in_flight: tuple[list[Prepared], dict[int, Facts], Future[list[Outcome]]] | None = None
            while True:
                # Decided at the run's instant; only leases and hand-over times follow the real time elapsed.
                claimed, decided, prepared, facts = self._decide_batch(now, clock)
                report += decided
                handed = None
                if in_flight is not None:
                    handed = (in_flight[0], in_flight[2].result(), in_flight[1])
                    in_flight = None
                if prepared:
                    handing = sender.submit(self._protocol.hand_over_many, prepared, clock, self._begin_hand_overs)
                    in_flight = (prepared, facts, handing)
                if handed is not None:
                    report += self._record_batch(*handed)
                if not claimed or (stop is not None and stop.is_set()):
                    break
            if in_flight is not None:
                report += self._record_batch(in_flight[0], in_flight[2].result(), in_flight[1])
        return report

    def expire_interrupted(self, now: datetime) -> JourneyReport:
        """A message left SENDING past its lease: UNKNOWN if its hand-over had begun, and its journey goes on
        without it; else tried again (see `SendProtocol.expire`)."""
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            expired = self._protocol.expire(session, now)
            rows = store.JourneyRows(session)
            results = [
                (message.journey_id, message.step, message.id, outcome, outcome.status) for message, outcome in expired
            ]
            report = self._after_hand_overs(rows, rows.by_id(m.journey_id for m, _outcome in expired), results)
            rows.write()
            return report

    def _begin_hand_overs(self, message_ids: Sequence[int], at: datetime) -> set[int]:
        with Session(self._db) as session, session.begin():
            return self._protocol.begin_hand_overs(session, message_ids, at)

    def _decide_batch(
        self, now: datetime, clock: BatchClock
    ) -> tuple[int, JourneyReport, list[Prepared], dict[int, Facts]]:
        """Claim, decide and commit one batch; returns what was claimed, the decisions' count, the messages to
        hand over and the facts each was decided on (by journey id)."""
        report = JourneyReport()
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            journeys = store.JourneyRows(session)
            # A contact another worker is deciding for waits for the next batch: two workers must never both
            # count a contact's messages against its caps before either has written its own.
            rows = _with_contacts_held(session, journeys.due(now, self._batch_size))
            # Before any spend is read: the month's spend on a budgeted channel, and the messages it allows, are
            # this batch's alone until it commits (see journeys.budgets).
            hold_budgets(session, _shops_of(session, rows))
            spend = BatchSpend(session, now)
            sends: list[_Send] = []
            sent_now: dict[int, list[tuple[datetime, str]]] = defaultdict(list)  # this batch's, by contact
            by_priority = sorted(rows, key=lambda r: (self._priorities.get(r.flow, DEFAULT_PRIORITY), r.id or 0))
            for (shop, definition, tuning), moving in self._groups(
                session, [_Moving(r, store.to_pure(r)) for r in by_priority]
            ):
                if definition is None:  # its definition was removed from this deployment
                    for item in moving:
                        ended = engine.end(item.journey, Reason.FLOW_DISABLED)
                        journeys.apply(item.row, ended, definition=None, facts=None, now=now)
                        report += JourneyReport(ended=1)
                    continue
                configured = self._protocol.channels.configured(session, shop)
                facts = _facts(session, shop, definition, moving, configured, now)
                facts = with_activity(session, shop, facts, now, flow=definition.name, priorities=self._priorities)
                priced = priced_channels(shop, definition, configured)
                if priced:
                    steps = {m.row.subject: m.journey.step for m in moving}
                    facts = with_prices(session, shop, definition, facts, steps, priced)
                for item in moving:
                    counted = spend.applied(shop, _with_sent(facts[item.row.subject], sent_now))
                    moved = engine.advance(definition, tuning, item.journey, counted, now)
                    if moved.send is not None:
                        if counted.contact is not None:  # the next journeys of the batch count it
                            sent_now[counted.contact.contact_id].append((now, moved.send.channel))
                        spend.count(shop, moved.send)
                        sends.append(_Send(item.row, shop, definition, tuning, moved, counted))
                        continue
                    if moved.journey.status is Status.WAITING and (moved.journey.due_at or now + STALL) <= now:
                        # The engine always moves a due journey on; should it not, it must not spin this loop.
                        log.error("journey %s did not move on at %s", item.row.id, moved.journey.step)
                        moved = Advance(replace(moved.journey, due_at=now + STALL), moved.decisions)
                    journeys.apply(item.row, moved, definition=definition, facts=facts[item.row.subject], now=now)
                    report += _tally(moved)
            prepared = self._prepare(journeys, sends, now, clock, spend)
            journeys.write()
        decided_on = {p.journey_id: facts for p, facts in prepared}
        return len(rows), report, [p for p, _facts in prepared], decided_on

    def _prepare(
        self, journeys: store.JourneyRows, sends: Sequence[_Send], now: datetime, clock: BatchClock, spend: BatchSpend
    ) -> list[tuple[Prepared, Facts]]:
        """Commit the batch's messages as SENDING, each with its journey. A message its channel cannot carry
        (too long for an SMS, say) is decided again without that channel: the step's next channel may."""
        prepared: list[tuple[Prepared, Facts]] = []
        pending = list(sends)
        while pending:
            results = self._protocol.prepare_many(
                journeys.session, [(s.row, s.shop, s.intent) for s in pending], now, leased_at=clock.now()
            )
            again: list[_Send] = []
            for send, result in zip(pending, results, strict=True):
                row, definition, moved, intent = send.row, send.definition, send.moved, send.intent
                if isinstance(result, AlreadyHandled):
                    # Never twice: the step counts as done, with what is known of it.
                    log.warning("journey %s: %s", row.id, result)
                    journey = engine.after_send(definition, moved.journey, SendOutcome(Performed.UNKNOWN, now))
                    journeys.apply(row, Advance(journey, moved.decisions), definition=definition, facts=send.facts,
                                   now=now)  # fmt: skip
                    continue
                if isinstance(result, Unsendable):
                    facts = replace(send.facts, unusable={**send.facts.unusable, result.channel: result.reason})
                    # The spend as the batch has it now (the cancelled one still counts: never less than spent).
                    facts = spend.applied(send.shop, facts)
                    redone = engine.advance(definition, send.tuning, moved.journey, facts, now)
                    redone = Advance(redone.journey, (*moved.decisions, *redone.decisions), redone.send, redone.ended)
                    if redone.send is not None:
                        spend.count(send.shop, redone.send)
                        again.append(replace(send, moved=redone, facts=facts))
                    else:
                        journeys.apply(row, redone, definition=definition, facts=facts, now=now)
                    continue
                sending = Decision(
                    intent.step, "sending", Reason.SEND,
                    {"message_id": result.message_id, "channel": intent.channel, "channels": list(intent.checks),
                     "candidates": candidates(intent.checks),
                     **summary(intent.content)},
                )  # fmt: skip
                journey = engine.start_send(moved.journey, intent)
                journeys.apply(
                    row, Advance(journey, (*moved.decisions, sending)), definition=definition, facts=send.facts,
                    now=now,
                )  # fmt: skip
                prepared.append((result, send.facts))
            pending = again
        return prepared

    def _record_batch(
        self, prepared: Sequence[Prepared], outcomes: Sequence[Outcome], decided_on: dict[int, Facts]
    ) -> JourneyReport:
        """The batch's outcomes, on their messages and their journeys, in one transaction."""
        results = list(zip(prepared, outcomes, strict=True))
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            # Journeys before their messages, as when deciding: two workers never wait on each other in a cycle.
            journeys = store.JourneyRows(session)
            rows = journeys.by_id(p.journey_id for p, _outcome in results)
            statuses = self._protocol.record_many(session, results)
            recorded = [
                (p.journey_id, p.step, p.message_id, outcome, status)
                for (p, outcome), status in zip(results, statuses, strict=True)
            ]
            report = self._after_hand_overs(journeys, rows, recorded, decided_on)
            journeys.write()
            return report

    def _after_hand_overs(
        self,
        journeys: store.JourneyRows,
        rows: dict[int, JourneyRow],
        outcomes: Iterable[tuple[int, str, int | None, Outcome, MessageStatus]],
        decided_on: dict[int, Facts] | None = None,
    ) -> JourneyReport:
        """Each journey takes its message's outcome, then moves on as far as it can: on the facts it was just
        decided on, when known (the next step is decided afresh when it is due), else on facts read together."""
        report = JourneyReport()
        moving: list[_Moving] = []
        for journey_id, step, message_id, outcome, status in outcomes:
            report += _COUNTED.get(status, JourneyReport())
            row = rows.get(journey_id)
            definition = self._catalog.get(row.flow) if row is not None else None
            if row is None or definition is None or row.state != Status.SENDING or row.step != step:
                continue  # another worker already took the outcome (the lease ran out)
            if status is not outcome.status:  # the message became UNKNOWN meanwhile
                outcome = Outcome(status, Reason.SEND_INTERRUPTED, outcome.at, Performed.UNKNOWN)
            detail: dict[str, object] = {"message_id": message_id}
            if outcome.error:
                detail["error"] = outcome.error
            if outcome.retry_at:
                detail["retry_at"] = outcome.retry_at.isoformat()
            journeys.record(row, step, str(outcome.status), outcome.reason, detail, outcome.at)
            journey = engine.after_send(
                definition,
                store.to_pure(row),
                SendOutcome(outcome.performed, outcome.at, outcome.retry_at, outcome.unusable),
            )
            if journey.status is Status.WAITING and outcome.performed is not None:
                moving.append(_Moving(row, journey))
            else:
                journeys.apply(row, Advance(journey), definition=definition, facts=None, now=outcome.at)
        known = decided_on or {}
        session = journeys.session
        for (shop, definition, tuning), group in self._groups(session, moving):
            assert definition is not None
            unknown = [item for item in group if item.row.id not in known]
            configured = self._protocol.channels.configured(session, shop)
            facts = {}
            if unknown:  # as of when their outcomes came
                when = max(
                    i.journey.previous_at or i.journey.due_at or datetime.min.replace(tzinfo=UTC) for i in unknown
                )
                facts = _facts(session, shop, definition, unknown, configured, when)
            # Priced for the step just sent: the next one is judged on cost only by the batch that sends it.
            facts |= {i.row.subject: replace(known[i.row.id], prices={}) for i in group if i.row.id in known}
            for item in group:
                at = item.journey.previous_at or item.journey.due_at
                assert at is not None
                moved = engine.advance(definition, tuning, item.journey, facts[item.row.subject], at)
                if moved.send is not None:  # its next step is due at once: the next batch sends it
                    moved = Advance(moved.journey, moved.decisions)
                journeys.apply(item.row, moved, definition=definition, facts=facts[item.row.subject], now=at)
                report += _tally(moved)
        return report

    def _groups(
        self, session: Session, moving: Sequence[_Moving]
    ) -> Iterable[tuple[tuple[Shop, FlowDefinition | None, FlowTuning], list[_Moving]]]:
        """The journeys by shop and flow, each group with its shop, definition and the shop's tuning of it."""
        grouped: dict[tuple[int, str], list[_Moving]] = defaultdict(list)
        for item in moving:
            grouped[(item.row.shop_id, item.row.flow)].append(item)
        shops: dict[int, Shop] = {}
        for (shop_id, flow), group in grouped.items():
            if shop_id not in shops:
                found = session.get(Shop, shop_id)
                assert found is not None  # journeys cascade with their shop
                shops[shop_id] = found
            definition = self._catalog.get(flow)
            tuning = load_tuning(session, shop_id, definition) if definition is not None else FlowTuning(enabled=False)
            yield (shops[shop_id], definition, tuning), group


def _facts(
    session: Session,
    shop: Shop,
    definition: FlowDefinition,
    moving: Sequence[_Moving],
    configured: frozenset[str],
    now: datetime,
) -> dict[str, Facts]:
    subjects = {m.row.subject: m.journey.step for m in moving}
    return gather_many(session, shop, definition, subjects, configured=configured, now=now)


def _shops_of(session: Session, rows: Sequence[JourneyRow]) -> list[Shop]:
    shops = [session.get(Shop, shop_id) for shop_id in sorted({r.shop_id for r in rows})]
    return [shop for shop in shops if shop is not None]


def _with_contacts_held(session: Session, rows: list[JourneyRow]) -> list[JourneyRow]:
    """The journeys whose contact this transaction now holds (locked, none waited for), and those without one."""
    wanted = sorted({r.contact_id for r in rows if r.contact_id is not None})
    if not wanted:
        return rows
    held = set(
        session.execute(
            rows_of(col(Contact.id))
            .where(col(Contact.id).in_(wanted))
            .order_by(col(Contact.id))
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    return [r for r in rows if r.contact_id is None or r.contact_id in held]


def _with_sent(facts: Facts, sent_now: Mapping[int, list[tuple[datetime, str]]]) -> Facts:
    if facts.contact is None or not sent_now.get(facts.contact.contact_id):
        return facts
    sent = tuple(sorted((*facts.recent_messages, *sent_now[facts.contact.contact_id])))
    return replace(facts, recent_messages=sent)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _tally(moved: Advance) -> JourneyReport:
    skipped = sum(1 for d in moved.decisions if d.outcome == "skipped")
    ended = int(moved.journey.status is Status.DONE)
    return JourneyReport(skipped=skipped, ended=ended)
