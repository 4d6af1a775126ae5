"""Frequency caps across flows and channels: one person due two messages gets the more important one; the other
waits until the cap has room, and goes then. Four workers at once never exceed a cap (PostgreSQL)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shopify_app.clock import FrozenClock
from shopify_app.models import Decision, Journey, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import ALL_DAY, RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.database import empty_all_tables
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, describe_store, mail_runtime, run_worker, smtp, store

__all__ = ["mail_runtime", "smtp", "store"]  # fixtures

CAPPED = ALL_DAY | {"caps": ["1/16h", "5/7d"]}  # the defaults, at any hour
MAIL = {"EMAIL_FROM": "reminders@mail.chorus.example"}


def due_twice(runtime: Runtime, n: int = 0) -> None:
    """Someone who subscribes (the welcome is due at once) and leaves a checkout (its reminder due at 11:00)."""
    customer_id, email = 700 + n, f"shopper{n}@example.com"
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-20T10:00:00Z"}
    deliver(runtime, "customers/create", payloads.customer(customer_id, email=email, email_marketing_consent=consent))
    customer: dict[str, Any] = {"id": customer_id, "email": email, "first_name": "Ada"}
    deliver(runtime, "checkouts/create", payloads.checkout(f"ck-{n}", email=email, customer=customer,
                                                           buyer_accepts_marketing=True))  # fmt: skip


def capped_shop(runtime: Runtime, db: Db) -> None:
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, db.one(Shop).id, with_for_update=True)
        assert shop is not None
        shop.policy = dict(CAPPED)


def test_of_two_messages_due_to_one_person_the_more_important_goes_and_the_other_waits_for_room(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    capped_shop(store, db)
    due_twice(store)
    process(store, RECEIVED_AT)

    assert run_worker(store, AFTER_DUE).journeys.sent == 1
    [first] = smtp.sink.received
    assert "you left something" in first.parsed()["Subject"]  # the abandoned checkout goes first
    [held] = [d for d in db.all(Decision) if d.reason == "capped"]
    assert held.flow == "welcome"
    assert (held.detail["cap"], held.detail["until"]) == ("1/16h", (AFTER_DUE + timedelta(hours=16)).isoformat())

    assert run_worker(store, AFTER_DUE + timedelta(hours=15)).journeys.sent == 0  # still no room
    assert run_worker(store, AFTER_DUE + timedelta(hours=16, minutes=1)).journeys.sent == 1
    assert len(smtp.sink.received) == 2
    assert sorted(m.flow for m in db.all(Message)) == ["abandoned_checkout", "welcome"]


def test_a_message_that_would_fill_the_cap_gives_way_to_a_more_important_one_due_within_the_hour(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    capped_shop(store, db)
    due_twice(store)
    process(store, RECEIVED_AT)

    # 10:30: the welcome is due, the reminder only at 11:00; sending the welcome now would leave it no room.
    early = run_worker(store, datetime(2026, 11, 20, 10, 30, tzinfo=UTC))

    assert early.journeys.sent == 0
    [gives_way] = [d for d in db.all(Decision) if d.reason == "gives_way"]
    assert (gives_way.flow, gives_way.detail["until"]) == ("welcome", "2026-11-20T11:01:00+00:00")
    assert run_worker(store, AFTER_DUE).journeys.sent == 1
    assert [m.flow for m in db.all(Message)] == ["abandoned_checkout"]


def test_a_capped_message_whose_premise_ends_meanwhile_is_never_sent(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    capped_shop(store, db)
    due_twice(store)
    process(store, RECEIVED_AT)
    assert run_worker(store, AFTER_DUE).journeys.sent == 1  # the reminder; the welcome waits for room

    # Before there is room, she orders: the welcome's goal is reached, and it never goes.
    placed = payloads.order(9001, customer={"id": 700, "email": "shopper0@example.com"}, email="shopper0@example.com",
                            created_at="2026-11-20T12:00:00Z", updated_at="2026-11-20T12:00:00Z")  # fmt: skip
    deliver(store, "orders/create", placed)
    run_worker(store, AFTER_DUE + timedelta(hours=17))

    assert len(smtp.sink.received) == 1
    welcome = next(j for j in db.all(Journey) if j.flow == "welcome")
    assert (welcome.state, welcome.reason) == ("done", "ordered_since")


SHOPPERS = 24


@pytest.fixture
def shoppers_due_twice(postgres_url: str) -> Iterator[tuple[Runtime, SmtpServer]]:
    with smtp_server() as smtp:
        runtime = Runtime.build(make_settings(postgres_url, SMTP_URL=smtp.url, **MAIL), clock=FrozenClock(RECEIVED_AT))
        try:
            with runtime.session() as session, session.begin():
                shop = register_shop(session, runtime.secret_box, SHOP, access_token="t", webhook_secret=None,
                                     now=RECEIVED_AT)  # fmt: skip
                shop.policy = dict(CAPPED)
            describe_store(runtime)
            for n in range(SHOPPERS):
                due_twice(runtime, n)
            process(runtime, RECEIVED_AT)
            yield runtime, smtp
        finally:
            runtime.close()
            empty_all_tables(postgres_url)


@pytest.mark.postgres_only
@pytest.mark.slow
def test_four_workers_at_once_never_exceed_a_cap(
    postgres_url: str, shoppers_due_twice: tuple[Runtime, SmtpServer], tmp_path: Path
) -> None:
    runtime, smtp = shoppers_due_twice
    db = Db(runtime)
    assert len(db.all(Journey)) == 2 * SHOPPERS
    env = process_env(postgres_url, SMTP_URL=smtp.url, WORKER_BATCH_SIZE="3", **MAIL)
    logs = [tmp_path / f"worker{n}.log" for n in range(4)]
    workers = []
    for log in logs:
        with log.open("wb") as output:
            command = [*chorus_command(), "worker", "--once", "--now", AFTER_DUE.isoformat()]
            workers.append(subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT))
    assert [w.wait(timeout=90) for w in workers] == [0, 0, 0, 0], "\n".join(log.read_text() for log in logs)

    per_person = Counter(r.recipients[0] for r in smtp.sink.received)
    assert per_person == {f"shopper{n}@example.com": 1 for n in range(SHOPPERS)}  # one each, never two
    assert {m.flow for m in db.all(Message)} == {"abandoned_checkout"}  # the more important flow's
    held = {d.reason for d in db.all(Decision) if d.flow == "welcome" and d.outcome == "deferred"}
    assert held <= {"capped", "gives_way"}
    assert held
