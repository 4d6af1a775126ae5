"""An operator's own flows, from `FLOWS_DIR`: a new flow made only of existing predicates and contents runs
end to end without an engine change, a file named like a shipped flow replaces it, and a bad file stops the
worker before it does anything."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col

from shopify_app.clock import FrozenClock
from shopify_app.journeys.tuning import configure
from shopify_app.models import Decision, Journey, Message, Shop
from shopify_app.runtime import Runtime
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.pipeline import deliver
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import abandon, describe_store, run_worker, shop_id

smtp = checkout_flow.smtp  # the abandoned checkout tests' loopback SMTP server (a fixture)

SHIPPED_THANKS = """
# Thanks only for what was shipped within three days of payment.
name = "shipped_thanks"
description = "A thank-you three days after payment, if the order has shipped by then."
subject = "order"
goals = ["order_cancelled", "unsubscribed"]

[trigger]
event = "order_paid"

[[steps]]
id = "settle"
kind = "wait"
wait = { anchor = "entry", delay = "3d" }

[[steps]]
id = "shipped"
kind = "branch"
predicate = "order_fulfilled"
then = "thanks"
else = "stop"

[[steps]]
id = "stop"
kind = "exit"

[[steps]]
id = "thanks"
kind = "send"
content = "post_purchase.thank_you"
channels = ["email"]
"""

ONE_QUICK_REMINDER = """
name = "abandoned_checkout"
description = "One reminder, half an hour after the checkout's last change."
subject = "checkout"
max_age = "2d"
goals = ["order_placed", "checkout_completed", "unsubscribed"]

[trigger]
event = "checkout_changed"

[[steps]]
id = "reminder"
kind = "send"
content = "abandoned_checkout.reminder"
channels = ["email"]
wait = { anchor = "fact", fact = "checkout.updated_at", delay = "30m", max = "2d" }
"""

PAID = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    return folder


@pytest.fixture
def own_runtime(db_url: str, smtp: SmtpServer, flows_dir: Path, shop: Shop) -> Iterator[Callable[[], Runtime]]:
    """The deployment with the operator's folder; built after the test wrote its files there."""
    runtimes: list[Runtime] = []

    def build() -> Runtime:
        settings = make_settings(
            db_url, FLOWS_DIR=str(flows_dir), SMTP_URL=smtp.url, EMAIL_FROM="reminders@mail.chorus.example"
        )
        runtimes.append(Runtime.build(settings, clock=FrozenClock(RECEIVED_AT)))
        describe_store(runtimes[-1])
        return runtimes[-1]

    yield build
    for runtime in runtimes:
        runtime.close()


def paid_order(order_id: int, email: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": f"#{order_id}",
        "email": email,
        "customer": {"id": order_id, "email": email, "first_name": email.split("@")[0].title()},
        "buyer_accepts_marketing": True,
        "financial_status": "paid",
        "fulfillment_status": None,
        "fulfillments": [],
        "cancelled_at": None,
        "created_at": "2026-11-20T09:55:00Z",
        "updated_at": "2026-11-20T10:00:00Z",
        "line_items": [
            {"variant_id": 808950810, "product_id": 632910392, "title": "IPod Nano - 8GB", "quantity": 1,
             "price": "199.00"},
        ],
    }  # fmt: skip
    fields.update(changes)
    return payloads.order(order_id, **fields)


def test_a_flow_of_existing_parts_runs_end_to_end(
    own_runtime: Callable[[], Runtime], smtp: SmtpServer, db: Db, flows_dir: Path
) -> None:
    (flows_dir / "shipped_thanks.toml").write_text(SHIPPED_THANKS)
    runtime = own_runtime()
    assert "shipped_thanks" in runtime.flows
    with db.write() as session:  # only the operator's flow is followed here
        configure(session, shop_id(db), runtime.flows, "post_purchase", enabled=False, now=RECEIVED_AT)
    for order_id, email in ((1001, "ada@example.com"), (1002, "grace@example.com")):
        deliver(runtime, "orders/paid", paid_order(order_id, email), triggered_at=PAID.isoformat())
    run_worker(runtime, PAID + timedelta(minutes=5))
    shipped_at = "2026-11-21T10:00:00Z"
    shipped = paid_order(
        1001,
        "ada@example.com",
        fulfillment_status="fulfilled",
        updated_at=shipped_at,
        fulfillments=[{"id": 1, "status": "success", "created_at": shipped_at}],
    )
    deliver(runtime, "orders/fulfilled", shipped, triggered_at=shipped_at)

    early = run_worker(runtime, PAID + timedelta(days=3) - timedelta(minutes=1))
    due = run_worker(runtime, PAID + timedelta(days=3, minutes=1))

    assert (early.journeys.sent, due.journeys.sent) == (0, 1)
    [thanks] = smtp.sink.received
    assert thanks.recipients == ["ada@example.com"]
    assert thanks.parsed()["Subject"] == "Thank you for your order #1001"
    assert "- IPod Nano - 8GB (Pink) x 1: $199.00 each" in thanks.part("text/plain")
    journeys = {j.subject: j for j in db.all(Journey)}
    assert set(journeys) == {"1001", "1002"}
    assert {j.flow for j in journeys.values()} == {"shipped_thanks"}
    shipped_journey, unshipped = journeys["1001"], journeys["1002"]
    assert (shipped_journey.state, shipped_journey.reason) == ("done", "completed")
    assert shipped_journey.performed == {"settle": "waited", "shipped": "branched", "thanks": "sent"}
    assert (unshipped.state, unshipped.step, unshipped.reason) == ("done", "stop", "exit")

    def decided(journey: Journey) -> list[tuple[str | None, str, str, dict[str, Any]]]:
        found = db.all(
            Decision, Decision.journey_id == journey.id, col(Decision.outcome).in_(["branched", "completed"])
        )
        return [(d.step, d.outcome, d.reason, d.detail) for d in found]

    assert decided(shipped_journey) == [
        ("shipped", "branched", "branch_yes", {"predicate": "order_fulfilled", "to": "thanks"}),
        (None, "completed", "completed", {}),
    ]
    assert decided(unshipped) == [
        ("shipped", "branched", "branch_no", {"predicate": "order_fulfilled", "to": "stop"}),
        ("stop", "completed", "exit", {}),
    ]
    assert [m.flow for m in db.all(Message)] == ["shipped_thanks"]


def test_a_file_named_like_a_shipped_flow_replaces_it(
    own_runtime: Callable[[], Runtime], smtp: SmtpServer, db: Db, flows_dir: Path
) -> None:
    (flows_dir / "abandoned_checkout.toml").write_text(ONE_QUICK_REMINDER)
    runtime = own_runtime()
    flow = runtime.flows["abandoned_checkout"]
    assert flow.description == "One reminder, half an hour after the checkout's last change."
    assert [s.id for s in flow.steps] == ["reminder"]
    abandon(runtime)  # last changed at 10:00

    sent = [run_worker(runtime, datetime(2026, 11, 20, 10, m, tzinfo=UTC)).journeys.sent for m in (29, 31)] + [
        run_worker(runtime, datetime(2026, 11, 22, 12, 0, tzinfo=UTC)).journeys.sent
    ]

    assert sent == [0, 1, 0]  # half an hour, not one; and no second reminder
    [received] = smtp.sink.received
    assert received.parsed()["Subject"] == "John, you left something at Lumen Lamps"
    journey = db.one(Journey, Journey.flow == "abandoned_checkout")
    assert (journey.state, journey.reason, journey.performed) == ("done", "completed", {"reminder": "sent"})


@pytest.mark.slow
def test_a_bad_file_stops_the_worker_naming_the_file_and_the_field(db_url: str, flows_dir: Path) -> None:
    (flows_dir / "shipped_thanks.toml").write_text(SHIPPED_THANKS.replace("post_purchase.thank_you", "thanks.note"))

    result = subprocess.run(
        [*chorus_command(), "worker", "--once", "--now", PAID.isoformat()],
        env=process_env(db_url, FLOWS_DIR=str(flows_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert f"{flows_dir / 'shipped_thanks.toml'}: steps[3].content: unknown content 'thanks.note'" in result.stderr
    assert result.stdout == ""
