"""Claiming and handling stored webhook events.

A batch is claimed and handled in one database transaction: the rows are locked (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so several workers share the queue; SQLite has a single writer anyway), each
event runs in a savepoint, and its effects commit together with its new status. A worker killed
mid-batch therefore leaves no trace: the batch is claimed again by the next run, and no event's
effects are ever applied twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from shopify_app.events.context import Handler, PermanentEventError, WebhookContext
from shopify_app.events.failures import permanent_reason
from shopify_app.events.whom import whom
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.models import EventAttempt, EventStatus, Shop, WebhookEvent
from shopify_app.shopify.topics import PRIVACY_TOPICS
from shopify_app.tally import Tally

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(hours=6)
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)

    def delay_after(self, attempt: int) -> timedelta:
        """Exponential backoff: base, 2x base, 4x base... capped at six hours."""
        return min(self.base_delay * (1 << (attempt - 1)), MAX_RETRY_DELAY)


Outcome = Literal["done", "retry", "parked"]


@dataclass(frozen=True)
class BatchReport(Tally):
    claimed: int = 0
    done: int = 0
    retry: int = 0
    parked: int = 0


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class EventProcessor:
    def __init__(
        self,
        engine: Engine,
        handlers: Mapping[str, Handler],
        *,
        batch_size: int = 50,
        retry: RetryPolicy | None = None,
        worker_id: str | None = None,
        journeys: JourneyHooks | None = None,
    ) -> None:
        self._engine = engine
        self._handlers = handlers
        self._journeys = journeys
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._worker_id = worker_id or worker_identity()

    def drain(self, now: datetime, *, stop: threading.Event | None = None) -> BatchReport:
        """Handle batches until no event is due at `now` (failed ones wait for their retry time), or until `stop`
        is set: the batch in hand is finished, no other is claimed."""
        total = BatchReport()
        while not (stop is not None and stop.is_set()) and (report := self.process_batch(now)).claimed:
            total += report
        return total

    def process_batch(self, now: datetime) -> BatchReport:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            events = session.exec(
                select(WebhookEvent)
                .where(WebhookEvent.status == EventStatus.PENDING)
                .where(or_(col(WebhookEvent.next_attempt_at).is_(None), col(WebhookEvent.next_attempt_at) <= now))
                .order_by(col(WebhookEvent.id))
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            report = BatchReport(claimed=len(events))
            for event in events:
                report += self._handle(session, event, now)
        return report

    def _handle(self, session: Session, event: WebhookEvent, now: datetime) -> BatchReport:
        event.attempts += 1
        started = time.perf_counter()
        try:
            with session.begin_nested():
                self._dispatch(session, event, now)
        except PermanentEventError as exc:
            outcome = self._park(event, exc)
        except Exception as exc:
            # Anything else may be transient (a lock timeout, a deadlock victim, a bug fixed by a deploy), unless
            # it is the data itself that can never be stored or read (see `failures`).
            why = permanent_reason(exc)
            outcome = (
                self._park(event, exc, why)
                if why is not None or event.attempts >= self._retry.max_attempts
                else self._retry_later(event, exc, now)
            )
        else:
            event.status = EventStatus.DONE
            event.processed_at = now
            event.next_attempt_at = None
            event.last_error = None
            outcome = "done"
        assert event.id is not None
        session.add(
            EventAttempt(
                event_id=event.id,
                number=event.attempts,
                outcome=outcome,
                error=event.last_error,
                worker=self._worker_id,
                at=now,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        )
        return BatchReport(**{outcome: 1})

    def _dispatch(self, session: Session, event: WebhookEvent, now: datetime) -> None:
        handler = self._handlers.get(event.topic)
        if handler is None:
            raise PermanentEventError(f"no handler for topic {event.topic!r}")
        if event.body is None:
            raise PermanentEventError("the raw body was purged; the event cannot be handled any more")
        shop = session.get(Shop, event.shop_id) if event.shop_id is not None else None
        if shop is None:
            if event.topic in PRIVACY_TOPICS:
                return  # the shop's data is already gone: nothing left to export or erase
            raise PermanentEventError(f"shop {event.shop_domain} no longer exists")
        try:
            payload = json.loads(event.body)
        except ValueError as exc:
            raise PermanentEventError(f"body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise PermanentEventError("body is JSON nested too deeply to handle") from None
        if not isinstance(payload, dict):
            raise PermanentEventError("body is not a JSON object")
        event.customer_id, event.email = whom(event.topic, payload)
        handler(
            WebhookContext(session=session, shop=shop, event=event, payload=payload, now=now, journeys=self._journeys)
        )

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
