"""Two workers handling events that share rows, at the same moment, on PostgreSQL: neither waits on the other in
a cycle (which PostgreSQL would break by failing one of them as a deadlock victim, after `deadlock_timeout`)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from shopify_app.events.context import Handler, WebhookContext
from shopify_app.events.processor import BatchReport, EventProcessor
from shopify_app.events.registry import HANDLERS
from shopify_app.models import Customer, EventAttempt, Order, PrivacyRequest, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import NOW, deliver, process
from tests.support.webhooks import SHOP

BOB: dict[str, Any] = {"id": 706405506930370084, "email": "bob@biller.com", "phone": "+16135550123"}
# Bob's partner: another customer, on the same phone number.
EVE: dict[str, Any] = {"id": 706405506930370085, "email": "eve@biller.com", "phone": "+16135550123"}
QUICKLY = 5.0  # seconds: well under what a deadlock costs (deadlock_timeout, then a retry 30 s later)


def with_customer_and_orders(runtime: Runtime, *people: dict[str, Any]) -> None:
    for n, person in enumerate(people):
        customer = payloads.customer(person["id"], email=person["email"], phone=person["phone"])
        deliver(runtime, "customers/create", customer)
        deliver(runtime, "orders/create", payloads.order(9001 + n, email=person["email"], customer=customer))
    process(runtime)


def redaction(person: dict[str, Any], order_id: int = 9001) -> dict[str, Any]:
    return {"shop_domain": SHOP, "customer": person, "orders_to_redact": [order_id]}


def together(handlers: dict[str, Handler], *topics: str, pause: dict[str, float] | None = None) -> dict[str, Handler]:
    """The real handlers, except that the events of `topics` start only once each worker holds its claim: both
    batches are then in flight at once, as two worker processes' can be. `pause` holds one back a little longer."""
    barrier = threading.Barrier(len(topics), timeout=10)

    def held(topic: str) -> Handler:
        def run(ctx: WebhookContext) -> None:
            barrier.wait()
            time.sleep((pause or {}).get(topic, 0.0))
            handlers[topic](ctx)

        return run

    return {**handlers, **{topic: held(topic) for topic in topics}}


def two_workers(runtime: Runtime, handlers: dict[str, Handler]) -> tuple[float, list[BatchReport]]:
    """Two workers, each in its own thread with its own connection, claiming one event at a time."""
    reports: list[BatchReport] = []

    def work() -> None:
        reports.append(EventProcessor(runtime.engine, handlers, batch_size=1, worker_id="w").drain(NOW))

    threads = [threading.Thread(target=work) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return time.monotonic() - started, reports


def attempts(db: Db, topic: str) -> list[tuple[str, int, str | None]]:
    return [(e.status, e.attempts, e.last_error) for e in db.all(WebhookEvent, WebhookEvent.topic == topic)]


def assert_none_retried(db: Db) -> None:
    [retried] = db.rows(select(func.count()).where(EventAttempt.outcome != "done"))
    assert retried == 0, [e.last_error for e in db.all(WebhookEvent) if e.last_error]


def assert_bob_erased(db: Db) -> None:
    assert db.all(Customer, Customer.customer_id == BOB["id"]) == []
    assert [e.id for e in db.all(WebhookEvent) if e.body is not None and b"bob@biller.com" in e.body] == []


@pytest.mark.postgres_only
def test_two_redactions_of_one_customer_at_once_both_finish_without_a_deadlock(pg_runtime: Runtime) -> None:
    db = Db(pg_runtime)
    with_customer_and_orders(pg_runtime, BOB)
    # Shopify repeats a request the merchant makes twice: each body names Bob, so each is in the other's way.
    deliver(pg_runtime, "customers/redact", redaction(BOB))
    deliver(pg_runtime, "customers/redact", redaction(BOB))

    elapsed, reports = two_workers(pg_runtime, together(dict(HANDLERS), "customers/redact"))

    assert sum(r.claimed for r in reports) == 2  # one each, at the same time
    assert attempts(db, "customers/redact") == [("done", 1, None), ("done", 1, None)]
    assert elapsed < QUICKLY
    assert_none_retried(db)
    assert_bob_erased(db)
    assert len(db.all(PrivacyRequest, PrivacyRequest.kind == "customers_redact")) == 2


@pytest.mark.postgres_only
def test_redactions_of_two_customers_named_in_the_same_bodies_both_finish_without_a_deadlock(
    pg_runtime: Runtime,
) -> None:
    db = Db(pg_runtime)
    with_customer_and_orders(pg_runtime, BOB, EVE)
    # Both requests name the same phone number: every body of one household is in both footprints.
    deliver(pg_runtime, "customers/redact", redaction(BOB, 9001))
    deliver(pg_runtime, "customers/redact", redaction(EVE, 9002))

    elapsed, _reports = two_workers(pg_runtime, together(dict(HANDLERS), "customers/redact"))

    assert attempts(db, "customers/redact") == [("done", 1, None), ("done", 1, None)]
    assert elapsed < QUICKLY
    assert_none_retried(db)
    assert db.all(Customer) == []
    assert all(o.email is None and o.customer_id is None for o in db.all(Order))
    assert all(e.body is None for e in db.all(WebhookEvent))


@pytest.mark.postgres_only
def test_a_redaction_and_the_customers_order_at_once_both_finish_without_a_deadlock(pg_runtime: Runtime) -> None:
    db = Db(pg_runtime)
    with_customer_and_orders(pg_runtime, BOB)
    later = "2026-11-20T11:30:00Z"
    bob = payloads.customer(BOB["id"], email=BOB["email"], phone=BOB["phone"], updated_at=later)
    # The order changes while the redaction runs: the order's worker holds its event, then wants Bob's rows.
    deliver(pg_runtime, "orders/updated", payloads.order(9001, email=BOB["email"], customer=bob, updated_at=later))
    deliver(pg_runtime, "customers/redact", redaction(BOB))

    handlers = together(dict(HANDLERS), "orders/updated", "customers/redact", pause={"orders/updated": 0.3})
    elapsed, _reports = two_workers(pg_runtime, handlers)

    assert attempts(db, "orders/updated") == [("done", 1, None)]
    assert attempts(db, "customers/redact") == [("done", 1, None)]
    assert elapsed < QUICKLY
    assert_none_retried(db)
    # The redaction waited for the order's batch, then erased what that batch had written too.
    assert_bob_erased(db)
    [order] = db.all(Order)
    assert (order.email, order.customer_id) == (None, None)


@pytest.mark.postgres_only
def test_a_shop_redaction_meeting_a_customer_redaction_in_flight_waits_its_turn_instead_of_deadlocking(
    pg_runtime: Runtime,
) -> None:
    db = Db(pg_runtime)
    with_customer_and_orders(pg_runtime, BOB)
    with db.write() as session:
        session.exec(select(Shop)).one().installed = False  # shop/redact comes 48 hours after the uninstall
    deliver(pg_runtime, "customers/redact", redaction(BOB))
    deliver(pg_runtime, "shop/redact", {"shop_id": 954889, "shop_domain": SHOP})

    elapsed, _reports = two_workers(pg_runtime, together(dict(HANDLERS), "customers/redact", "shop/redact"))

    assert elapsed < QUICKLY
    assert attempts(db, "customers/redact") == [("done", 1, None)]
    [(status, tries, error)] = attempts(db, "shop/redact")
    assert (status, tries) == ("pending", 1)  # retried shortly, not failed as a deadlock victim
    assert error == "ErasureDeferred: 1 of the shop's webhook events are being handled by another worker"

    process(pg_runtime, NOW + timedelta(minutes=1))

    assert attempts(db, "shop/redact") == [("done", 2, None)]
    assert [(e.topic, e.body) for e in db.all(WebhookEvent)] == [("shop/redact", None)]
    assert db.all(Shop) == []
