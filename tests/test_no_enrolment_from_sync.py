"""What the store sync brings (the backfill after an install, the periodic reconciliation) is history: it fills
the mirror but enrols nobody in any flow and sends nothing. The same facts arriving as webhooks do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from shopify_app.clock import FrozenClock
from shopify_app.models import Customer, Decision, Job, Journey, Message, Order, Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.admin_api import admin_endpoint
from shopify_app.worker import RunSummary, Worker
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.fake_store import FakeStore, customer_node, iso, order_node, product_node
from tests.support.pipeline import deliver
from tests.support.smtp import SmtpServer
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import describe_store

smtp = checkout_flow.smtp  # the abandoned checkout tests' loopback SMTP server (a fixture)
ENDPOINT = admin_endpoint(f"https://shopify.test/{SHOP}", "2026-10")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the shop installed two hours ago
YESTERDAY = iso(NOW - timedelta(days=1))
JUNE = "2026-06-01T10:00:00Z"  # Linus's last order (and change): within the backfill's year of history
# Ada and Grace subscribed yesterday; Grace's order was paid an hour ago; Linus last ordered in June.
ADA, GRACE, LINUS, HEDY = 11, 12, 13, 14
LATER = [NOW + timedelta(days=1), NOW + timedelta(days=3), NOW + timedelta(days=8)]  # when every flow had spoken


def fake_store() -> FakeStore:
    return FakeStore(
        products=[product_node(1, title="Lamp", updated_at="2026-11-01T00:00:00Z")],
        customers=[
            customer_node(ADA, updated_at=YESTERDAY),
            customer_node(GRACE, updated_at=YESTERDAY),
            customer_node(LINUS, updated_at=JUNE),
        ],
        orders=[
            order_node(2001, updated_at=iso(NOW - timedelta(hours=1)), customer_id=GRACE),
            order_node(2002, updated_at=JUNE, customer_id=LINUS),
        ],
    )


@pytest.fixture
def syncing(db_url: str, smtp: SmtpServer, shop: Shop) -> Iterator[Runtime]:
    """A deployment that backfills the store after an install and can send email."""
    settings = make_settings(
        db_url, SYNC_ON_INSTALL="true", SMTP_URL=smtp.url, EMAIL_FROM="reminders@mail.chorus.example"
    )
    runtime = Runtime.build(settings, clock=FrozenClock(NOW))
    yield runtime
    runtime.close()


def run_worker(runtime: Runtime, at: datetime, store: FakeStore | None = None) -> RunSummary:
    """The worker at `at`, with Shopify's Admin API answered by `store` (the sync and its reconciliations)."""
    at_runtime = Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(at))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        (store or FakeStore()).install(mock, ENDPOINT)
        return Worker(at_runtime).run_once()


def test_the_backfill_and_reconciliations_enrol_nobody(syncing: Runtime, smtp: SmtpServer, db: Db, shop: Shop) -> None:
    store = fake_store()
    installed = run_worker(syncing, NOW, store)
    assert installed.jobs.done == 2  # the install, then the backfill it queued
    assert {c.customer_id: c.email_consent_state for c in db.all(Customer)} == {
        ADA: "subscribed", GRACE: "subscribed", LINUS: "subscribed",
    }  # fmt: skip
    assert {o.order_id: o.financial_status for o in db.all(Order)} == {2001: "paid", 2002: "paid"}
    assert db.one(Customer, Customer.customer_id == LINUS).last_order_at == datetime(2026, 6, 1, 10, tzinfo=UTC)

    # What the reconciliation then finds: Hedy subscribed and Ada paid an order, and no webhook said so.
    store.customers.append(customer_node(HEDY, updated_at=iso(NOW + timedelta(minutes=30))))
    store.orders.append(order_node(2003, updated_at=iso(NOW + timedelta(minutes=40)), customer_id=ADA))
    reconciled = run_worker(syncing, NOW + timedelta(minutes=61), store)
    assert [(j.kind, j.status) for j in db.all(Job)][-1] == ("reconcile", "done")
    assert reconciled.jobs.done == 1
    assert db.one(Customer, Customer.customer_id == HEDY).email_consent_state == "subscribed"
    assert db.one(Order, Order.order_id == 2003).financial_status == "paid"

    # Days pass: the lapse sweeps run too, and Linus lapsed long before the install.
    summaries = [run_worker(syncing, at, store) for at in LATER]

    assert [s.lapsed for s in summaries] == [0, 0, 0]
    assert (db.all(Journey), db.all(Decision), db.all(Message)) == ([], [], [])
    assert smtp.sink.received == []


def test_a_webhook_about_a_customer_the_sync_found_subscribed_is_no_first_subscription(
    syncing: Runtime, smtp: SmtpServer, db: Db
) -> None:
    run_worker(syncing, NOW, fake_store())
    update = payloads.customer(
        ADA,
        email=f"customer{ADA}@example.com",
        first_name="Ada",
        updated_at=iso(NOW + timedelta(minutes=10)),
        email_marketing_consent={
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": YESTERDAY,
        },
    )
    deliver(syncing, "customers/update", update, triggered_at=iso(NOW + timedelta(minutes=10)))

    run_worker(syncing, NOW + timedelta(minutes=15))

    assert db.all(Journey) == []
    assert smtp.sink.received == []


def test_the_same_facts_as_webhooks_enrol(syncing: Runtime, smtp: SmtpServer, db: Db) -> None:
    describe_store(syncing)
    told = iso(NOW - timedelta(minutes=30))

    def customer(customer_id: int, name: str, subscribed_at: str) -> dict[str, Any]:
        consent = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": subscribed_at}
        return payloads.customer(
            customer_id, email=f"customer{customer_id}@example.com", first_name=name, updated_at=subscribed_at,
            email_marketing_consent=consent,
        )  # fmt: skip

    for customer_id, name, subscribed_at in ((ADA, "Ada", YESTERDAY), (GRACE, "Grace", YESTERDAY)):
        deliver(syncing, "customers/create", customer(customer_id, name, subscribed_at), triggered_at=told)
    deliver(syncing, "customers/create", customer(LINUS, "Linus", JUNE), triggered_at=told)
    for order_id, customer_id, at, topic in (
        (2001, GRACE, iso(NOW - timedelta(hours=1)), "orders/paid"),
        (2002, LINUS, JUNE, "orders/updated"),
    ):
        email = f"customer{customer_id}@example.com"
        paid = payloads.order(
            order_id, email=email, customer={"id": customer_id, "email": email}, financial_status="paid",
            cancelled_at=None, buyer_accepts_marketing=True, created_at=at, updated_at=at,
        )  # fmt: skip
        deliver(syncing, topic, paid, triggered_at=told)
    # Checkouts are never synced: only their webhooks tell of them.
    checkout = payloads.checkout(
        "ck-ada", email=f"customer{ADA}@example.com", customer={"id": ADA}, buyer_accepts_marketing=True,
        updated_at=iso(NOW - timedelta(minutes=20)),
    )  # fmt: skip
    deliver(syncing, "checkouts/create", checkout, triggered_at=told)

    summaries = [run_worker(syncing, at) for at in (NOW, *LATER)]

    assert sorted((j.flow, j.subject) for j in db.all(Journey)) == [
        ("abandoned_checkout", "ck-ada"),
        ("post_purchase", "2001"),
        ("welcome", str(ADA)),
        ("welcome", str(GRACE)),
    ]  # and no winback: Linus lapsed before the install either way
    assert [s.lapsed for s in summaries] == [0, 0, 0, 0]
    assert summaries[0].journeys.sent == 3  # two welcomes and a thank-you; the reminder is due an hour on
    assert {m.flow for m in db.all(Message)} == {"welcome", "post_purchase", "abandoned_checkout"}
    assert len(smtp.sink.received) == len(db.all(Message))
