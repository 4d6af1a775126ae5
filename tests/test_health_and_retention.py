from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskClient

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.events.processor import EventProcessor
from shopify_app.events.registry import HANDLERS
from shopify_app.events.retention import purge_raw_bodies
from shopify_app.models import EventStatus, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import deliver


def test_health_reports_a_reachable_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok", "database": "ok"})


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'chorus.db'}"
    runtime = Runtime.build(make_settings(url))
    response = create_app(runtime).test_client().get("/healthz")
    runtime.close()
    assert (response.status_code, response.json) == (503, {"status": "unavailable", "database": "unreachable"})


def test_raw_bodies_are_purged_after_the_retention_period_unless_still_queued(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    deliver(runtime, "orders/create", payloads.order(1))
    deliver(runtime, "orders/create", payloads.order(2))
    # One batch of one: the first is handled, the second still waits (e.g. a busy worker).
    EventProcessor(runtime.engine, HANDLERS, batch_size=1).process_batch(RECEIVED_AT)
    retention = timedelta(days=runtime.settings.raw_body_retention_days)

    with db.write() as session:
        assert purge_raw_bodies(session, RECEIVED_AT + retention - timedelta(seconds=1), retention) == 0
    with db.write() as session:
        assert purge_raw_bodies(session, RECEIVED_AT + retention + timedelta(seconds=1), retention) == 1

    handled, queued = db.all(WebhookEvent)
    assert (handled.status, handled.body, handled.body_purged_at) == (
        EventStatus.DONE, None, RECEIVED_AT + retention + timedelta(seconds=1),
    )  # fmt: skip
    assert queued.body is not None


def test_the_worker_run_purges_old_bodies(runtime: Runtime, shop: Shop, db: Db) -> None:
    from shopify_app.worker import Worker

    deliver(runtime, "orders/create", payloads.order(1))
    later = Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(RECEIVED_AT + timedelta(days=31)))

    summary = Worker(later).run_once()

    assert (summary.events.done, summary.bodies_purged) == (1, 1)
    assert db.one(WebhookEvent).body is None
