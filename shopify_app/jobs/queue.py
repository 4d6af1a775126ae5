"""Enqueuing a job, and claiming, finishing or retrying it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from shopify_app.models import Job, JobStatus
from shopify_app.tally import Tally

log = logging.getLogger(__name__)


class JobOutcome(StrEnum):
    DONE = "done"
    # Progress was made and saved; the rest follows in another run (a long sync works in slices, so
    # that a worker is never busy with one shop for long and a crash loses at most one slice).
    CONTINUE = "continue"
    # Waiting on Shopify (a bulk operation): ask again after WAIT.
    WAIT = "wait"


JobHandler = Callable[[Job, datetime], JobOutcome | None]

MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(minutes=1)
LEASE = timedelta(minutes=15)
WAIT = timedelta(seconds=30)


class JobFailed(Exception):
    """A job that can never succeed as asked: parked at once instead of retried."""


def enqueue(
    session: Session,
    shop_id: int,
    kind: str,
    now: datetime,
    arguments: dict[str, Any] | None = None,
    *,
    after: datetime | None = None,
) -> Job:
    """Add a job (due `after`, or now), unless the same job (kind and arguments) is already waiting for this
    shop (then that one is returned). A job with other arguments is another job: one customer's unsubscribe
    never absorbs another's."""
    wanted = arguments or {}
    waiting = session.exec(
        select(Job).where(Job.shop_id == shop_id, Job.kind == kind, Job.status == JobStatus.PENDING)
    ).all()
    for job in waiting:
        if job.arguments == wanted:
            return job
    job = Job(shop_id=shop_id, kind=kind, arguments=wanted, run_after=after or now, created_at=now)
    session.add(job)
    return job


@dataclass(frozen=True)
class JobReport(Tally):
    done: int = 0
    retry: int = 0
    parked: int = 0
    continued: int = 0


class JobRunner:
    def __init__(
        self, engine: Engine, handlers: Mapping[str, JobHandler], *, lease: timedelta = LEASE, max_claims: int = 3
    ) -> None:
        self._engine = engine
        self._handlers = handlers
        self._lease = lease
        self._max_claims = max_claims

    def run_due(self, now: datetime, *, stop: threading.Event | None = None) -> JobReport:
        """Every job due at `now`, one at a time, each outside any long transaction. A job that continues
        runs one slice per call, so that other work gets its turn between slices. Once `stop` is set, the job
        (or slice) in hand is finished and no other is claimed."""
        report = JobReport()
        sliced: set[int] = set()
        while not (stop is not None and stop.is_set()) and (job := self._claim(now, sliced)) is not None:
            if job.status == JobStatus.PARKED:
                report += JobReport(parked=1)
                continue
            result = self._run(job, now)
            if result.continued:
                sliced.add(job.id or 0)
            report += result
        return report

    def _claim(self, now: datetime, sliced: set[int]) -> Job | None:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            job = session.exec(
                select(Job)
                .where(
                    or_(
                        (col(Job.status) == JobStatus.PENDING) & (col(Job.run_after) <= now),
                        # A worker died while running it: its lease ran out.
                        (col(Job.status) == JobStatus.RUNNING) & (col(Job.lease_until) < now),
                    )
                )
                .where(col(Job.id).not_in(sliced))
                .order_by(col(Job.run_after), col(Job.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            if job.status == JobStatus.RUNNING and job.claims >= self._max_claims:
                # Every worker that ran it died (a crash, the out-of-memory killer): it must not take more down.
                job.status, job.finished_at, job.lease_until = JobStatus.PARKED, now, None
                job.last_error = f"claimed {job.claims} times and never finished: its worker stopped each time"
                log.error("job %s (%s) parked: claimed %d times without finishing", job.id, job.kind, job.claims)
                return job
            job.status = JobStatus.RUNNING
            job.attempts += 1
            job.claims += 1
            job.lease_until = now + self._lease
            return job

    def _run(self, job: Job, now: datetime) -> JobReport:
        handler = self._handlers.get(job.kind)
        error: Exception | None = None
        outcome: JobOutcome | None = None
        try:
            if handler is None:
                raise JobFailed(f"no handler for job kind {job.kind!r}")
            outcome = handler(job, now)
        except Exception as exc:
            error = exc
        with Session(self._engine) as session, session.begin():
            stored = session.get(Job, job.id, with_for_update=True)
            assert stored is not None
            stored.lease_until, stored.claims = None, 0
            if error is None and outcome in (JobOutcome.CONTINUE, JobOutcome.WAIT):
                stored.status, stored.attempts = JobStatus.PENDING, 0
                stored.run_after = now if outcome is JobOutcome.CONTINUE else now + WAIT
                return JobReport(continued=int(outcome is JobOutcome.CONTINUE))
            if error is None:
                stored.status, stored.finished_at, stored.last_error = JobStatus.DONE, now, None
                return JobReport(done=1)
            stored.last_error = f"{type(error).__name__}: {error}"[:2000]
            if isinstance(error, JobFailed) or stored.attempts >= MAX_ATTEMPTS:
                stored.status, stored.finished_at = JobStatus.PARKED, now
                log.error("job %s (%s) parked: %s", stored.id, stored.kind, type(error).__name__)
                return JobReport(parked=1)
            stored.status = JobStatus.PENDING
            stored.run_after = now + RETRY_BASE * (1 << (stored.attempts - 1))
            log.warning(
                "job %s (%s) failed, retry at %s: %s", stored.id, stored.kind, stored.run_after, type(error).__name__
            )
            return JobReport(retry=1)
