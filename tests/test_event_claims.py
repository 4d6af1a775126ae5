"""Claims: a batch of events is handled together, yet a poison event is isolated, an event that kills its worker
is parked after `EVENT_MAX_CLAIMS` claims, and one shop's flood never holds another shop's events back."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import col, select

from shopify_app.events.context import WebhookContext
from shopify_app.events.processor import EventProcessor
from shopify_app.events.registry import HANDLERS
from shopify_app.models import Checkout, EventAttempt, EventStatus, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.env import process_env
from tests.support.pipeline import NOW, deliver

ROOT = Path(__file__).resolve().parent.parent


def checkouts(runtime: Runtime, tokens: list[str]) -> None:
    for token in tokens:
        deliver(runtime, "checkouts/create", payloads.checkout(token))


def attempts(db: Db) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for attempt in db.all(EventAttempt):
        found.setdefault(attempt.event_id, []).append(attempt.outcome)
    return found


def test_a_poison_event_is_isolated_and_the_rest_of_its_batch_is_handled(runtime: Runtime, shop: Shop, db: Db) -> None:
    tokens = [f"ck-{n}" for n in range(20)]
    checkouts(runtime, tokens)
    handle = HANDLERS["checkouts/create"]

    def poisoned(ctx: WebhookContext) -> None:
        handle(ctx)  # its writes are made, then undone with the failed batch
        if ctx.payload["token"] == "ck-13":
            raise ConnectionError("the database went away")

    report = EventProcessor(runtime.engine, {**HANDLERS, "checkouts/create": poisoned}, batch_size=50).drain(NOW)

    assert (report.claimed, report.done, report.retry) == (20, 19, 1)
    assert sorted(db.rows(select(Checkout.token))) == sorted(t for t in tokens if t != "ck-13")
    events = {e.id: e for e in db.all(WebhookEvent)}
    poison = next(e for e in events.values() if b'"ck-13"' in (e.body or b""))
    assert (poison.status, poison.attempts, poison.next_attempt_at) == ("pending", 1, NOW + timedelta(seconds=30))
    assert (poison.claimed_until, poison.claims) == (None, 0)
    # Every other event was done exactly once: the failed tries of the whole batch and of its halves left nothing.
    assert {i: outcomes for i, outcomes in attempts(db).items() if i != poison.id} == {
        i: ["done"] for i in events if i != poison.id
    }
    assert attempts(db)[poison.id or 0] == ["retry"]


def test_an_event_that_kills_its_worker_is_parked_after_three_claims(
    runtime: Runtime, shop: Shop, db: Db, db_url: str
) -> None:
    tokens = [f"ck-{n}" for n in range(6)]
    checkouts(runtime, tokens)
    exits = []
    for _run in range(5):
        run = subprocess.run(
            [sys.executable, "-m", "tests.support.fatal_worker", db_url, "ck-2"],
            cwd=ROOT, env=process_env(db_url), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        exits.append(run.returncode)
        if run.returncode == 0:
            break

    # Killed with its whole batch, then with the fatal event alone, twice; the fourth run parks it and finishes.
    assert exits == [-9, -9, -9, 0]
    fatal = next(e for e in db.all(WebhookEvent) if b'"ck-2"' in (e.body or b""))
    assert fatal.status == EventStatus.PARKED
    assert (fatal.last_error or "").startswith("claimed 3 times and never finished")
    assert sorted(db.rows(select(Checkout.token))) == [t for t in tokens if t != "ck-2"]
    assert [e.status for e in db.all(WebhookEvent) if e.id != fatal.id] == ["done"] * 5
    assert attempts(db)[fatal.id or 0] == ["parked"]


def test_a_shop_flooded_with_events_does_not_hold_back_another_shops(runtime: Runtime, shop: Shop, db: Db) -> None:
    small_domain = "small-shop.myshopify.com"
    with db.write() as session:
        small = register_shop(
            session, runtime.secret_box, small_domain, access_token="shpat_small", webhook_secret=None, now=RECEIVED_AT
        )
    body = webhooks.encode(payloads.customer(501))
    flood = [
        {"shop_domain": webhooks.SHOP, "shop_id": shop.id, "topic": "customers/update", "webhook_id": f"flood-{n}",
         "received_at": RECEIVED_AT, "body": body}
        for n in range(10_000)
    ]  # fmt: skip
    with db.write() as session:
        session.execute(insert(WebhookEvent), flood)
    for n in range(10):
        deliver(runtime, "customers/update", payloads.customer(900 + n), shop=small_domain)
    processor = EventProcessor(runtime.engine, HANDLERS, batch_size=200)

    for _batch in range(2):
        processor.process_batch(NOW)

    shop_id = col(WebhookEvent.shop_id)
    pending = select(shop_id, func.count()).where(WebhookEvent.status == EventStatus.PENDING).group_by(shop_id)
    with runtime.read_session() as session:
        left = {shop_id: count for shop_id, count in session.exec(pending)}
    assert small.id not in left
    assert left[shop.id] == 10_000 - 2 * 200 + 10
