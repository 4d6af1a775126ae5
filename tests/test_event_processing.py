"""The worker's handling of stored events: routing, retries with backoff, parking, replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from shopify_app.events.context import Handler, WebhookContext
from shopify_app.events.processor import EventProcessor, RetryPolicy
from shopify_app.events.registry import HANDLERS
from shopify_app.events.replay import requeue_events
from shopify_app.models import Checkout, EventStatus, Order, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import NOW, deliver, process


def events(db: Db) -> list[WebhookEvent]:
    return db.all(WebhookEvent)


def failing_on(topic: str) -> dict[str, Handler]:
    """The real handlers, except that one topic's handler raises as a transient failure would."""

    def broken(_ctx: WebhookContext) -> None:
        raise ConnectionError("database went away")

    return {**HANDLERS, topic: broken}


def test_stored_events_are_handled_once_with_the_frozen_clock(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "checkouts/create", payloads.checkout("ck-1"))
    deliver(runtime, "orders/create", payloads.order(1001))

    report = process(runtime, NOW)
    again = process(runtime, NOW)

    assert (report.claimed, report.done, again.claimed) == (2, 2, 0)
    assert all((e.status, e.attempts, e.processed_at) == (EventStatus.DONE, 1, NOW) for e in events(db))
    assert db.rows(select(Checkout.token)) == ["ck-1"]
    assert db.rows(select(Order.order_id)) == [1001]


def test_a_failing_event_is_retried_with_backoff_and_does_not_block_others(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    deliver(runtime, "orders/create", payloads.order(1001))
    deliver(runtime, "checkouts/create", payloads.checkout("ck-1"))
    processor = EventProcessor(
        runtime.engine,
        failing_on("orders/create"),
        retry=RetryPolicy(base_delay=timedelta(seconds=30)),
    )

    first = processor.drain(NOW)

    order_event, checkout_event = events(db)
    assert (first.done, first.retry) == (1, 1)
    assert checkout_event.status == EventStatus.DONE
    assert order_event.status == EventStatus.PENDING
    assert order_event.next_attempt_at == NOW + timedelta(seconds=30)
    assert order_event.last_error == "ConnectionError: database went away"
    # Not due again at the same instant, nor before its retry time; due after it.
    assert processor.drain(NOW + timedelta(seconds=29)).claimed == 0
    processor.drain(NOW + timedelta(seconds=30))
    assert events(db)[0].next_attempt_at == NOW + timedelta(seconds=30 + 60)

    # Once the cause is gone, the real handler succeeds.
    process(runtime, NOW + timedelta(seconds=90))
    assert events(db)[0].status == EventStatus.DONE
    assert db.rows(select(Order.order_id)) == [1001]


def test_an_event_that_keeps_failing_is_parked_then_replayed(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "orders/create", payloads.order(1001))
    processor = EventProcessor(
        runtime.engine,
        failing_on("orders/create"),
        retry=RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=1)),
    )
    moment = NOW
    for _ in range(5):
        processor.drain(moment)
        moment += timedelta(hours=1)

    [event] = events(db)
    assert (event.status, event.attempts) == (EventStatus.PARKED, 3)
    assert event.last_error == "ConnectionError: database went away"
    assert db.all(Order) == []

    with db.write() as session:
        assert requeue_events(session) == 1
    process(runtime, moment)
    [event] = events(db)
    assert (event.status, event.attempts) == (EventStatus.DONE, 1)
    assert db.rows(select(Order.order_id)) == [1001]


def test_a_payload_missing_its_key_is_parked_at_once(runtime: Runtime, shop: Shop, db: Db) -> None:
    broken = payloads.order(1001)
    del broken["id"]
    deliver(runtime, "orders/create", broken)
    deliver(runtime, "orders/create", payloads.order(1002))

    report = process(runtime)

    first, second = events(db)
    assert (report.parked, report.done) == (1, 1)
    assert (first.status, first.attempts, first.last_error) == (
        EventStatus.PARKED, 1, "PermanentEventError: payload has no 'id'",
    )  # fmt: skip
    assert second.status == EventStatus.DONE


def test_a_handler_failure_leaves_no_partial_effect(runtime: Runtime, shop: Shop, db: Db) -> None:
    def half_done(ctx: WebhookContext) -> None:
        HANDLERS["orders/create"](ctx)  # writes the order...
        raise TimeoutError("...then fails")

    deliver(runtime, "orders/create", payloads.order(1001))
    EventProcessor(runtime.engine, {**HANDLERS, "orders/create": half_done}).drain(NOW)

    assert db.all(Order) == []
    assert events(db)[0].status == EventStatus.PENDING


@pytest.mark.parametrize("statuses", [[EventStatus.PARKED], [EventStatus.UNHANDLED]])
def test_replay_only_touches_the_requested_states(
    runtime: Runtime, shop: Shop, db: Db, statuses: list[EventStatus]
) -> None:
    deliver(runtime, "carts/create", {"token": "cart-1"})  # unhandled topic
    with db.write() as session:
        count = requeue_events(session, statuses=statuses)
    assert count == (1 if statuses == [EventStatus.UNHANDLED] else 0)
