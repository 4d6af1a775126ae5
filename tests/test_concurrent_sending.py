"""Four `chorus worker --once --now T` processes over the same due journeys on PostgreSQL: each step goes out
exactly once."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shopify_app.clock import FrozenClock
from shopify_app.models import Journey, Message
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
from tests.test_abandoned_checkout_flow import describe_store

CHECKOUTS = 60  # three of the runner's batches of twenty, for the workers to share
DUE = datetime(2026, 11, 20, 11, 5, tzinfo=UTC)  # every reminder was due at 11:00
MAIL = {"EMAIL_FROM": "reminders@mail.chorus.example"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def due_journeys(postgres_url: str, smtp: SmtpServer) -> Iterator[Runtime]:
    """A shop with the abandoned checkouts of CHECKOUTS shoppers, their reminders all due at DUE."""
    runtime = Runtime.build(make_settings(postgres_url, SMTP_URL=smtp.url, **MAIL), clock=FrozenClock(RECEIVED_AT))
    try:
        with runtime.session() as session, session.begin():
            shop = register_shop(session, runtime.secret_box, SHOP, access_token="t", webhook_secret=None,
                                 now=RECEIVED_AT)  # fmt: skip
            shop.policy = dict(ALL_DAY)
        describe_store(runtime)
        for n in range(CHECKOUTS):
            checkout = payloads.checkout(
                f"ck-{n}", email=f"shopper{n}@example.com", customer=None, buyer_accepts_marketing=True
            )
            deliver(runtime, "checkouts/create", checkout)
        process(runtime, RECEIVED_AT)  # the journeys now wait for 11:00
        yield runtime
    finally:
        runtime.close()
        empty_all_tables(postgres_url)


@pytest.mark.postgres_only
@pytest.mark.slow
def test_four_workers_started_together_send_each_step_exactly_once(
    postgres_url: str, due_journeys: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    db = Db(due_journeys)
    assert {(j.state, j.step) for j in db.all(Journey)} == {("waiting", "reminder")}
    assert len(db.all(Journey)) == CHECKOUTS
    env = process_env(postgres_url, SMTP_URL=smtp.url, **MAIL)
    logs = [tmp_path / f"worker{n}.log" for n in range(4)]
    workers = []
    for log in logs:
        with log.open("wb") as output:
            workers.append(
                subprocess.Popen(
                    [*chorus_command(), "worker", "--once", "--now", DUE.isoformat()],
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )
    exit_codes = [worker.wait(timeout=60) for worker in workers]

    assert exit_codes == [0, 0, 0, 0], "\n".join(log.read_text() for log in logs)
    received = Counter((r.recipients[0], r.parsed()["Subject"]) for r in smtp.sink.received)
    assert len(received) == CHECKOUTS
    assert set(received.values()) == {1}  # every shopper got the reminder, once
    assert {recipient for recipient, _subject in received} == {f"shopper{n}@example.com" for n in range(CHECKOUTS)}
    messages = db.all(Message)
    assert len(messages) == CHECKOUTS
    assert {(m.step, m.status, m.attempts) for m in messages} == {("reminder", "sent", 1)}
    assert {(j.state, j.step) for j in db.all(Journey)} == {("waiting", "second_reminder")}
    sent_counts = [int(log.read_text().split("messages: ")[1].split(" sent")[0]) for log in logs]
    assert sum(sent_counts) == CHECKOUTS  # what the workers report adds up too
