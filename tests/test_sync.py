"""The store sync: backfill over many pages (throttled, killed and resumed), bulk, and reconciliation."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from sqlalchemy import func
from sqlmodel import select

from shopify_app.clock import FrozenClock
from shopify_app.models import Customer, Job, Order, Product, Shop, SyncProgress, Variant
from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import admin_endpoint
from shopify_app.sync import BACKFILL, StoreSync
from shopify_app.worker import Worker
from tests.conftest import make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.fake_store import FakeStore, customer_node, order_node, product_node, serve
from tests.support.pipeline import deliver, process
from tests.support.webhooks import SHOP

ENDPOINT = admin_endpoint(f"https://shopify.test/{SHOP}", "2026-10")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def catalogue(products: int = 120, customers: int = 230, orders: int = 110) -> FakeStore:
    """Several pages of each: products and orders come 50 a page, customers 100."""
    return FakeStore(
        products=[
            product_node(i, title=f"Lamp {i}", updated_at="2026-11-01T00:00:00Z") for i in range(1, products + 1)
        ],
        customers=[customer_node(i, updated_at="2026-10-01T00:00:00Z") for i in range(1, customers + 1)],
        orders=[order_node(i, updated_at="2026-11-10T00:00:00Z", customer_id=i) for i in range(1, orders + 1)],
    )


def count(db: Db, model: type) -> int:
    [n] = db.rows(select(func.count()).select_from(model))
    return int(n)


class PatientClock:
    """Sleeping advances it; nothing else does. The waits are recorded instead of waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> PatientClock:
    return PatientClock()


@pytest.fixture
def access(runtime: Runtime, clock: PatientClock) -> ShopifyAccess:
    return ShopifyAccess(runtime, sleep=clock.sleep, monotonic=clock.monotonic)


def test_a_backfill_pages_through_everything_and_waits_out_a_throttled_answer(
    access: ShopifyAccess, shop: Shop, db: Db, clock: PatientClock
) -> None:
    store = catalogue()
    store.throttle_requests = {4}  # the profile, the count, page 1, then page 2 is refused once
    sync = StoreSync(access, page_budget=100)
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        result = sync.run_slice(shop.id or 0, BACKFILL, NOW)

    assert result.finished
    assert (count(db, Product), count(db, Variant), count(db, Customer), count(db, Order)) == (120, 120, 230, 110)
    assert clock.sleeps == [2.0]  # (502 requested - 302 available) / 100 restored per second
    products = store.operations("Products")
    assert [v["after"] for v in products] == [None, "cursor-50", "cursor-50", "cursor-100"]  # one retry
    assert products[0]["query"] is None  # every product, whatever its age
    [history] = {v["query"] for v in store.operations("Customers")}
    assert history == "updated_at:>='2025-11-20T12:00:00Z'"  # SYNC_HISTORY_DAYS back
    assert store.operations("Orders")[0]["query"] == "created_at:>='2025-11-20T12:00:00Z'"
    assert set(store.tokens) == {"shpat_test"}
    profile = db.one(Shop)
    assert profile.postal_address == "12 Harbor Street, Portland, ME 04101, United States"
    customer = db.one(Customer, Customer.customer_id == 7)
    assert (customer.email, customer.email_consent_state) == ("customer7@example.com", "subscribed")
    assert db.one(Variant, Variant.variant_id == 10).url == "https://lumen.example/products/lamp-1?variant=10"
    assert {(p.resource, p.synced, p.done) for p in db.all(SyncProgress)} == {
        ("profile", 1, True), ("products", 120, True), ("customers", 230, True), ("orders", 110, True),
    }  # fmt: skip


def test_a_slice_stops_at_its_budget_and_the_next_resumes(access: ShopifyAccess, shop: Shop, db: Db) -> None:
    store = catalogue()
    sync = StoreSync(access, page_budget=2)
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        first = sync.run_slice(shop.id or 0, BACKFILL, NOW)
        assert not first.finished
        assert count(db, Product) == 50  # the profile, then one page
        while not sync.run_slice(shop.id or 0, BACKFILL, NOW).finished:
            pass
    assert [v["after"] for v in store.operations("Products")] == [None, "cursor-50", "cursor-100"]
    assert count(db, Order) == 110


def test_the_worker_backfills_after_an_install(db_url: str, shop: Shop, db: Db) -> None:
    runtime = Runtime.build(make_settings(db_url, SYNC_ON_INSTALL="true"), clock=FrozenClock(NOW))
    store = catalogue(products=3, customers=2, orders=2)
    try:
        with responses.RequestsMock() as mock:
            store.install(mock, ENDPOINT)
            summary = Worker(runtime).run_once()  # the install job queues the sync, which then runs
    finally:
        runtime.close()
    assert summary.jobs.done == 2
    assert [(j.kind, j.status) for j in db.all(Job)] == [("install", "done"), ("sync", "done")]
    assert (count(db, Product), count(db, Customer), count(db, Order)) == (3, 2, 2)


@pytest.mark.slow
def test_a_sync_killed_midway_resumes_from_its_cursor(db_url: str, shop: Shop, db: Db, tmp_path: Path) -> None:
    store = catalogue()
    store.delay = 0.15
    for loopback in serve(store):
        env = process_env(db_url, SHOPIFY_ADMIN_BASE_URL=loopback.base_url)
        with (tmp_path / "sync.log").open("wb") as log:
            first = subprocess.Popen([*chorus_command(), "shops", "sync", SHOP], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while count(db, Product) < 50:
            assert first.poll() is None, (tmp_path / "sync.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        stored = db.one(SyncProgress, SyncProgress.resource == "products")
        assert not stored.done
        requests_before = len(store.requests)

        again = subprocess.run(
            [*chorus_command(), "shops", "sync", SHOP], env=env, capture_output=True, text=True, timeout=120
        )

    assert again.returncode == 0, again.stderr
    assert f"{SHOP}: backfill complete" in again.stdout
    resumed = [v for name, v in store.requests[requests_before:] if name == "Products"]
    assert resumed[0]["after"] == stored.cursor  # resumed, not restarted
    assert (count(db, Product), count(db, Customer), count(db, Order)) == (120, 230, 110)


def test_a_large_catalogue_comes_as_a_bulk_operation(db_url: str, shop: Shop, db: Db) -> None:
    runtime = Runtime.build(make_settings(db_url, SYNC_BULK_THRESHOLD="5"), clock=FrozenClock(NOW))
    store = catalogue(products=8, customers=1, orders=1)
    patient = PatientClock()
    sync = StoreSync(ShopifyAccess(runtime, sleep=patient.sleep, monotonic=patient.monotonic))
    try:
        with responses.RequestsMock() as mock:
            store.install(mock, ENDPOINT)
            mock.get("https://storage.test/bulk.jsonl", body=store.bulk_jsonl())
            started = sync.run_slice(shop.id or 0, BACKFILL, NOW)
            still_running = sync.run_slice(shop.id or 0, BACKFILL, NOW + timedelta(seconds=30))
            store.bulk.update(status="COMPLETED", url="https://storage.test/bulk.jsonl")
            finished = sync.run_slice(shop.id or 0, BACKFILL, NOW + timedelta(seconds=60))
    finally:
        runtime.close()
    assert (started.waiting, still_running.waiting, finished.finished) == (True, True, True)
    assert len(store.operations("RunBulkQuery")) == 1
    assert store.operations("Products") == []  # no paging: the bulk file had them all
    assert (count(db, Product), count(db, Variant)) == (8, 8)


def test_reconciliation_repairs_a_missed_update_and_never_rewinds_newer_data(
    db_url: str, runtime: Runtime, shop: Shop, db: Db
) -> None:
    # A finished backfill, then two orders known from webhooks.
    store = catalogue(products=1, customers=1, orders=0)
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        assert StoreSync(ShopifyAccess(runtime)).run_slice(shop.id or 0, BACKFILL, NOW).finished
    deliver(runtime, "orders/create", payloads.order(1, financial_status="pending", updated_at="2026-11-20T12:10:00Z"))
    deliver(
        runtime, "orders/updated", payloads.order(2, financial_status="refunded", updated_at="2026-11-20T12:40:00Z")
    )
    process(runtime)
    # Shopify now says: order 1 was paid (that webhook never came); order 2 as it was before the refund.
    store.orders = [
        order_node(1, updated_at="2026-11-20T12:30:00Z", status="PAID"),
        order_node(2, updated_at="2026-11-20T12:20:00Z", status="PAID"),
    ]
    an_hour_later = Runtime(
        runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(NOW + timedelta(minutes=61))
    )
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        summary = Worker(an_hour_later).run_once()

    assert summary.jobs.done == 2  # the shop's install job, and the reconciliation
    assert {o.order_id: o.financial_status for o in db.all(Order)} == {1: "paid", 2: "refunded"}
    assert db.one(Order, Order.order_id == 1).total_price == Decimal("25.00")
    [query] = {v["query"] for v in store.operations("Orders")[1:]}
    assert query == "updated_at:>='2026-11-20T11:55:00Z'"  # the last hour, and five minutes more
    assert [(j.kind, j.status) for j in db.all(Job)] == [("install", "done"), ("reconcile", "done")]
    assert Worker(an_hour_later).run_once().jobs.done == 0  # not due again within the hour


def test_sync_progress_is_shown_to_the_merchant(access: ShopifyAccess, app, shop: Shop) -> None:
    from tests.support.shopify_auth import bearer, session_token

    store = catalogue(products=60, customers=1, orders=1)
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        StoreSync(access, page_budget=2).run_slice(shop.id or 0, BACKFILL, NOW)
    body = app.test_client().get("/api/shop", headers=bearer(session_token(SHOP))).json
    assert {k: (v["synced"], v["done"]) for k, v in body["sync"].items()} == {
        "profile": (1, True), "products": (50, False), "customers": (0, False), "orders": (0, False),
    }  # fmt: skip


def test_the_sync_brings_product_type_vendor_fulfilment_consent_and_last_order_times(
    access: ShopifyAccess, shop: Shop, db: Db
) -> None:
    store = FakeStore(
        products=[
            product_node(1, title="Desk Lamp", updated_at="2026-11-01T00:00:00Z", product_type="Lamps", vendor="Lumen"),
            product_node(2, title="Bulb", updated_at="2026-11-01T00:00:00Z"),  # no type: Shopify says ""
        ],
        customers=[customer_node(i, updated_at="2026-10-01T00:00:00Z") for i in (1, 2)],
        orders=[
            order_node(
                1, customer_id=1, created_at="2026-11-10T12:00:00Z", updated_at="2026-11-14T00:00:00Z",
                fulfillment_status="FULFILLED", accepts_marketing=True,
                fulfilled=["2026-11-12T10:00:00Z", "2026-11-13T10:00:00-05:00", "2026-11-11T10:00:00Z"],
            ),
            order_node(2, customer_id=2, updated_at="2026-11-15T00:00:00Z", fulfillment_status="PARTIALLY_FULFILLED",
                       fulfilled=["2026-11-15T00:00:00Z"]),
            order_node(3, customer_id=1, created_at="2026-11-05T12:00:00Z", updated_at="2026-11-16T00:00:00Z"),
            order_node(4, customer_id=1, created_at="2026-11-18T12:00:00Z", updated_at="2026-11-18T13:00:00Z",
                       cancelled_at="2026-11-18T13:00:00Z"),
        ],
    )  # fmt: skip
    with responses.RequestsMock() as mock:
        store.install(mock, ENDPOINT)
        assert StoreSync(access).run_slice(shop.id or 0, BACKFILL, NOW).finished

    products = {p.product_id: (p.product_type, p.vendor) for p in db.all(Product)}
    assert products == {1: ("Lamps", "Lumen"), 2: (None, "Lumen Lamps")}
    orders = {o.order_id: o for o in db.all(Order)}
    assert (orders[1].fulfillment_status, orders[1].fulfilled_at) == (
        "fulfilled", datetime(2026, 11, 13, 15, 0, tzinfo=UTC),
    )  # fmt: skip
    assert orders[1].buyer_accepts_marketing is True
    assert (orders[2].fulfillment_status, orders[2].fulfilled_at) == ("partially_fulfilled", None)  # not yet whole
    assert orders[2].buyer_accepts_marketing is False
    last_orders = {c.customer_id: c.last_order_at for c in db.all(Customer)}
    # Customer 1: the order of 10 November; the older one does not move it back, the cancelled one does not count.
    assert last_orders == {1: datetime(2026, 11, 10, 12, 0, tzinfo=UTC), 2: datetime(2026, 11, 15, 0, 0, tzinfo=UTC)}
