"""The abandoned cart flow end to end: a browser proves to be Ada's through a checkout that a signed webhook
names (and that ends in an order), later adds to cart; once an hour has passed without a checkout, the worker's
sweep enrols her and one reminder at today's price comes back from a real SMTP server. Nobody unknown is
written to, a checkout within the hour ends it, and a contact hears of a cart once a week at most."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from shopify_app.app import create_app
from shopify_app.browsing.keys import ensure_pixel_key
from shopify_app.clock import FrozenClock
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.journeys.tuning import load_tunings
from shopify_app.models import Journey, Message, Shop, ShopFlow
from shopify_app.runtime import Runtime
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.fake_store import iso
from tests.support.journeys import flow_decisions, followed
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import run_worker
from tests.test_pixel_intake import fresh_limits, post

# The abandoned checkout tests' fixtures (SMTP server, runtime sending to it, the shop described), empty limits.
mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store
__all__ = ["fresh_limits"]

VARIANT, PRODUCT = 808950810, 632910392  # in Shopify's product sample: $199.00, in stock
ADDED = RECEIVED_AT + timedelta(hours=2)  # Ada adds the lamp to her cart, long after her first order
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
LONG_AGO = "2025-01-01T00:00:00Z"
ADA = {
    "id": 501, "email": "ada@example.com", "first_name": "Ada",
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": LONG_AGO},
}  # fmt: skip


@pytest.fixture
def key(store: Runtime) -> str:
    """The shop's pixel key, its storefront at lumen.example (after the shop's profile was taken in)."""
    process(store)
    with store.session() as session, session.begin():
        held = session.get(Shop, Db(store).one(Shop).id)
        assert held is not None
        held.primary_domain = "lumen.example"
        return ensure_pixel_key(held)


def browser(runtime: Runtime, at: datetime) -> FlaskClient:
    """The storefront's pixel endpoint as it answers at `at`."""
    clock = FrozenClock(at)
    return create_app(Runtime(runtime.settings, runtime.engine, runtime.secret_box, clock)).test_client()


def pixel(runtime: Runtime, key: str, at: datetime, event_id: str, name: str, client_id: str, **data: Any) -> None:
    event = {"id": event_id, "name": name, "timestamp": iso(at), "clientId": client_id, "data": data}
    assert post(browser(runtime, at), key, {"events": [event]}).status_code == 204


def adds_to_cart(runtime: Runtime, key: str, at: datetime, client_id: str = "client-1", quantity: int = 2) -> None:
    line = {"quantity": quantity, "merchandise": {"id": str(VARIANT), "product": {"id": PRODUCT}}}
    pixel(runtime, key, at, f"add-{client_id}-{iso(at)}", "product_added_to_cart", client_id, cartLine=line)


def starts_checkout(runtime: Runtime, key: str, at: datetime, token: str, client_id: str = "client-1") -> None:
    pixel(runtime, key, at, f"co-{token}", "checkout_started", client_id, checkout={"token": token})


def known_by_an_order(runtime: Runtime, key: str) -> None:
    """Ada's browser starts checkout ck-a; its signed webhook names her (the browser is hers from then on), and
    she completes it with an order."""
    consent = ADA["email_marketing_consent"]
    ada = payloads.customer(501, email="ada@example.com", first_name="Ada", created_at=LONG_AGO, updated_at=LONG_AGO,
                            email_marketing_consent=consent)  # fmt: skip
    deliver(runtime, "customers/create", ada)
    process(runtime)
    starts_checkout(runtime, key, RECEIVED_AT + MINUTE, "ck-a")
    deliver(runtime, "checkouts/create", payloads.checkout("ck-a", email="ada@example.com", customer=ADA))
    process(runtime)
    placed = iso(RECEIVED_AT + 5 * MINUTE)
    order = payloads.order(7001, email="ada@example.com", customer=ADA, checkout_token="ck-a", created_at=placed,
                           processed_at=placed, updated_at=placed, cancelled_at=None)  # fmt: skip
    deliver(runtime, "orders/create", order)
    process(runtime)


def cheaper(runtime: Runtime, at: datetime) -> None:
    """The lamp's price drops after it was added: the reminder must say today's."""
    when = iso(at)
    variant = payloads.variant(VARIANT, price="149.00", updated_at=when, image_id=562641783)
    deliver(runtime, "products/update", payloads.product(updated_at=when, variants=[variant]))


def cart_mail(smtp: SmtpServer) -> list[Any]:
    return [r for r in smtp.sink.received if "left something" in str(r.parsed()["Subject"])]


def test_a_known_shopper_who_added_to_cart_and_started_no_checkout_hears_once(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    adds_to_cart(store, key, ADDED)
    cheaper(store, ADDED + 10 * MINUTE)

    early = run_worker(store, ADDED + HOUR - MINUTE)
    due = run_worker(store, ADDED + HOUR + MINUTE)
    later = run_worker(store, ADDED + 3 * HOUR)

    assert (early.carts, early.journeys.sent) == (0, 0)
    assert (due.carts, due.journeys.sent, later.carts, later.journeys.sent) == (1, 1, 0, 0)
    [received] = smtp.sink.received  # the cart reminder alone: ck-a's reminder ended with its order
    assert received.recipients == ["ada@example.com"]
    assert received.parsed()["Subject"] == "Ada, you left something at Lumen Lamps"
    text = received.part("text/plain")
    assert "You added these to your cart at Lumen Lamps" in text
    assert "x 2: $149.00 each" in text  # today's price, the quantity added
    assert "199.00" not in text + received.part("text/html")
    assert f"Back to your cart: https://lumen.example/cart/{VARIANT}:2" in followed(db, text)
    journey = db.one(Journey, Journey.flow == "abandoned_cart")
    contact_id = journey.contact_id
    assert (journey.subject, journey.state, journey.customer_id) == (str(contact_id), "done", 501)
    [message] = db.all(Message, Message.step == "cart_reminder")
    assert (message.status, message.address) == ("sent", "ada@example.com")
    assert [(step, outcome) for step, outcome, _ in flow_decisions(db, "abandoned_cart")][:1] == [(None, "entered")]


def test_a_checkout_started_within_the_hour_leaves_it_to_the_checkout_flow(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    adds_to_cart(store, key, ADDED)
    starts_checkout(store, key, ADDED + 20 * MINUTE, "ck-b")

    swept = run_worker(store, ADDED + HOUR + MINUTE)

    assert (swept.carts, cart_mail(smtp)) == (0, [])
    assert db.all(Journey, Journey.flow == "abandoned_cart") == []


def test_a_checkout_webhook_after_the_sweep_ends_the_journey_before_its_reminder(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    adds_to_cart(store, key, ADDED)
    adds_to_cart(store, key, ADDED + 50 * MINUTE, quantity=1)  # the reminder moves to an hour after this one
    first = run_worker(store, ADDED + HOUR + MINUTE)  # entered by the first addition; its reminder waits
    checkout = payloads.checkout("ck-c", email="ada@example.com", customer=ADA, updated_at=iso(ADDED + 70 * MINUTE))
    deliver(store, "checkouts/create", checkout)  # not through the pixel: only the signed webhook says so

    run_worker(store, ADDED + 2 * HOUR + MINUTE)

    assert (first.carts, first.journeys.sent) == (1, 0)
    assert smtp.sink.received == []  # nor ck-c's reminder yet: due an hour after its update
    journey = db.one(Journey, Journey.flow == "abandoned_cart")
    assert (journey.state, journey.reason) == ("done", "checkout_started")


def test_nobody_unknown_is_written_to(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    adds_to_cart(store, key, ADDED, client_id="stranger")  # a browser nobody proved to be theirs

    swept = run_worker(store, ADDED + HOUR + MINUTE)

    assert (swept.carts, smtp.sink.received) == (0, [])
    assert db.all(Journey, Journey.flow == "abandoned_cart") == []


def test_a_contact_hears_of_a_cart_once_a_week_at_most(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    adds_to_cart(store, key, ADDED)
    run_worker(store, ADDED + HOUR + MINUTE)
    again = ADDED + timedelta(days=2)
    adds_to_cart(store, key, again)
    within = run_worker(store, again + HOUR + MINUTE)
    week = ADDED + timedelta(days=8)
    adds_to_cart(store, key, week)
    after = run_worker(store, week + HOUR + MINUTE)

    assert (within.carts, within.journeys.sent) == (0, 0)
    assert (after.carts, after.journeys.sent) == (1, 1)
    assert len(cart_mail(smtp)) == 2
    reasons = [reason for _step, outcome, reason in flow_decisions(db, "abandoned_cart") if outcome == "ineligible"]
    assert reasons == ["entered_recently"]


def test_existing_shops_get_the_flow_switched_off_and_new_ones_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    migrate.upgrade(url, "0014")  # the release before the abandoned cart flow
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            at = RECEIVED_AT.replace(tzinfo=None).isoformat(sep=" ")
            connection.execute(
                text("INSERT INTO shops (domain, installed, installed_at, created_at, updated_at, policy)"
                     " VALUES (:domain, :yes, :at, :at, :at, '{}')"),
                {"domain": "before.myshopify.com", "yes": True, "at": at},
            )  # fmt: skip
    finally:
        engine.dispose()
    migrate.upgrade(url, "head")  # `chorus db upgrade`

    runtime = Runtime.build(make_settings(url), clock=FrozenClock(RECEIVED_AT))
    try:
        with runtime.session() as session, session.begin():
            session.add(Shop(domain="after.myshopify.com", created_at=RECEIVED_AT, updated_at=RECEIVED_AT))
        db = Db(runtime)
        shops = {s.domain: s.id for s in db.all(Shop)}
        with runtime.read_session() as session:
            before = load_tunings(session, shops["before.myshopify.com"] or 0, runtime.flows)
            after = load_tunings(session, shops["after.myshopify.com"] or 0, runtime.flows)
        rows = [(r.flow, r.enabled) for r in db.all(ShopFlow)]
    finally:
        runtime.close()

    assert rows == [("abandoned_cart", False), ("browse_abandonment", False), ("price_drop", False)]
    assert (before["abandoned_cart"].enabled, after["abandoned_cart"].enabled) == (False, True)
    assert before["winback"].enabled  # what shipped before is as it was (no row: the definition's default)
