"""The price drop flow end to end: Ada's browser is proven hers by a checkout that a signed webhook names (and
that ends in an order); she looks at the lamp at the mirror's $199.00 (the pixel claims another price, not
believed); days later a product update takes it to $149.00, and one note with both prices comes back from a
real SMTP server. A smaller fall, an old view, or a browser nobody proved to be theirs: nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from shopify_app.clock import FrozenClock
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.journeys.tuning import load_tunings
from shopify_app.models import Journey, Message, PixelEvent, Shop, ShopFlow
from shopify_app.runtime import Runtime
from tests import test_abandoned_cart_flow as cart_flow
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.fake_store import iso
from tests.support.pipeline import deliver
from tests.support.smtp import SmtpServer
from tests.test_abandoned_cart_flow import VARIANT, known_by_an_order
from tests.test_abandoned_checkout_flow import run_worker
from tests.test_browse_abandonment_flow import views_lamp
from tests.test_pixel_intake import fresh_limits

# The abandoned cart tests' fixtures (SMTP server, runtime sending to it, the shop described, its pixel key).
mail_runtime, smtp, store, key = cart_flow.mail_runtime, cart_flow.smtp, cart_flow.store, cart_flow.key
__all__ = ["fresh_limits"]

VIEWED = RECEIVED_AT + timedelta(hours=2)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def priced(runtime: Runtime, at: datetime, price: str) -> None:
    """A products/update at `at` (as Shopify's header says) that sets the lamp's price."""
    when = iso(at)
    variant = payloads.variant(VARIANT, price=price, updated_at=when, image_id=562641783)
    deliver(runtime, "products/update", payloads.product(updated_at=when, variants=[variant]), triggered_at=when)


def drop_mail(smtp: SmtpServer) -> list[object]:
    return [r for r in smtp.sink.received if "was $199.00" in r.part("text/plain")]


def test_a_view_then_a_fall_of_a_quarter_brings_one_note_with_both_prices(
    store: Runtime, key: str, smtp: SmtpServer, db: Db
) -> None:
    known_by_an_order(store, key)
    priced(store, VIEWED - MINUTE, "199.00")
    views_lamp(store, key, VIEWED)
    priced(store, VIEWED + 3 * DAY, "149.00")

    dropped = run_worker(store, VIEWED + 3 * DAY + MINUTE)
    later = run_worker(store, VIEWED + 4 * DAY)

    assert (dropped.journeys.sent, later.journeys.sent) == (1, 0)
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    assert received.parsed()["Subject"] == "Ada, now $149.00: IPod Nano - 8GB"
    body = received.part("text/plain")
    assert "IPod Nano - 8GB (Pink): $149.00, was $199.00" in body  # the mirror's price at the view, not the pixel's
    assert "0.01" not in body
    assert db.one(PixelEvent, PixelEvent.name == "product_viewed").mirror_price is not None
    journey = db.one(Journey, Journey.flow == "price_drop")
    assert (journey.subject, journey.state, journey.customer_id) == (str(journey.contact_id), "done", 501)
    [message] = db.all(Message, Message.step == "price_drop_alert")
    assert (message.status, message.address) == ("sent", "ada@example.com")


def test_a_fall_under_ten_percent_says_nothing(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    priced(store, VIEWED - MINUTE, "199.00")
    views_lamp(store, key, VIEWED)
    priced(store, VIEWED + DAY, "180.00")  # 9.5% less

    run_worker(store, VIEWED + DAY + MINUTE)

    assert drop_mail(smtp) == []
    assert db.all(Journey, Journey.flow == "price_drop") == []


def test_a_view_older_than_two_weeks_is_not_recalled(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    priced(store, VIEWED - MINUTE, "199.00")
    views_lamp(store, key, VIEWED)
    priced(store, VIEWED + 15 * DAY, "149.00")

    run_worker(store, VIEWED + 15 * DAY + MINUTE)

    assert drop_mail(smtp) == []
    assert db.all(Journey, Journey.flow == "price_drop") == []


def test_nobody_unknown_is_written_to(store: Runtime, key: str, smtp: SmtpServer, db: Db) -> None:
    known_by_an_order(store, key)
    priced(store, VIEWED - MINUTE, "199.00")
    views_lamp(store, key, VIEWED, client_id="stranger")
    priced(store, VIEWED + DAY, "149.00")

    run_worker(store, VIEWED + DAY + MINUTE)

    assert drop_mail(smtp) == []
    assert db.all(Journey, Journey.flow == "price_drop") == []


def test_existing_shops_get_the_flow_switched_off_and_new_ones_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    migrate.upgrade(url, "0016")  # the release before the price drop flow
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

    assert rows == [("price_drop", False)]
    assert (before["price_drop"].enabled, after["price_drop"].enabled) == (False, True)
    assert before["browse_abandonment"].enabled  # what shipped before is as it was (no row: the default)
