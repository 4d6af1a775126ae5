"""The browse abandonment flow end to end: Ada's browser is proven hers by a checkout that a signed webhook
names (and that ends in an order); later she looks at the lamp twice, or stays on its page, and adds nothing to
the cart; two hours on, the worker's sweep enrols her and one reminder with the lamp at today's price comes back
from a real SMTP server. A short look, an addition to cart, or a browser nobody proved to be theirs: nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shopify_app.clock import FrozenClock
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.journeys.tuning import load_tunings
from shopify_app.models import Journey, Message, Shop, ShopFlow
from shopify_app.runtime import Runtime
from tests import test_abandoned_cart_flow as cart_flow
from tests.conftest import RECEIVED_AT, make_settings
from tests.support.db import Db
from tests.support.fake_store import iso
from tests.support.journeys import flow_decisions
from tests.support.smtp import SmtpServer
from tests.test_abandoned_cart_flow import PRODUCT, VARIANT, adds_to_cart, cheaper, known_by_an_order, pixel
from tests.test_abandoned_checkout_flow import run_worker
from tests.test_pixel_intake import fresh_limits

# The abandoned cart tests' fixtures (SMTP server, runtime sending to it, the shop described, its pixel key).
mail_runtime, smtp, store, key = cart_flow.mail_runtime, cart_flow.smtp, cart_flow.store, cart_flow.key
__all__ = ["fresh_limits"]

VIEWED = RECEIVED_AT + timedelta(hours=2)  # Ada looks at the lamp, long after her first order
HOURS_2 = timedelta(hours=2)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def views_lamp(runtime: Runtime, key: str, at: datetime, client_id: str = "client-1") -> None:
    variant = {"id": f"gid://shopify/ProductVariant/{VARIANT}", "product": {"id": str(PRODUCT)},
               "price": {"amount": 0.01, "currencyCode": "USD"}}  # fmt: skip
    pixel(runtime, key, at, f"view-{client_id}-{iso(at)}", "product_viewed", client_id, productVariant=variant,
          url="/products/ipod-nano")  # fmt: skip


def views_page(runtime: Runtime, key: str, at: datetime, client_id: str = "client-1") -> None:
    pixel(runtime, key, at, f"page-{client_id}-{iso(at)}", "page_viewed", client_id, url="/collections/all")


def browse_mail(smtp: SmtpServer) -> list[Any]:
    return [r for r in smtp.sink.received if "still thinking" in str(r.parsed()["Subject"]).lower()]


def test_two_views_of_the_lamp_bring_one_reminder_at_todays_price(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED)
    views_lamp(store, key, VIEWED + 5 * SECOND)  # back to it at once: twice
    cheaper(store, VIEWED + 10 * MINUTE)

    early = run_worker(store, VIEWED + HOURS_2 - MINUTE)
    due = run_worker(store, VIEWED + HOURS_2 + MINUTE)
    later = run_worker(store, VIEWED + 3 * HOURS_2)

    assert (early.carts, early.journeys.sent) == (0, 0)
    assert (due.carts, due.journeys.sent, later.carts, later.journeys.sent) == (1, 1, 0, 0)
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    assert received.parsed()["Subject"] == "Ada, still thinking about IPod Nano - 8GB?"
    body = received.part("text/plain")
    assert "You looked at this at Lumen Lamps" in body
    assert "$149.00, in stock" in body  # the mirror's price today: not the pixel's, nor the price at the view
    assert "199.00" not in body + received.part("text/html")
    assert "0.01" not in body
    journey = db.one(Journey, Journey.flow == "browse_abandonment")
    assert (journey.subject, journey.state, journey.customer_id) == (str(journey.contact_id), "done", 501)
    [message] = db.all(Message, Message.step == "browse_reminder")
    assert (message.status, message.address) == ("sent", "ada@example.com")


def test_one_view_and_thirty_seconds_on_the_page_is_enough(store: Runtime, key: str, smtp: SmtpServer) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED)
    views_page(store, key, VIEWED + 30 * SECOND)

    due = run_worker(store, VIEWED + HOURS_2 + MINUTE)

    assert (due.carts, due.journeys.sent, len(browse_mail(smtp))) == (1, 1, 1)


def test_a_single_short_view_is_not_interest(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED)
    views_page(store, key, VIEWED + 29 * SECOND)

    swept = run_worker(store, VIEWED + HOURS_2 + MINUTE)

    assert (swept.carts, browse_mail(smtp)) == (0, [])
    assert db.all(Journey, Journey.flow == "browse_abandonment") == []


def test_an_addition_to_cart_within_two_hours_leaves_it_to_the_cart_flow(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED)
    views_lamp(store, key, VIEWED + 5 * SECOND)
    adds_to_cart(store, key, VIEWED + 30 * MINUTE)

    run_worker(store, VIEWED + HOURS_2 + MINUTE)

    assert browse_mail(smtp) == []
    assert db.all(Journey, Journey.flow == "browse_abandonment") == []
    assert len(db.all(Journey, Journey.flow == "abandoned_cart")) == 1  # that flow has it


def test_nobody_unknown_is_written_to(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED, client_id="stranger")
    views_lamp(store, key, VIEWED + 5 * SECOND, client_id="stranger")

    swept = run_worker(store, VIEWED + HOURS_2 + MINUTE)

    assert (swept.carts, browse_mail(smtp)) == (0, [])
    assert db.all(Journey, Journey.flow == "browse_abandonment") == []


def test_a_contact_hears_of_a_look_once_a_week_at_most(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    views_lamp(store, key, VIEWED)
    views_lamp(store, key, VIEWED + 5 * SECOND)
    run_worker(store, VIEWED + HOURS_2 + MINUTE)
    again = VIEWED + timedelta(days=2)
    views_lamp(store, key, again)
    views_lamp(store, key, again + 5 * SECOND)  # as interested as the first time
    within = run_worker(store, again + HOURS_2 + MINUTE)

    assert (within.carts, within.journeys.sent, len(browse_mail(smtp))) == (0, 0, 1)
    reasons = [reason for _step, outcome, reason in flow_decisions(db, "browse_abandonment") if outcome == "ineligible"]
    assert reasons == ["entered_recently"]


def test_existing_shops_get_the_flow_switched_off_and_new_ones_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    migrate.upgrade(url, "0015")  # the release before the browse abandonment flow
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

    assert rows == [("browse_abandonment", False), ("price_drop", False)]
    assert (before["browse_abandonment"].enabled, after["browse_abandonment"].enabled) == (False, True)
    assert before["abandoned_cart"].enabled  # what shipped before is as it was (no row: the definition's default)
