"""A worker told to stop (SIGTERM from Heroku, which kills the dyno 30 s later; SIGINT from a terminal) claims
nothing more, finishes the batch in hand, and exits 0 within seconds, however much work is still due."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import select

from shopify_app.events.context import WebhookContext
from shopify_app.events.processor import EventProcessor
from shopify_app.events.registry import HANDLERS
from shopify_app.jobs.queue import JobOutcome, JobRunner, enqueue
from shopify_app.journeys.runner import JourneyRunner
from shopify_app.messaging.channels import configured_channels
from shopify_app.messaging.delivery import SendProtocol
from shopify_app.messaging.directory import ChannelDirectory
from shopify_app.models import EventAttempt, EventStatus, Job, JobStatus, Journey, Order, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support import payloads
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.pipeline import NOW, deliver, process
from tests.support.smtp import SmtpServer
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, mail_runtime, smtp, store  # noqa: F401  fixtures
from tests.test_worker_processes import (
    assert_each_event_handled_exactly_once,
    count_done,
    small_order,
    start_worker,
    wait_until,
)

EVENTS = 1000  # far more than a worker handles in the seconds the test allows it to stop
BATCH = 25


def store_pending_orders(runtime: Runtime, shop: Shop, count: int) -> None:
    """`count` orders/create deliveries waiting for the worker, stored at once as intake would store them."""
    rows = [
        {
            "shop_domain": SHOP,
            "shop_id": shop.id,
            "topic": "orders/create",
            "webhook_id": f"wh-{n}",
            "event_id": f"ev-{n}",
            "received_at": RECEIVED_AT,
            "body": json.dumps(small_order(n)).encode(),
            "status": EventStatus.PENDING,
            "attempts": 0,
        }
        for n in range(1, count + 1)
    ]
    with runtime.engine.begin() as connection:
        connection.execute(insert(WebhookEvent), rows)


def assert_each_event_done_once_or_untouched(db: Db) -> int:
    events = db.all(WebhookEvent)
    done = [e for e in events if e.status == EventStatus.DONE]
    assert {(e.status, e.attempts) for e in events} <= {(EventStatus.DONE, 1), (EventStatus.PENDING, 0)}
    attempts = Counter(db.rows(select(EventAttempt.event_id)))
    assert sorted(attempts) == sorted(e.id for e in done if e.id is not None)  # a rolled-back batch leaves no attempt
    assert set(attempts.values()) <= {1}
    assert len(db.all(Order)) == len(done)
    return len(done)


def stop_a_busy_worker(db_url: str, runtime: Runtime, shop: Shop, db: Db, log: Path, signum: int) -> int:
    """Start `chorus worker` over EVENTS due events, signal it once it has handled a batch; how many it handled."""
    store_pending_orders(runtime, shop, EVENTS)
    worker = start_worker(log, db_url, WORKER_BATCH_SIZE=str(BATCH), WORKER_POLL_SECONDS="0.05")
    wait_until(lambda: count_done(db) >= BATCH, 60, "the first batch", [worker])

    done_at_signal = count_done(db)
    signalled = time.monotonic()
    worker.send_signal(signum)
    try:
        code = worker.wait(timeout=10)
    finally:
        worker.kill()
    stopped_after = time.monotonic() - signalled

    assert code == 0, log.read_text()
    assert stopped_after < 5, f"took {stopped_after:.1f} s to stop"
    done = assert_each_event_done_once_or_untouched(db)
    # The batch in flight when the signal came, and perhaps the one just claimed as it was counted: no more.
    assert done_at_signal <= done <= done_at_signal + 2 * BATCH
    assert done < EVENTS
    return done


@pytest.mark.slow
def test_a_worker_given_sigterm_finishes_its_batch_exits_at_once_and_the_next_run_does_the_rest(
    db_url: str, runtime: Runtime, shop: Shop, db: Db, tmp_path: Path
) -> None:
    done = stop_a_busy_worker(db_url, runtime, shop, db, tmp_path / "worker.log", signal.SIGTERM)

    rest = subprocess.run(
        [*chorus_command(), "worker", "--once"], env=process_env(db_url), capture_output=True, timeout=120
    )

    assert rest.returncode == 0, rest.stderr.decode()
    assert f"events: {EVENTS - done} handled" in rest.stdout.decode()
    assert_each_event_handled_exactly_once(db, EVENTS)


@pytest.mark.slow
def test_a_worker_given_sigint_stops_as_promptly(
    db_url: str, runtime: Runtime, shop: Shop, db: Db, tmp_path: Path
) -> None:
    stop_a_busy_worker(db_url, runtime, shop, db, tmp_path / "worker.log", signal.SIGINT)


def test_draining_events_stops_after_the_batch_in_hand(runtime: Runtime, shop: Shop, db: Db) -> None:
    for order_id in (1, 2, 3):
        deliver(runtime, "orders/create", payloads.order(order_id))
    stop = threading.Event()

    def signalled_meanwhile(ctx: WebhookContext) -> None:
        stop.set()  # as the signal handler would, while this batch is being handled
        HANDLERS["orders/create"](ctx)

    processor = EventProcessor(runtime.engine, {**HANDLERS, "orders/create": signalled_meanwhile}, batch_size=2)
    report = processor.drain(NOW, stop=stop)

    assert (report.claimed, report.done) == (2, 2)  # the whole batch, then nothing more
    assert [e.status for e in db.all(WebhookEvent)] == [EventStatus.DONE, EventStatus.DONE, EventStatus.PENDING]
    assert process(runtime).done == 1


def test_running_jobs_stops_after_the_job_in_hand(runtime: Runtime, shop: Shop, db: Db) -> None:
    assert shop.id is not None
    with db.write() as session:
        for n in range(3):
            enqueue(session, shop.id, "probe", NOW, {"n": n})
    stop = threading.Event()
    ran: list[Any] = []

    def probe(job: Job, _now: Any) -> JobOutcome:
        ran.append(job.arguments["n"])
        stop.set()
        return JobOutcome.DONE

    runner = JobRunner(runtime.engine, {"probe": probe})
    report = runner.run_due(NOW, stop=stop)

    assert (report.done, ran) == (1, [0])
    assert [j.status for j in db.all(Job, Job.kind == "probe")] == [
        JobStatus.DONE,
        JobStatus.PENDING,
        JobStatus.PENDING,
    ]
    assert runner.run_due(NOW).done == 2


def test_sending_journeys_stops_after_the_batch_in_hand(store: Runtime, smtp: SmtpServer, db: Db) -> None:  # noqa: F811
    for n in range(3):
        abandon(store, f"ck-{n}", email=f"shopper{n}@example.com", customer=None)
    process(store, RECEIVED_AT)
    stop = threading.Event()
    stop.set()  # the signal came while this run was deciding its first batch

    runner = JourneyRunner(
        store.engine, store.flows, SendProtocol(ChannelDirectory(configured_channels(store.settings))), batch_size=1
    )
    report = runner.run(AFTER_DUE, stop=stop)

    assert report.sent == 1  # the batch in hand is sent and recorded, the others wait
    assert len(smtp.sink.received) == 1
    assert len([j for j in db.all(Journey) if j.due_at is not None and j.due_at <= AFTER_DUE]) == 2
    assert runner.run(AFTER_DUE + timedelta(seconds=1)).sent == 2
