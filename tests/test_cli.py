"""The `chorus` command as an operator uses it."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect

from shopify_app.crypto import SecretBox
from shopify_app.db.engine import make_engine
from shopify_app.models import EventStatus, Order, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support import payloads
from tests.support.db import Db
from tests.support.env import ENCRYPTION_KEY, chorus_command, process_env
from tests.support.pipeline import deliver


def chorus(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*chorus_command(), *args], env=process_env(database_url, **env), capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = chorus(url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    engine = make_engine(url)
    with engine.connect() as connection:
        assert {"shops", "webhook_events", "orders"} <= set(inspect(connection).get_table_names())
    engine.dispose()


def test_shops_add_stores_the_token_encrypted_and_updates_on_repeat(db_url: str, db: Db) -> None:
    first = chorus(db_url, "shops", "add", "Acme.myshopify.com", "--token", "shpat_first")
    again = chorus(db_url, "shops", "add", "acme.myshopify.com", "--token", "shpat_second", "--webhook-secret", "whsec")

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    shop = db.one(Shop)
    assert shop.domain == "acme.myshopify.com"
    assert shop.access_token_ciphertext is not None
    assert "shpat_second" not in shop.access_token_ciphertext
    box = SecretBox((ENCRYPTION_KEY,))
    assert box.decrypt(shop.access_token_ciphertext) == "shpat_second"
    assert shop.webhook_secret_ciphertext is not None
    assert box.decrypt(shop.webhook_secret_ciphertext) == "whsec"
    assert "acme.myshopify.com\tinstalled" in chorus(db_url, "shops", "list").stdout


def test_shops_add_refuses_what_is_not_a_shop_domain(db_url: str, db: Db) -> None:
    for bad in (
        "acme",
        "acme.example.com",
        "https://acme.myshopify.com/admin",
        "acme-.myshopify.com",
        "ac_me.myshopify.com",
    ):
        result = chorus(db_url, "shops", "add", bad, "--token", "t")
        assert result.returncode == 2, bad
        assert "is not a shop domain" in result.stderr
    assert db.all(Shop) == []


def test_worker_once_with_a_frozen_clock_handles_everything_then_exits(
    db_url: str, runtime: Runtime, shop: Shop, db: Db
) -> None:
    deliver(runtime, "orders/create", payloads.order(1001))
    deliver(runtime, "orders/create", {"no": "id"})

    result = chorus(db_url, "worker", "--once", "--now", "2026-12-01T08:30:00+01:00")

    assert result.returncode == 0, result.stderr  # a parked event is not a process failure
    assert "events: 1 handled, 0 to retry later, 1 parked" in result.stdout
    handled, parked = db.all(WebhookEvent)
    assert handled.processed_at == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    assert parked.status == EventStatus.PARKED
    assert [o.order_id for o in db.all(Order)] == [1001]


def test_events_list_shows_parked_events_and_replay_requeues_them(
    db_url: str, runtime: Runtime, shop: Shop, db: Db
) -> None:
    deliver(runtime, "orders/create", {"no": "id"})
    chorus(db_url, "worker", "--once")

    listing = chorus(db_url, "events", "list", "--status", "parked")
    replay = chorus(db_url, "events", "replay")

    assert "orders/create\tparked\tattempts=1\tPermanentEventError: payload has no 'id'" in listing.stdout
    assert replay.stdout.strip() == "1 event(s) re-queued"
    assert (db.one(WebhookEvent).status, db.one(WebhookEvent).attempts) == (EventStatus.PENDING, 0)


def test_worker_refuses_now_without_once(db_url: str) -> None:
    result = chorus(db_url, "worker", "--now", "2026-12-01T00:00:00Z")
    assert result.returncode == 2
    assert "--now goes with --once" in result.stderr


def test_keys_generate_prints_a_usable_key() -> None:
    result = subprocess.run([*chorus_command(), "keys", "generate"], capture_output=True, text=True, check=True)
    SecretBox((result.stdout.strip(),)).encrypt("works")
