"""Claiming and handling stored webhook events.

A batch is claimed in a transaction of its own: each event gets a lease (`claimed_until`), the worker's name
and one more claim. Claims are fair between shops: a batch takes the shops' oldest events in turn, so one
shop's flood never holds another's few events back.

The batch is then handled in one transaction: its events are locked again, handled in order (the mirror's
writes, then what they mean for journeys, together), and their new status committed with their effects.
Should the batch fail, it is split in halves and each half handled on its own, down to the single event
that fails, which alone is retried later or parked: a poison event never holds back the rest. A worker
killed mid-batch leaves no trace but the claims: once their lease has run out, those events are claimed
again, one at a time, and an event claimed `max_claims` times without ever finishing (it kills its worker)
is parked.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ARRAY, BigInteger, Engine, String, Table, bindparam, func, insert, or_, text, true, update
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from shopify_app.db.engine import load_json
from shopify_app.db.statements import among, append_rows
from shopify_app.events.context import Handler, PermanentEventError, WebhookContext
from shopify_app.events.failures import permanent_reason
from shopify_app.events.whom import whom
from shopify_app.journeys.hooks import JourneyBatch, JourneyHooks
from shopify_app.models import EventAttempt, EventStatus, Shop, WebhookEvent
from shopify_app.shopify.topics import APP_UNINSTALLED, PRIVACY_TOPICS
from shopify_app.tally import Tally

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(hours=6)
MAX_ERROR_LENGTH = 2000
CLAIM_LOCK = 0x63686F72  # the advisory lock claims take turns on
# Topics that change what every later event of the shop means: each is handled on its own, in order.
BARRIERS = frozenset({*PRIVACY_TOPICS, APP_UNINSTALLED})

_EVENTS: Table = WebhookEvent.__table__  # type: ignore[attr-defined]
_ATTEMPTS: Table = EventAttempt.__table__  # type: ignore[attr-defined]
_SHOPS: Table = Shop.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)

    def delay_after(self, attempt: int) -> timedelta:
        """Exponential backoff: base, 2x base, 4x base... capped at six hours."""
        return min(self.base_delay * (1 << (attempt - 1)), MAX_RETRY_DELAY)


Outcome = Literal["done", "retry", "parked"]
# Reads (and locks) at once what a batch's handlers will need, before any of them runs.
Preload = Callable[[Session, Sequence[WebhookContext]], None]


@dataclass(frozen=True)
class BatchReport(Tally):
    claimed: int = 0
    done: int = 0
    retry: int = 0
    parked: int = 0


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class _Prepared:
    """A claimed event, read and checked before its batch is handled."""

    event: WebhookEvent
    shop: Shop
    payload: dict[str, Any]
    handler: Handler
    customer_id: int | None  # whom it is about, stored with its status when it is done
    email: str | None


class EventProcessor:
    def __init__(
        self,
        engine: Engine,
        handlers: Mapping[str, Handler],
        *,
        batch_size: int = 200,
        retry: RetryPolicy | None = None,
        worker_id: str | None = None,
        journeys: JourneyHooks | None = None,
        lease: timedelta = timedelta(minutes=5),
        max_claims: int = 3,
        preload: Preload | None = None,
    ) -> None:
        self._engine = engine
        self._handlers = handlers
        self._journeys = journeys
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._worker_id = worker_id or worker_identity()
        self._lease = lease
        self._max_claims = max_claims
        self._preload = preload

    def drain(self, now: datetime, *, stop: threading.Event | None = None) -> BatchReport:
        """Handle batches until no event is due at `now` (failed ones wait for their retry time), or until `stop`
        is set: the batch in hand is finished, no other is claimed."""
        total = BatchReport()
        while not (stop is not None and stop.is_set()) and (report := self.process_batch(now)).claimed:
            total += report
        return total

    def process_batch(self, now: datetime) -> BatchReport:
        """Claim one batch and handle it."""
        ids, abandoned = self._claim(now)
        report = BatchReport(claimed=len(ids) + abandoned, parked=abandoned)
        # Barriers alone and in order; the runs of events between them together.
        run: list[int] = []
        for event_id, topic in ids:
            if topic in BARRIERS:
                report += self._handle(run, now) + self._handle([event_id], now)
                run = []
            else:
                run.append(event_id)
        return report + self._handle(run, now)

    # Claiming

    def _claim(self, now: datetime) -> tuple[list[tuple[int, str]], int]:
        """The batch's (event id, topic), leased to this worker, and how many events were parked instead
        because they were claimed too often without finishing."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                # Claims queue (each takes milliseconds): two at once would choose the same events, and the
                # second, finding them locked, would go away empty-handed while events wait.
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
            # A lease is real time, whatever instant the run is frozen at (`chorus worker --once --now`).
            real_now = datetime.now(UTC)
            abandoned = session.exec(
                select(WebhookEvent)
                .where(WebhookEvent.status == EventStatus.PENDING, col(WebhookEvent.claimed_until) < real_now)
                .order_by(col(WebhookEvent.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if abandoned is not None:
                # Its worker stopped before finishing it: now it is handled alone, so that it alone suffers if
                # it is what kills workers.
                if abandoned.claims >= self._max_claims:
                    self._park_abandoned(session, abandoned, now)
                    return [], 1
                claimed = [(abandoned.id, abandoned.topic)] if abandoned.id is not None else []
            else:
                claimed = self._fresh(session, now)
            if claimed:
                session.execute(
                    update(_EVENTS)
                    .where(among(session, _EVENTS.c.id, [event_id for event_id, _ in claimed]))
                    .values(
                        claimed_until=real_now + self._lease, claimed_by=self._worker_id,
                        claims=_EVENTS.c.claims + 1,
                    )
                )  # fmt: skip
            return claimed, 0

    def _fresh(self, session: Session, now: datetime) -> list[tuple[int, str]]:
        """Unclaimed due events (id, topic), the shops taking turns (each shop's oldest first), locked."""
        due = (
            (_EVENTS.c.status == EventStatus.PENDING)
            & _EVENTS.c.claimed_until.is_(None)
            & or_(_EVENTS.c.next_attempt_at.is_(None), _EVENTS.c.next_attempt_at <= now)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Each shop's first events through its index, however many others are pending.
            per_shop = (
                rows_of(_EVENTS.c.id, _EVENTS.c.shop_id)
                .where(_EVENTS.c.shop_id == _SHOPS.c.id, due)
                .order_by(_EVENTS.c.id)
                .limit(self._batch_size)
                .lateral()
            )
            source = rows_of(per_shop.c.id, per_shop.c.shop_id).select_from(_SHOPS.join(per_shop, true()))
        else:
            source = rows_of(_EVENTS.c.id, _EVENTS.c.shop_id).where(due, _EVENTS.c.shop_id.is_not(None))
        listed = source.union_all(rows_of(_EVENTS.c.id, _EVENTS.c.shop_id).where(due, _EVENTS.c.shop_id.is_(None)))
        candidates = listed.subquery()
        turn = func.row_number().over(partition_by=candidates.c.shop_id, order_by=candidates.c.id)
        ranked = rows_of(candidates.c.id, turn.label("turn")).subquery()
        first = rows_of(ranked.c.id).order_by(ranked.c.turn, ranked.c.id).limit(self._batch_size)
        ids = list(session.execute(first).scalars())
        if not ids:
            return []
        # Ids and topics only: the bodies are read when the batch is handled.
        locked = (
            rows_of(_EVENTS.c.id, _EVENTS.c.topic)
            .where(among(session, _EVENTS.c.id, ids), _EVENTS.c.status == EventStatus.PENDING)
            .order_by(_EVENTS.c.id)
            .with_for_update(skip_locked=True)
        )
        return [(event_id, topic) for event_id, topic in session.execute(locked)]

    def _park_abandoned(self, session: Session, event: WebhookEvent, now: datetime) -> None:
        event.status, event.next_attempt_at = EventStatus.PARKED, None
        event.claimed_until, event.claimed_by = None, None
        event.last_error = (
            f"claimed {event.claims} times and never finished: the worker handling it stopped each time "
            "(a crash or the out-of-memory killer); `chorus events replay` once the cause is fixed"
        )
        assert event.id is not None
        attempt = self._attempt(event.id, event.attempts, "parked", event.last_error, now, 0.0)
        session.execute(insert(_ATTEMPTS), [attempt])
        log.error("event %s (%s) parked: claimed %d times without finishing", event.id, event.topic, event.claims)

    # Handling

    def _handle(self, ids: Sequence[int], now: datetime) -> BatchReport:
        """Handle these claimed events together; on failure, each half on its own, down to the event at fault."""
        if not ids:
            return BatchReport()
        started = time.perf_counter()
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                events = self._locked(session, ids)
                ready, idle, refused = self._prepare(session, events)
                self._run(session, ready, now)
                elapsed = (time.perf_counter() - started) * 1000 / max(len(events), 1)
                done = [(p.event, p.customer_id, p.email) for p in ready]
                self._finish(session, done + [(e, e.customer_id, e.email) for e in idle], now, elapsed)
                for event, error in refused:
                    self._fail(session, event, error, now, elapsed)
            return BatchReport(done=len(ready) + len(idle), parked=len(refused))
        except Exception as exc:
            if len(ids) > 1:
                middle = len(ids) // 2
                return self._handle(ids[:middle], now) + self._handle(ids[middle:], now)
            return self._handle_failure(ids[0], exc, now, (time.perf_counter() - started) * 1000)

    def _locked(self, session: Session, ids: Sequence[int]) -> list[WebhookEvent]:
        """The events, locked in id order, that this worker still holds the claim of."""
        return list(
            session.exec(
                select(WebhookEvent)
                .where(among(session, col(WebhookEvent.id), ids), WebhookEvent.status == EventStatus.PENDING)
                .where(WebhookEvent.claimed_by == self._worker_id)
                .order_by(col(WebhookEvent.id))
                .with_for_update()
            )
        )

    def _prepare(
        self, session: Session, events: Sequence[WebhookEvent]
    ) -> tuple[list[_Prepared], list[WebhookEvent], list[tuple[WebhookEvent, Exception]]]:
        """What can be told of each event before handling it: its handler, shop and payload. Returns the events
        to handle, those with nothing left to do, and those that can never be handled (refused here, without
        costing their batch anything)."""
        shops = {s.id: s for s in session.exec(select(Shop).where(col(Shop.id).in_({e.shop_id for e in events})))}
        ready: list[_Prepared] = []
        idle: list[WebhookEvent] = []
        refused: list[tuple[WebhookEvent, Exception]] = []
        for event in events:
            try:
                prepared = self._read(event, shops.get(event.shop_id) if event.shop_id is not None else None)
            except PermanentEventError as exc:
                refused.append((event, exc))
                continue
            if prepared is not None:
                ready.append(prepared)
            else:
                idle.append(event)
        return ready, idle, refused

    def _read(self, event: WebhookEvent, shop: Shop | None) -> _Prepared | None:
        handler = self._handlers.get(event.topic)
        if handler is None:
            raise PermanentEventError(f"no handler for topic {event.topic!r}")
        if event.body is None:
            raise PermanentEventError("the raw body was purged; the event cannot be handled any more")
        if shop is None:
            if event.topic in PRIVACY_TOPICS:
                return None  # the shop's data is already gone: nothing left to export or erase
            raise PermanentEventError(f"shop {event.shop_domain} no longer exists")
        try:
            payload = load_json(event.body)
        except ValueError as exc:
            raise PermanentEventError(f"body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise PermanentEventError("body is JSON nested too deeply to handle") from None
        if not isinstance(payload, dict):
            raise PermanentEventError("body is not a JSON object")
        return _Prepared(event, shop, payload, handler, *whom(event.topic, payload))

    def _run(self, session: Session, ready: Sequence[_Prepared], now: datetime) -> None:
        """Every event's handler in order, then what they mean for journeys, all at once."""
        journeys = JourneyBatch(self._journeys) if self._journeys is not None else None
        contexts = [
            WebhookContext(session=session, shop=p.shop, event=p.event, payload=p.payload, now=now, journeys=journeys)
            for p in ready
        ]
        if self._preload is not None:
            self._preload(session, contexts)
        for item, ctx in zip(ready, contexts, strict=True):
            item.handler(ctx)
        if journeys is not None:
            journeys.flush(session, now)

    def _finish(
        self,
        session: Session,
        done: Sequence[tuple[WebhookEvent, int | None, str | None]],
        now: datetime,
        elapsed_ms: float,
    ) -> None:
        """Done, with whom each is about: status and attempt rows, written together."""
        if not done:
            return
        events = [event for event, _, _ in done]
        session.flush()  # what the handlers changed on the event rows themselves
        finished = {"status": EventStatus.DONE, "attempts": _EVENTS.c.attempts + 1, "processed_at": now,
                    "next_attempt_at": None, "last_error": None, "claimed_until": None, "claimed_by": None,
                    "claims": 0}  # fmt: skip
        if session.get_bind().dialect.name == "postgresql":
            # One statement for the batch, its rows from arrays, rather than one statement per event.
            whom_of = (
                func.unnest(
                    bindparam("ids", [e.id for e, _, _ in done], type_=ARRAY(BigInteger)),
                    bindparam("customers", [c for _, c, _ in done], type_=ARRAY(BigInteger)),
                    bindparam("emails", [m for _, _, m in done], type_=ARRAY(String)),
                )
                .table_valued("id", "customer_id", "email")
                .render_derived()
            )
            session.execute(
                update(_EVENTS)
                .where(_EVENTS.c.id == whom_of.c.id)
                .values(**finished, customer_id=whom_of.c.customer_id, email=whom_of.c.email)
            )
        else:
            session.execute(
                update(_EVENTS)
                .where(_EVENTS.c.id == bindparam("b_id"))
                .values(**finished, customer_id=bindparam("b_customer"), email=bindparam("b_email")),
                [{"b_id": e.id, "b_customer": customer_id, "b_email": email} for e, customer_id, email in done],
            )
        append_rows(
            session,
            _ATTEMPTS,
            [self._attempt(e.id or 0, e.attempts + 1, "done", None, now, elapsed_ms) for e in events],
        )
        for event in events:
            session.expire(event)  # written by the statement above, not by the ORM

    def _handle_failure(self, event_id: int, exc: Exception, now: datetime, elapsed_ms: float) -> BatchReport:
        """The one event at fault: retried later or parked, in a transaction of its own."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            held = self._locked(session, [event_id])
            if not held:
                return BatchReport()  # no longer this worker's (its lease ran out and another took it)
            outcome = self._fail(session, held[0], exc, now, elapsed_ms)
        return BatchReport(**{outcome: 1})

    def _fail(self, session: Session, event: WebhookEvent, exc: Exception, now: datetime, elapsed_ms: float) -> Outcome:
        event.attempts += 1
        event.claimed_until, event.claimed_by, event.claims = None, None, 0
        if isinstance(exc, PermanentEventError):
            outcome = self._park(event, exc)
        else:
            # Anything else may be transient (a lock timeout, a deadlock victim, a bug fixed by a deploy), unless
            # it is the data itself that can never be stored or read (see `failures`).
            why = permanent_reason(exc)
            outcome = (
                self._park(event, exc, why)
                if why is not None or event.attempts >= self._retry.max_attempts
                else self._retry_later(event, exc, now)
            )
        assert event.id is not None
        session.execute(
            insert(_ATTEMPTS), [self._attempt(event.id, event.attempts, outcome, event.last_error, now, elapsed_ms)]
        )
        return outcome

    def _attempt(
        self, event_id: int, number: int, outcome: str, error: str | None, at: datetime, elapsed_ms: float
    ) -> dict[str, Any]:
        return {"event_id": event_id, "number": number, "outcome": outcome, "error": error,
                "worker": self._worker_id, "at": at, "duration_ms": round(elapsed_ms, 3)}  # fmt: skip

    def _retry_later(self, event: WebhookEvent, exc: Exception, now: datetime) -> Outcome:
        event.next_attempt_at = now + self._retry.delay_after(event.attempts)
        event.last_error = _describe(exc)
        log.warning(
            "event %s (%s) failed, attempt %d, retry at %s: %s",
            event.id, event.topic, event.attempts, event.next_attempt_at.isoformat(), type(exc).__name__,
        )  # fmt: skip
        return "retry"

    def _park(self, event: WebhookEvent, exc: Exception, why: str | None = None) -> Outcome:
        event.status = EventStatus.PARKED
        event.next_attempt_at = None
        event.last_error = _describe(exc, why)
        log.error(
            "event %s (%s) parked after %d attempt(s): %s",
            event.id, event.topic, event.attempts, type(exc).__name__,
        )  # fmt: skip
        return "parked"


def _describe(exc: Exception, why: str | None = None) -> str:
    # The engine hides SQL parameters, so database errors carry no customer data into this column.
    text = f"{why}: {type(exc).__name__}: {exc}" if why else f"{type(exc).__name__}: {exc}"
    # Stored with the batch: a NUL or a lone surrogate quoted from the payload must not fail the whole commit.
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:MAX_ERROR_LENGTH]
