"""The post-purchase flow end to end: an order is paid and shipped (signed webhooks), the worker runs over the
following weeks, and the thanks, the review request and the related products come back from a real SMTP
server, unless the order is cancelled or refunded, or the customer withdraws consent, in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from shopify_app.models import Decision, Journey, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import admin_endpoint
from shopify_app.sync import RECONCILE, StoreSync
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.fake_store import FakeStore, iso, order_node
from tests.support.journeys import flow_decisions, followed, subjects, withdraw_email_consent
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import chorus_once, describe_store, run_worker

# The abandoned checkout tests' fixtures: a loopback SMTP server, the runtime sending to it.
mail_runtime, smtp = checkout_flow.mail_runtime, checkout_flow.smtp

ADA = 501
ORDER = 9042
PAID = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FIRST_RUN = PAID + timedelta(minutes=5)
FULFILLED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
REVIEW_DUE = FULFILLED + timedelta(days=7)
CROSS_SELL_DUE = FULFILLED + timedelta(days=21)
MINUTE = timedelta(minutes=1)
CATALOGUE_AT = "2026-11-01T00:00:00Z"

# (product id, title, product type, vendor, price, stock, status): the desk lamp is what Ada buys.
PRODUCTS = [
    (10, "Aurora Desk Lamp", "Lamps", "Lumen Works", "89.00", 5, "active"),
    (20, "Amber Lamp", "Lamps", "Lumen Works", "59.00", 5, "active"),  # bought in an earlier order
    (30, "Beacon Floor Lamp", "Lamps", "Northlight", "120.00", 3, "active"),
    (40, "Candle Lamp", "Lamps", "Northlight", "45.00", 7, "active"),  # its price drops to 39.00
    (50, "Dusk Lamp", "Lamps", "Northlight", "70.00", 0, "active"),  # sold out
    (60, "Ember Lamp", "Lamps", "Northlight", "80.00", 4, "draft"),  # not on sale
    (70, "Brass Bulb", "Lighting parts", "Lumen Works", "9.00", 40, "active"),  # same vendor
    (80, "Zinc Shade", "Lighting parts", "Lumen Works", "29.00", 12, "active"),  # same vendor, fourth
    (90, "Garden Hose", "Garden", "Hoseworks", "25.00", 9, "active"),  # unrelated
]


def product(product_id: int, *, price: str | None = None, stock: int | None = None, at: str = CATALOGUE_AT) -> Any:
    _id, title, product_type, vendor, listed, in_stock, status = next(p for p in PRODUCTS if p[0] == product_id)
    variant = payloads.variant(
        product_id * 100 + 1,
        product_id=product_id,
        price=price or listed,
        inventory_quantity=in_stock if stock is None else stock,
        title="Default Title",
        updated_at=at,
    )
    return payloads.product(
        product_id,
        title=title,
        handle=title.lower().replace(" ", "-"),
        product_type=product_type,
        vendor=vendor,
        status=status,
        updated_at=at,
        variants=[variant],
        image={"id": product_id, "src": f"https://cdn.shopify.com/s/files/{product_id}.png"},
        images=[],
    )


@pytest.fixture
def store(mail_runtime: Runtime, shop: Shop) -> Runtime:
    describe_store(mail_runtime)
    for product_id, *_rest in PRODUCTS:
        deliver(mail_runtime, "products/create", product(product_id))
    earlier = order(
        8001,
        created="2026-06-01T12:00:00Z",
        line_items=[line(20, "59.00")],
        financial_status="paid",
    )
    deliver(mail_runtime, "orders/create", earlier, triggered_at="2026-06-01T12:00:00Z")
    return mail_runtime


def line(product_id: int, price: str, quantity: int = 1) -> dict[str, Any]:
    title = next(p[1] for p in PRODUCTS if p[0] == product_id)
    return {
        "variant_id": product_id * 100 + 1,
        "product_id": product_id,
        "title": title,
        "quantity": quantity,
        "price": price,
    }


GIFT_WRAP = {"variant_id": None, "product_id": None, "title": "Gift wrap", "quantity": 1, "price": "5.00"}


def order(order_id: int = ORDER, *, created: str = "2026-11-20T09:55:00Z", **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": f"#{order_id}",
        "email": "ada@example.com",
        "customer": {"id": ADA, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
        "buyer_accepts_marketing": True,
        "financial_status": "paid",
        "fulfillment_status": None,
        "fulfillments": [],
        "cancelled_at": None,
        "cancel_reason": None,
        "currency": "USD",
        "created_at": created,
        "processed_at": created,
        "updated_at": created,
        "line_items": [line(10, "89.00", quantity=2), GIFT_WRAP],
    }
    fields.update(changes)
    return payloads.order(order_id, **fields)


def pay(runtime: Runtime) -> None:
    deliver(runtime, "orders/paid", order(updated_at=iso(PAID)), triggered_at=iso(PAID))


def fulfil(runtime: Runtime) -> None:
    shipment = [{"id": 1, "status": "success", "created_at": iso(FULFILLED)}]
    shipped = order(fulfillment_status="fulfilled", updated_at=iso(FULFILLED), fulfillments=shipment)
    deliver(runtime, "orders/fulfilled", shipped, triggered_at=iso(FULFILLED))


def test_thanks_then_a_review_request_and_related_products_after_shipping(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    pay(store)
    assert run_worker(store, FIRST_RUN).journeys.sent == 1

    [thanks] = smtp.sink.received
    assert thanks.recipients == ["ada@example.com"]
    assert thanks.parsed()["Subject"] == f"Thank you for your order #{ORDER}"
    text, html = thanks.part("text/plain"), thanks.part("text/html")
    assert text.startswith("Hi Ada,")
    assert f"Thank you for shopping at Lumen Lamps. Here is what you chose (order #{ORDER}):" in text
    # Every line, at what was paid for it.
    assert (
        "- Aurora Desk Lamp x 2: $89.00 each <https://acme.myshopify.com/products/aurora-desk-lamp?variant=1001>"
        in followed(db, text)
    )
    assert "- Gift wrap x 1: $5.00 each" in text
    assert 'src="https://cdn.shopify.com/s/files/10.png"' in html

    # Not shipped yet: the review request waits for the fulfilment, however long the worker looks.
    assert run_worker(store, PAID + timedelta(days=1)).journeys.sent == 0
    fulfil(store)
    assert run_worker(store, REVIEW_DUE - MINUTE).journeys.sent == 0
    assert run_worker(store, REVIEW_DUE + MINUTE).journeys.sent == 1
    review = smtp.sink.received[1]
    assert review.parsed()["Subject"] == "How do you like it, Ada?"
    text = review.part("text/plain")
    assert f"Your order #{ORDER} arrived a week ago." in text
    assert "Aurora Desk Lamp x 2" in text
    assert "Gift wrap" not in text  # nothing to review: it has no product page

    # Before the related products are due, a lamp gets cheaper and another sells out.
    deliver(store, "products/update", product(40, price="39.00", at="2026-12-01T00:00:00Z"))
    deliver(store, "products/update", product(30, stock=0, at="2026-12-02T00:00:00Z"))
    assert run_worker(store, CROSS_SELL_DUE - MINUTE).journeys.sent == 0
    assert run_worker(store, CROSS_SELL_DUE + MINUTE).journeys.sent == 1
    related = smtp.sink.received[2]
    assert related.recipients == ["ada@example.com"]
    assert related.parsed()["Subject"] == "Picked for you at Lumen Lamps"
    listed = [row for row in followed(db, related.part("text/plain")).splitlines() if row.startswith("- ")]
    # Same type first, then same vendor; in stock, on sale, not bought before; three at most; today's prices.
    assert listed == [
        "- Candle Lamp x 1: $39.00 each <https://acme.myshopify.com/products/candle-lamp>",
        "- Brass Bulb x 1: $9.00 each <https://acme.myshopify.com/products/brass-bulb>",
        "- Zinc Shade x 1: $29.00 each <https://acme.myshopify.com/products/zinc-shade>",
    ]

    assert run_worker(store, CROSS_SELL_DUE + timedelta(days=30)).journeys.sent == 0
    assert [m.step for m in db.all(Message)] == ["thank_you", "review_request", "cross_sell"]
    journey = db.one(Journey, Journey.flow == "post_purchase")
    assert (journey.subject, journey.state, journey.reason) == (str(ORDER), "done", "completed")
    sent = [d for d in db.all(Decision, Decision.flow == "post_purchase") if d.outcome == "sending"]
    assert [i["title"] for i in sent[2].detail["items"]] == ["Candle Lamp", "Brass Bulb", "Zinc Shade"]


@pytest.mark.parametrize("change", ["cancelled", "refunded"])
def test_a_cancelled_or_refunded_order_ends_the_journey_when_it_is_handled(
    store: Runtime, smtp: SmtpServer, db: Db, change: str
) -> None:
    pay(store)
    run_worker(store, FIRST_RUN)
    fulfil(store)
    run_worker(store, FULFILLED + MINUTE)
    at = FULFILLED + timedelta(days=3)
    if change == "cancelled":
        cancelled = order(updated_at=iso(at), cancelled_at=iso(at), cancel_reason="customer", financial_status="voided")
        deliver(store, "orders/cancelled", cancelled, triggered_at=iso(at))
    else:
        deliver(store, "orders/updated", order(updated_at=iso(at), financial_status="refunded"), triggered_at=iso(at))

    process(store, at + MINUTE)  # only the webhook is handled

    journey = db.one(Journey, Journey.flow == "post_purchase")
    assert (journey.state, journey.step, journey.due_at) == ("done", "review_request", None)
    assert flow_decisions(db, "post_purchase")[-1] == ("review_request", "exited", f"order_{change}")
    assert [run_worker(store, t).journeys.sent for t in (REVIEW_DUE + MINUTE, CROSS_SELL_DUE + MINUTE)] == [0, 0]
    assert subjects(smtp) == [f"Thank you for your order #{ORDER}"]


def test_consent_withdrawn_between_steps_stops_the_rest(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    pay(store)
    run_worker(store, FIRST_RUN)
    fulfil(store)
    run_worker(store, REVIEW_DUE + MINUTE)
    withdrawn = REVIEW_DUE + timedelta(days=2)
    withdraw_email_consent(store, ADA, "ada@example.com", withdrawn)
    run_worker(store, CROSS_SELL_DUE + MINUTE)

    assert subjects(smtp) == [f"Thank you for your order #{ORDER}", "How do you like it, Ada?"]
    assert flow_decisions(db, "post_purchase")[-1] == ("cross_sell", "exited", "consent_withdrawn")
    assert db.one(Journey, Journey.flow == "post_purchase").state == "done"


@pytest.mark.slow
def test_chorus_worker_once_sends_the_thanks(db_url: str, store: Runtime, smtp: SmtpServer, db: Db) -> None:
    pay(store)
    env = {"SMTP_URL": smtp.url, "EMAIL_FROM": "reminders@mail.chorus.example"}

    output = chorus_once(db_url, FIRST_RUN.isoformat(), env)

    assert "messages: 1 sent" in output
    [thanks] = smtp.sink.received
    assert (thanks.recipients, thanks.parsed()["Subject"]) == (
        ["ada@example.com"],
        f"Thank you for your order #{ORDER}",
    )
    assert "- Aurora Desk Lamp x 2: $89.00 each" in thanks.part("text/plain")
    journey = db.one(Journey, Journey.flow == "post_purchase")
    assert (journey.state, journey.step) == ("waiting", "review_request")


def test_a_fulfilment_only_the_reconciliation_finds_still_times_the_review_request(
    store: Runtime, smtp: SmtpServer, db: Db, shop: Shop
) -> None:
    """The orders/fulfilled webhook was lost; the periodic reconciliation repairs the order, and the journey
    waiting for the fulfilment moves with it (the wait does not run to its maximum first)."""
    pay(store)
    run_worker(store, FIRST_RUN)
    node = order_node(
        ORDER, updated_at=iso(FULFILLED), created_at="2026-11-20T09:55:00Z", customer_id=ADA,
        fulfillment_status="FULFILLED", fulfilled=[iso(FULFILLED)], accepts_marketing=True,
    )  # fmt: skip
    node["email"] = "ada@example.com"
    node["lineItems"]["nodes"] = [
        {
            "title": "Aurora Desk Lamp",
            "quantity": 2,
            "variant": {"id": "gid://shopify/ProductVariant/1001"},
            "product": {"id": "gid://shopify/Product/10"},
            "originalUnitPriceSet": {"shopMoney": {"amount": "89.00"}},
        }
    ]
    with responses.RequestsMock() as mock:
        FakeStore(orders=[node]).install(mock, admin_endpoint(f"https://shopify.test/{webhooks.SHOP}", "2026-10"))
        assert StoreSync(ShopifyAccess(store)).run_slice(shop.id or 0, RECONCILE, FULFILLED + 2 * MINUTE).finished

    journey = db.one(Journey, Journey.flow == "post_purchase")
    assert (journey.step, journey.due_at) == ("review_request", REVIEW_DUE)
    assert run_worker(store, REVIEW_DUE + MINUTE).journeys.sent == 1
    assert subjects(smtp)[-1] == "How do you like it, Ada?"
