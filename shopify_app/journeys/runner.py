"""Journeys that are due: decided again on the storefront as it is now, moved on, and their messages sent
through the send protocol.

Due journeys are claimed in batches (`FOR UPDATE SKIP LOCKED`, so several workers share them). In the
claim's transaction each is advanced by the engine; a message it asks for is committed as SENDING with
the journey. The hand-overs follow, outside any transaction; each outcome is then stored with the
journey's next move, in a transaction of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from flows import engine
from flows import journey as pure
from flows.contents import summary
from flows.definition import FlowDefinition
from flows.engine import SendOutcome
from flows.facts import Facts
from flows.journey import Advance, Decision, Performed, Status
from flows.reasons import Reason
from shopify_app.journeys import store
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import gather
from shopify_app.journeys.tuning import load_tuning
from shopify_app.messaging.delivery import AlreadyHandled, BatchClock, Outcome, Prepared, SendProtocol
from shopify_app.models import Journey, MessageStatus, Shop
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


class JourneyRunner:
    def __init__(self, db: Engine, catalog: FlowCatalog, protocol: SendProtocol, *, batch_size: int = 20) -> None:
        self._db = db
        self._catalog = catalog
        self._protocol = protocol
        self._batch_size = batch_size

    def run(self, now: datetime) -> JourneyReport:
        """Everything due at `now`, batch after batch, until nothing more is due."""
        clock = BatchClock(now)
        report = self.expire_interrupted(now)
        while True:
            # Decided at the run's instant; only leases and hand-over times follow the real time elapsed.
            claimed, decided, prepared = self._decide_batch(now, clock)
            report += decided
            for item in prepared:
                report += self._hand_over(item, clock)
            if not claimed:
                return report

    def expire_interrupted(self, now: datetime) -> JourneyReport:
        """A message left SENDING past its lease becomes UNKNOWN; its journey goes on without it."""
        report = JourneyReport()
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            for message in self._protocol.expire(session, now):
                row = session.get(Journey, message.journey_id, with_for_update=True)
                outcome = Outcome(MessageStatus.UNKNOWN, Reason.SEND_INTERRUPTED, now, Performed.UNKNOWN)
                if row is not None:
                    self._after_hand_over(session, row, message.step, message.id, outcome, MessageStatus.UNKNOWN, now)
                report += JourneyReport(unknown=1)
        return report

    def _decide_batch(self, now: datetime, clock: BatchClock) -> tuple[int, JourneyReport, list[Prepared]]:
        prepared: list[Prepared] = []
        report = JourneyReport()
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            rows = session.exec(
                select(Journey)
                .where(Journey.state == Status.WAITING, col(Journey.due_at) <= now)
                .order_by(col(Journey.due_at), col(Journey.id))
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            shops: dict[int, Shop | None] = {}
            for row in rows:
                if row.shop_id not in shops:
                    shops[row.shop_id] = session.get(Shop, row.shop_id)
                shop = shops[row.shop_id]
                assert shop is not None  # journeys cascade with their shop
                item, decided = self._decide(session, shop, row, now, clock)
                report += decided
                if item is not None:
                    prepared.append(item)
        return len(rows), report, prepared

    def _decide(
        self, session: Session, shop: Shop, row: Journey, now: datetime, clock: BatchClock
    ) -> tuple[Prepared | None, JourneyReport]:
        definition = self._catalog.get(row.flow)
        if definition is None:  # its definition was removed from this deployment
            store.apply(
                session, row, engine.end(store.to_pure(row), Reason.FLOW_DISABLED), definition=None, facts=None, now=now
            )
            return None, JourneyReport(ended=1)
        moved, facts = self._advance(session, shop, definition, row, now)
        if moved.send is None:
            if moved.journey.status is Status.WAITING and (moved.journey.due_at or now + STALL) <= now:
                # The engine always moves a due journey on; should it not, it must not spin this loop.
                log.error("journey %s did not move on at %s; looked at again later", row.id, moved.journey.step)
                moved = Advance(replace(moved.journey, due_at=now + STALL), moved.decisions)
            store.apply(session, row, moved, definition=definition, facts=facts, now=now)
            return None, _tally(moved)
        intent = moved.send
        try:
            with session.begin_nested():
                item = self._protocol.prepare(session, row, shop, intent, now, leased_at=clock.now())
        except AlreadyHandled as exc:
            # Never twice: the step counts as done, with what is known of it.
            log.warning("journey %s: %s", row.id, exc)
            journey = engine.after_send(definition, moved.journey, SendOutcome(Performed.UNKNOWN, now))
            store.apply(session, row, Advance(journey, moved.decisions), definition=definition, facts=facts, now=now)
            return None, _tally(moved)
        sending = Decision(
            intent.step, "sending", Reason.SEND,
            {"message_id": item.message_id, "channel": intent.channel, "channels": list(intent.checks),
             **summary(intent.content)},
        )  # fmt: skip
        journey = engine.start_send(moved.journey, intent)
        store.apply(
            session, row, Advance(journey, (*moved.decisions, sending)), definition=definition, facts=facts, now=now
        )
        return item, _tally(moved)

    def _hand_over(self, item: Prepared, clock: BatchClock) -> JourneyReport:
        outcome = self._protocol.hand_over(item, clock)
        with Session(self._db, expire_on_commit=False) as session, session.begin():
            status = self._protocol.record(session, item, outcome)
            row = session.get(Journey, item.journey_id, with_for_update=True)
            if row is None:
                return JourneyReport()
            return self._after_hand_over(session, row, item.step, item.message_id, outcome, status, outcome.at)

    def _after_hand_over(
        self,
        session: Session,
        row: Journey,
        step: str,
        message_id: int | None,
        outcome: Outcome,
        status: MessageStatus,
        now: datetime,
    ) -> JourneyReport:
        """The journey takes the message's outcome, then moves on as far as it can."""
        counted = {
            MessageStatus.SENT: JourneyReport(sent=1),
            MessageStatus.DEFERRED: JourneyReport(deferred=1),
            MessageStatus.FAILED: JourneyReport(refused=1),
            MessageStatus.UNKNOWN: JourneyReport(unknown=1),
        }.get(status, JourneyReport())
        definition = self._catalog.get(row.flow)
        if row.state != Status.SENDING or row.step != step or definition is None:
            return counted  # another worker already took the outcome (the lease ran out)
        if status is not outcome.status:  # the message became UNKNOWN meanwhile
            outcome = Outcome(status, Reason.SEND_INTERRUPTED, now, Performed.UNKNOWN)
        detail: dict[str, object] = {"message_id": message_id}
        if outcome.error:
            detail["error"] = outcome.error
        if outcome.retry_at:
            detail["retry_at"] = outcome.retry_at.isoformat()
        store.record(session, row, step, str(outcome.status), outcome.reason, detail, now)
        journey = engine.after_send(
            definition, store.to_pure(row), SendOutcome(outcome.performed, outcome.at, outcome.retry_at)
        )
        if journey.status is Status.WAITING and outcome.performed is not None:
            shop = session.get(Shop, row.shop_id)
            assert shop is not None
            moved, facts = self._advance(session, shop, definition, row, now, journey=journey)
            if moved.send is not None:  # the next step is due at once: the next batch sends it
                moved = Advance(moved.journey, moved.decisions)
            store.apply(session, row, moved, definition=definition, facts=facts, now=now)
            return counted + _tally(moved)
        store.apply(session, row, Advance(journey), definition=definition, facts=None, now=now)
        return counted

    def _advance(
        self,
        session: Session,
        shop: Shop,
        definition: FlowDefinition,
        row: Journey,
        now: datetime,
        journey: pure.Journey | None = None,
    ) -> tuple[Advance, Facts]:
        current = journey or store.to_pure(row)
        facts = gather(session, shop, definition, row.subject, configured=self._protocol.configured, step=current.step)
        tuning = load_tuning(session, row.shop_id, definition)
        return engine.advance(definition, tuning, current, facts, now), facts


def _tally(moved: Advance) -> JourneyReport:
    skipped = sum(1 for d in moved.decisions if d.outcome == "skipped")
    ended = int(moved.journey.status is Status.DONE)
    return JourneyReport(skipped=skipped, ended=ended)
