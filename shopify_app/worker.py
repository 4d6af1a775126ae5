"""The worker process: one APScheduler loop that handles stored events and sends what is due.

`run_once` is the same work with the clock frozen at one instant, repeated until nothing is due.
Jobs stay thin: build the services, call them with `now`, log the outcome.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from shopify_app.channels import email_channel
from shopify_app.events.processor import BatchReport, EventProcessor, RetryPolicy
from shopify_app.events.registry import HANDLERS
from shopify_app.events.retention import purge_raw_bodies
from shopify_app.journeys.reminders import ReminderReport, ReminderSender
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.runtime import Runtime

log = logging.getLogger(__name__)

PURGE_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class RunSummary:
    events: BatchReport
    reminders: ReminderReport
    bodies_purged: int

    def describe(self) -> str:
        e, r = self.events, self.reminders
        return (
            f"events: {e.done} handled, {e.retry} to retry later, {e.parked} parked; "
            f"reminders: {r.sent} sent, {r.skipped} skipped, {r.deferred} deferred, {r.refused} refused, "
            f"{r.unknown} unknown; raw bodies purged: {self.bodies_purged}"
        )


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._events = EventProcessor(
            runtime.engine,
            HANDLERS,
            batch_size=settings.worker_batch_size,
            retry=RetryPolicy(
                max_attempts=settings.event_max_attempts,
                base_delay=timedelta(seconds=settings.event_retry_base_seconds),
            ),
        )
        channel = email_channel(settings)
        self._reminders = (
            ReminderSender(
                runtime.engine,
                channel,
                UnsubscribeLinks(settings.secret_key, settings.app_url),
                sender_address=settings.email_from or "",
                lease=timedelta(seconds=settings.message_lease_seconds),
            )
            if channel is not None
            else None
        )
        if self._reminders is None:
            log.warning("SMTP_URL is not set: no email will be sent; due reminders wait")

    def run_once(self) -> RunSummary:
        """Everything due at the runtime clock's current instant, until nothing more is due."""
        now = self._runtime.clock.now()
        events, reminders = self._due_work(now)
        return RunSummary(events=events, reminders=reminders, bodies_purged=self.purge(now))

    def _due_work(self, now: datetime) -> tuple[BatchReport, ReminderReport]:
        events, reminders = BatchReport(), ReminderReport()
        while True:
            # Events first: a reminder is decided on the storefront as the latest deliveries left it.
            handled = self._events.drain(now)
            sent = self._reminders.run(now) if self._reminders else ReminderReport()
            events, reminders = events + handled, reminders + sent
            if not handled.claimed:
                return events, reminders

    def tick(self) -> None:
        events, reminders = self._due_work(self._runtime.clock.now())
        if events.claimed or reminders != ReminderReport():
            log.info("%s", RunSummary(events, reminders, 0).describe())

    def purge(self, now: datetime | None = None) -> int:
        retention = timedelta(days=self._runtime.settings.raw_body_retention_days)
        with self._runtime.session() as session, session.begin():
            purged = purge_raw_bodies(session, now or self._runtime.clock.now(), retention)
        if purged:
            log.info("purged %d raw webhook bodies older than %s", purged, retention)
        return purged

    def run_forever(self) -> None:
        scheduler = BlockingScheduler(timezone=UTC)
        first_run = datetime.now(UTC)
        # One instance of each job at a time; a late run is merged, not queued.
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self._runtime.settings.worker_poll_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=first_run,
        )
        scheduler.add_job(self.purge, "interval", seconds=PURGE_INTERVAL.total_seconds(), next_run_time=first_run)

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("worker stopping on signal %d", signum)
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("worker started")
        scheduler.start()
