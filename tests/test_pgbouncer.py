"""Chorus behind PgBouncer in transaction pooling mode (`DATABASE_POOLER=pgbouncer`).

Every transaction may run on a different server connection, and every server connection serves many
clients: nothing may outlive a transaction on the server (psycopg's prepared statements would).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from shopify_app.clock import FrozenClock
from shopify_app.db import migrate
from shopify_app.db.engine import with_pooler
from shopify_app.models import EventAttempt, EventStatus, Journey, Message, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import ALL_DAY, RECEIVED_AT, make_settings
from tests.support import payloads, webhooks
from tests.support.database import postgres_schema
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.net import free_port
from tests.support.pgbouncer import ALIAS, SINGLE, PgBouncer, pgbouncer, pgbouncer_binary
from tests.support.smtp import smtp_server

POOLED = {"DATABASE_POOLER": "pgbouncer"}
MAIL = {"SMTP_URL": "", "EMAIL_FROM": "reminders@mail.chorus.example"}
CHECKOUTS = 48
WAVE = 16
STARTED = "2026-11-20T10:00:00Z"  # every checkout's last update: the reminders are due an hour later
BEFORE_DUE = datetime(2026, 11, 20, 10, 59, tzinfo=UTC)
AFTER_DUE = datetime(2026, 11, 20, 11, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    pgbouncer_binary()  # skip (or fail in CI) before touching PostgreSQL
    with postgres_schema() as (base, schema), pgbouncer(base, schema, tmp_path_factory.mktemp("pgbouncer")) as running:
        yield running


def buyer(n: int) -> str:
    return f"buyer{n}@example.com"


def abandoned_checkout(n: int) -> dict[str, Any]:
    """A distinct customer's checkout, with marketing consent given in it."""
    customer = payloads.checkout()["customer"] | {"id": 7000 + n, "email": buyer(n), "updated_at": STARTED}
    return payloads.checkout(
        f"ck-{n}",
        updated_at=STARTED,
        email=buyer(n),
        cart_token=f"cart-{n}",
        buyer_accepts_marketing=True,
        customer=customer,
    )


def post(base: str, topic: str, payload: dict[str, Any]) -> int:
    body = webhooks.encode(payload)
    with requests.Session() as http:
        return http.post(f"{base}/webhooks", data=body, headers=webhooks.headers(topic, body), timeout=30).status_code


@contextmanager
def web_server(database_url: str, log: Path, **env: str) -> Iterator[str]:
    """`chorus web` (gunicorn: 2 workers of 4 threads), as `tests/test_web_server.py` starts it."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*chorus_command(), "web"],
            env=process_env(database_url, PORT=str(port), WEB_CONCURRENCY="2", **env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chorus web did not start: {log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()


def worker_once(database_url: str, at: datetime, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*chorus_command(), "worker", "--once", "--now", at.isoformat()],
        env=process_env(database_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


class WorkerSlots:
    """Two `chorus worker --once` processes side by side, each started again when it exits, until `stop`; each
    slot's last run starts after `stop`, so it sees everything stored before."""

    def __init__(self, database_url: str, at: datetime, **env: str) -> None:
        self._run = lambda: worker_once(database_url, at, **env)
        self._stopping = threading.Event()
        self.results: list[subprocess.CompletedProcess[str]] = []
        self._threads = [threading.Thread(target=self._slot) for _ in range(2)]

    def __enter__(self) -> WorkerSlots:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _slot(self) -> None:
        while True:
            last = self._stopping.is_set()
            result = self._run()
            self.results.append(result)
            if last or result.returncode != 0:
                return

    def stop(self) -> list[subprocess.CompletedProcess[str]]:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=120)
        return self.results


def count_done(runtime: Runtime) -> int:
    with runtime.session() as session:
        return len(session.exec(select(WebhookEvent.id).where(WebhookEvent.status == EventStatus.DONE)).all())


def run_side_by_side(database_url: str, at: datetime, **env: str) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda _: worker_once(database_url, at, **env), range(2)))


def handled(results: list[subprocess.CompletedProcess[str]]) -> str:
    return "\n".join(f"exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()[-2000:]}" for r in results)


def describe_store(base: str) -> None:
    """The shop's profile (with the postal address marketing email needs) and catalogue, as webhooks."""
    profile = webhooks.fixture_json("app_uninstalled.json") | {
        "name": "Lumen Lamps",
        "updated_at": "2026-11-19T00:00:00Z",
    }
    assert post(base, "shop/update", profile) == 200
    assert post(base, "products/create", payloads.product(updated_at="2026-11-20T09:00:00Z")) == 200


def burst(base: str, runtime: Runtime) -> list[int]:
    """Waves of concurrent checkouts; once a worker has handled one of them, a last wave."""
    statuses: list[int] = []

    def wave() -> None:
        numbers = range(len(statuses), len(statuses) + WAVE)
        statuses.extend(clients.map(lambda n: post(base, "checkouts/create", abandoned_checkout(n)), numbers))

    with ThreadPoolExecutor(WAVE) as clients:
        while len(statuses) < CHECKOUTS - WAVE:
            wave()
            time.sleep(0.2)  # the workers' turn
        deadline = time.monotonic() + 30
        while count_done(runtime) <= 2:  # the shop's two events, then a checkout
            if time.monotonic() > deadline:
                pytest.fail("no worker handled a checkout during the burst")
            time.sleep(0.05)
        wave()
    return statuses


def pgbouncer_scenario(bouncer: PgBouncer, tmp_path: Path, **env: str) -> None:
    """The schema, then a concurrent burst of webhooks into gunicorn while two workers handle them, then the
    reminders: every event handled once, every reminder handed to the SMTP server once."""
    url = bouncer.url()
    upgrade = subprocess.run(
        [*chorus_command(), "db", "upgrade"], env=process_env(url, **env), capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with smtp_server() as smtp:
        mail = MAIL | {"SMTP_URL": smtp.url}
        runtime = Runtime.build(make_settings(url, **env, **mail), clock=FrozenClock(RECEIVED_AT))
        try:
            with runtime.session() as session, session.begin():
                shop = register_shop(
                    session, runtime.secret_box, webhooks.SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT
                )
                shop.policy = dict(ALL_DAY)
            # Journeys enter and wait (nothing is due yet); small batches commit while deliveries arrive.
            with WorkerSlots(url, BEFORE_DUE, **env, **mail, WORKER_BATCH_SIZE="5") as slots:
                with web_server(url, tmp_path / "web.log", **env) as base:
                    describe_store(base)
                    statuses = burst(base, runtime)
                entering = slots.stop()
            assert statuses == [200] * CHECKOUTS
            assert {r.returncode for r in entering} == {0}, handled(entering)
            sending = run_side_by_side(url, AFTER_DUE, **env, **mail)
            assert {r.returncode for r in sending} == {0}, handled(sending)

            db = Db(runtime)
            events = db.all(WebhookEvent)
            assert len(events) == CHECKOUTS + 2
            assert {(e.status, e.attempts) for e in events} == {(EventStatus.DONE, 1)}
            done = Counter(db.rows(select(EventAttempt.event_id).where(EventAttempt.outcome == "done")))
            assert sorted(done) == sorted(e.id for e in events if e.id is not None)
            assert set(done.values()) == {1}
            assert len(db.all(Journey)) == CHECKOUTS
            everyone = sorted(buyer(n) for n in range(CHECKOUTS))
            messages = db.all(Message)
            assert sorted(m.address for m in messages) == everyone
            assert {(m.status, m.attempts, m.step) for m in messages} == {("sent", 1, "reminder")}
            assert sorted(r for received in smtp.sink.received for r in received.recipients) == everyone
            with runtime.engine.connect() as connection:  # `chorus db upgrade` built the alias's schema
                assert connection.execute(text("SELECT current_schema()")).scalar_one() == bouncer.schema
                migrated = "SELECT to_regclass(:table) IS NOT NULL"
                assert connection.execute(text(migrated), {"table": f"{bouncer.schema}.alembic_version"}).scalar_one()
        finally:
            runtime.close()


@pytest.mark.slow
def test_web_and_workers_share_few_server_connections_through_pgbouncer(bouncer: PgBouncer, tmp_path: Path) -> None:
    pgbouncer_scenario(bouncer, tmp_path, **POOLED)

    [pool] = [p for p in bouncer.show("POOLS") if p["database"] == ALIAS]
    assert pool["pool_mode"] == "transaction"
    [stats] = [s for s in bouncer.show("STATS") if s["database"] == ALIAS]
    assert int(str(stats["total_xact_count"])) > CHECKOUTS  # it all went through PgBouncer


def count_shops(runtime: Runtime, times: int) -> None:
    for _ in range(times):  # separate transactions, all on one client connection
        with runtime.session() as session, session.begin():
            session.exec(select(Shop)).all()


@pytest.mark.parametrize("pooler", ["none", "pgbouncer"])
def test_prepared_statements_collide_on_a_shared_server_connection_unless_told(bouncer: PgBouncer, pooler: str) -> None:
    """Two processes' connections take turns on PgBouncer's one server connection of `SINGLE`: psycopg names its
    prepared statements `_pg3_0`, `_pg3_1`… per connection, so the second to prepare one finds the first's."""
    migrate.upgrade(with_pooler(bouncer.url(), "pgbouncer"))  # whichever test of the module runs first
    settings = make_settings(bouncer.url(SINGLE), DATABASE_POOLER=pooler)
    first, second = Runtime.build(settings), Runtime.build(settings)
    try:
        count_shops(first, 10)
        if pooler == "none":
            with pytest.raises(DBAPIError, match='prepared statement "_pg3_0" already exists'):
                count_shops(second, 10)
        else:
            count_shops(second, 10)
            count_shops(first, 10)
    finally:
        first.close()
        second.close()
