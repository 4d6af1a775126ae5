"""Real `chorus worker` processes: killed mid-batch, and several side by side on PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from shopify_app.models import EventAttempt, EventStatus, Order, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.pipeline import deliver


def small_order(order_id: int) -> dict[str, object]:
    return {
        "id": order_id,
        "email": f"customer{order_id}@example.com",
        "total_price": f"{order_id % 97}.50",
        "currency": "USD",
        "updated_at": "2026-11-20T11:00:00Z",
        "line_items": [{"variant_id": 808950810, "product_id": 632910392, "quantity": 1, "price": "9.50"}],
    }


def seed_orders(runtime: Runtime, count: int) -> None:
    for order_id in range(1, count + 1):
        deliver(runtime, "orders/create", small_order(order_id))


def count_done(db: Db) -> int:
    [count] = db.rows(select(func.count()).where(WebhookEvent.status == EventStatus.DONE))
    return int(count)


def assert_each_event_handled_exactly_once(db: Db, expected: int) -> None:
    events = db.all(WebhookEvent)
    assert len(events) == expected
    assert {(e.status, e.attempts) for e in events} == {(EventStatus.DONE, 1)}
    # One committed handling per event: a handling that was rolled back leaves no attempt row.
    done_attempts = Counter(db.rows(select(EventAttempt.event_id).where(EventAttempt.outcome == "done")))
    assert len(done_attempts) == expected
    assert set(done_attempts.values()) == {1}
    orders = db.all(Order)
    assert sorted(o.order_id for o in orders) == list(range(1, expected + 1))
    assert all(o.total_price == Decimal(f"{o.order_id % 97}.50") for o in orders)


def start_worker(log: Path, database_url: str, **env: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own handle
        return subprocess.Popen(
            [*chorus_command(), "worker"],
            env=process_env(database_url, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if any(worker.poll() is not None for worker in workers):
            pytest.fail(f"a worker exited early: {[w.returncode for w in workers]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_handles_nothing_twice(
    db_url: str, runtime: Runtime, shop: object, db: Db, tmp_path: Path
) -> None:
    total, batch = 1500, 100
    seed_orders(runtime, total)
    # A short lease: the batch it may have claimed when killed is free again by the time it restarts.
    worker = start_worker(tmp_path / "worker.log", db_url, WORKER_BATCH_SIZE=str(batch), WORKER_POLL_SECONDS="0.05",
                          EVENT_CLAIM_LEASE_SECONDS="1")  # fmt: skip

    wait_until(lambda: count_done(db) >= batch, 60, "the first batch", [worker])
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    time.sleep(1.1)

    done_at_kill = count_done(db)
    assert done_at_kill < total, "the worker finished before it was killed; the test proved nothing"
    # Batches commit whole: the one in flight at the kill left no trace at all.
    assert done_at_kill % batch == 0
    untouched = db.all(WebhookEvent, col(WebhookEvent.status) == EventStatus.PENDING)
    assert {e.attempts for e in untouched} == {0}
    assert len(db.all(Order)) == done_at_kill

    restarted = subprocess.run(
        [*chorus_command(), "worker", "--once"], env=process_env(db_url), capture_output=True, timeout=120
    )

    assert restarted.returncode == 0, restarted.stderr.decode()
    assert f"{total - done_at_kill} handled" in restarted.stdout.decode()
    assert_each_event_handled_exactly_once(db, total)


@pytest.mark.slow
def test_four_workers_on_postgresql_handle_each_of_2000_events_exactly_once(
    postgres_url: str, pg_runtime: Runtime, tmp_path: Path
) -> None:
    db = Db(pg_runtime)
    workers = [
        start_worker(tmp_path / f"worker{n}.log", postgres_url, WORKER_BATCH_SIZE="25", WORKER_POLL_SECONDS="0.02")
        for n in range(4)
    ]
    try:
        # Deliveries arrive while all four workers poll the queue, as in production.
        seed_orders(pg_runtime, 2000)
        wait_until(lambda: count_done(db) == 2000, 120, "all events handled", workers)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        exit_codes = [worker.wait(timeout=30) for worker in workers]

    assert exit_codes == [0, 0, 0, 0]  # SIGTERM is a clean stop
    assert_each_event_handled_exactly_once(db, 2000)
    share = Counter(db.rows(select(EventAttempt.worker)))
    assert len(share) == 4, f"not every worker took part: {share}"
