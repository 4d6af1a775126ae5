"""The worker process: one APScheduler loop that handles stored events and sends what is due.

`run_once` is the same work with the clock frozen at one instant, repeated until nothing is due.
Jobs stay thin: build the services, call them with `now`, log the outcome.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from shopify_app.consent import EMAIL_CONSENT_JOB, SMS_CONSENT_JOB
from shopify_app.events.processor import BatchReport, EventProcessor, RetryPolicy
from shopify_app.events.registry import HANDLERS, PRELOAD
from shopify_app.events.retention import purge_pixel_events, purge_raw_bodies
from shopify_app.jobs.confirmations import ConfirmationJob
from shopify_app.jobs.consent import email_consent_job, sms_consent_job
from shopify_app.jobs.install import (
    SUBSCRIPTIONS_JOB,
    WEB_PIXEL_JOB,
    InstallJob,
    SubscriptionsJob,
    WebPixelJob,
    enqueue_subscription_updates,
    enqueue_web_pixel_updates,
)
from shopify_app.jobs.prices import TWILIO_PRICE_JOB, TwilioPriceJob
from shopify_app.jobs.queue import JobReport, JobRunner
from shopify_app.jobs.replies import WHATSAPP_HELP_JOB, WhatsAppHelpJob
from shopify_app.jobs.sync import RECONCILE_JOB, SYNC_JOB, backfill_job, enqueue_reconciliations, reconcile_job
from shopify_app.journeys.carts import sweep_carts
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.journeys.lapses import sweep_lapses
from shopify_app.journeys.runner import JourneyReport, JourneyRunner
from shopify_app.messaging.delivery import SendProtocol
from shopify_app.messaging.directory import directory_for
from shopify_app.messaging.links import ShortLinks
from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shops import INSTALL_JOB
from shopify_app.signup import CONFIRMATION_JOB
from shopify_app.sync import StoreSync

log = logging.getLogger(__name__)

PURGE_INTERVAL = timedelta(hours=1)
# Lapses are counted in days, browse flows in hours: a minute late is on time.
LAPSE_SWEEP_INTERVAL = timedelta(minutes=1)
RECONCILE_CHECK_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class RunSummary:
    events: BatchReport
    journeys: JourneyReport
    jobs: JobReport
    bodies_purged: int
    lapsed: int = 0  # customers entered by a lapse flow
    carts: int = 0  # contacts entered by a browse flow (an abandoned cart, a browse abandonment)

    def describe(self) -> str:
        e, r, j = self.events, self.journeys, self.jobs
        return (
            f"events: {e.done} handled, {e.retry} to retry later, {e.parked} parked; "
            f"messages: {r.sent} sent, {r.skipped} skipped, {r.deferred} deferred, {r.refused} refused, "
            f"{r.unknown} unknown; journeys: {self.lapsed} entered by lapse, {self.carts} by browsing, "
            f"{r.ended} ended; "
            f"jobs: {j.done} done, {j.retry} to retry later, {j.parked} parked; "
            f"raw bodies purged: {self.bodies_purged}"
        )


def tune_collector() -> None:
    """Once the process is set up: what exists now (modules, settings, the runtime) is never scanned by the
    cyclic collector again, and it runs every 20,000 allocations instead of 700. A batch allocates tens of
    thousands of short-lived ORM objects, and each collection scans the survivors. The gain grows with the
    heap: a few percent in a bare worker (alternating benchmark runs: 631 and 603 against 614 and 546
    events/s), a sixth with a large heap beside it. Objects still die by reference counting and cycles are
    still collected, only less often.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self._runtime = runtime
        directory = directory_for(settings, runtime.secret_box)
        protocol = SendProtocol(
            directory,
            lease=timedelta(seconds=settings.message_lease_seconds),
            concurrency=settings.send_concurrency,
            links=ShortLinks(settings.app_url),
        )
        self._hooks = JourneyHooks(runtime.flows, directory.configured)
        self._journeys = JourneyRunner(runtime.engine, runtime.flows, protocol)
        if not directory.deployment:
            log.warning("SMTP_URL is not set: email goes out only for shops with their own email account")
        self._events = EventProcessor(
            runtime.engine,
            HANDLERS,
            batch_size=settings.worker_batch_size,
            retry=RetryPolicy(
                max_attempts=settings.event_max_attempts,
                base_delay=timedelta(seconds=settings.event_retry_base_seconds),
            ),
            journeys=self._hooks,
            lease=timedelta(seconds=settings.event_claim_lease_seconds),
            max_claims=settings.event_max_claims,
            preload=PRELOAD,
        )
        access = ShopifyAccess(runtime)
        sync = StoreSync(access)
        self._jobs = JobRunner(
            runtime.engine,
            {
                INSTALL_JOB: InstallJob(access, settings),
                SYNC_JOB: backfill_job(sync),
                RECONCILE_JOB: reconcile_job(sync),
                EMAIL_CONSENT_JOB: email_consent_job(access),
                SMS_CONSENT_JOB: sms_consent_job(access),
                TWILIO_PRICE_JOB: TwilioPriceJob(runtime),
                WHATSAPP_HELP_JOB: WhatsAppHelpJob(runtime),
                SUBSCRIPTIONS_JOB: SubscriptionsJob(access, settings),
                WEB_PIXEL_JOB: WebPixelJob(access),
                CONFIRMATION_JOB: ConfirmationJob(runtime, directory),
            },
            max_claims=settings.event_max_claims,
        )
        self._reconcile_every = timedelta(minutes=settings.reconcile_interval_minutes)
        self._swept_at: datetime | None = None
        # Set on SIGTERM/SIGINT: each drain finishes the batch (or job slice) in hand and claims no other.
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Stop claiming work; what is in hand is finished, then the running tick returns."""
        self._stop.set()

    def run_once(self) -> RunSummary:
        """Everything due at the runtime clock's current instant, until nothing more is due."""
        now = self._runtime.clock.now()
        self.schedule_reconciliations(now)
        summary = self._due_work(now)
        return RunSummary(
            summary.events, summary.journeys, summary.jobs, self.purge(now), summary.lapsed, summary.carts
        )

    def _due_work(self, now: datetime) -> RunSummary:
        events, journeys, jobs, lapsed, carts = BatchReport(), JourneyReport(), JobReport(), 0, 0
        stop = self._stop
        while not stop.is_set():
            # Events first: a journey is decided on the storefront as the latest deliveries left it.
            handled = self._events.drain(now, stop=stop)
            events += handled
            if stop.is_set():
                break
            if self._swept_at is None or now - self._swept_at >= LAPSE_SWEEP_INTERVAL:
                lapsed += sweep_lapses(self._runtime.engine, self._hooks, now)
                carts += sweep_carts(self._runtime.engine, self._hooks, now)
                self._swept_at = now
            journeys += self._journeys.run(now, stop=stop)
            if stop.is_set():
                break
            ran = self._jobs.run_due(now, stop=stop)
            jobs += ran
            if not handled.claimed and not ran.continued:
                break
        return RunSummary(events, journeys, jobs, 0, lapsed, carts)

    def tick(self) -> None:
        summary = self._due_work(self._runtime.clock.now())
        if (
            summary.events.claimed
            or summary.journeys != JourneyReport()
            or summary.jobs != JobReport()
            or summary.lapsed
            or summary.carts
        ):
            log.info("%s", summary.describe())

    def schedule_reconciliations(self, now: datetime | None = None) -> int:
        """Queue what runs on a schedule per shop: reconciliations, and re-subscriptions and web pixel
        activations after an upgrade."""
        at = now or self._runtime.clock.now()
        enqueue_subscription_updates(self._runtime.engine, self._runtime.settings, at)
        enqueue_web_pixel_updates(self._runtime.engine, self._runtime.settings, at)
        return enqueue_reconciliations(self._runtime.engine, at, self._reconcile_every)

    def purge(self, now: datetime | None = None) -> int:
        retention = timedelta(days=self._runtime.settings.raw_body_retention_days)
        browsing = timedelta(days=self._runtime.settings.pixel_retention_days)
        with self._runtime.session() as session, session.begin():
            purged = purge_raw_bodies(session, now or self._runtime.clock.now(), retention)
            erased = purge_pixel_events(session, now or self._runtime.clock.now(), browsing)
        if purged:
            log.info("purged %d raw webhook bodies older than %s", purged, retention)
        if erased:
            log.info("erased %d storefront events older than %s", erased, browsing)
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
        scheduler.add_job(
            self.schedule_reconciliations,
            "interval",
            seconds=RECONCILE_CHECK_INTERVAL.total_seconds(),
            next_run_time=first_run,
        )

        # Not from the signal handler itself: the signal may have interrupted the scheduler while it held a
        # (non-reentrant) executor lock that shutdown needs. Shutdown waits for the running jobs to return.
        shutdown = threading.Thread(target=scheduler.shutdown, name="shutdown", daemon=True)

        def stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()  # the running tick returns after the batch in hand
            if shutdown.ident is None:  # a second signal changes nothing
                log.info("worker stopping on signal %d; the batch in hand finishes first", signum)
                shutdown.start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # A tick still running when the next one is due is normal here, not worth a warning each time.
        logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotices())
        log.info("worker started")
        scheduler.start()
        # The scheduler's loop may notice the stop before the running jobs have returned: wait for them.
        if shutdown.is_alive():
            shutdown.join()
        log.info("worker stopped")


class _SkipOverlapNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()
