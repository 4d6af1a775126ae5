"""Upgrading a deployment of the one-flow release (revision 0001) with `chorus db upgrade`: what its shops had
goes on as it was, on both databases."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import Connection, text

from shopify_app.app import create_app
from shopify_app.cli import main
from shopify_app.clock import FrozenClock
from shopify_app.crypto import SecretBox
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.models import Contact, ContactIdentity, Customer, Decision, Journey, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from shopify_app.shopify.subscriptions import SUBSCRIBED_TOPICS
from shopify_app.shops import register_shop
from shopify_app.worker import RunSummary, Worker
from tests.conftest import make_settings
from tests.support import payloads
from tests.support.database import postgres_database
from tests.support.db import Db
from tests.support.env import ENCRYPTION_KEY, chorus_command, chorus_env, process_env
from tests.support.fake_shopify import FakeSubscriptions
from tests.support.journeys import followed
from tests.support.pipeline import deliver
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.webhooks import OTHER_SHOP, SHOP

CHECKOUT_UPDATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
OLD_DELAY = timedelta(minutes=30)  # the merchant's delay in the old release (the new default is an hour)
REMINDER_DUE = CHECKOUT_UPDATED + OLD_DELAY
BASE = f"https://shopify.test/{SHOP}"
URI = "https://chorus.example/webhooks"
MAIL = {"EMAIL_FROM": "reminders@mail.chorus.example"}
OLD_HTML = "<p>Your cart is waiting, Grace.</p>"
OLD_TEXT = "Your cart is waiting, Grace."
# The topics the old release subscribed shops to: every one of this release's but orders/fulfilled.
OLD_TOPICS = tuple(t for t in SUBSCRIBED_TOPICS if t != "orders/fulfilled")


@dataclass(frozen=True)
class Old:
    """What the old release left in the database."""

    url: str
    shop_id: int
    waiting: int  # a journey waiting for its reminder
    sent: int  # a journey whose reminder went out
    ineligible: int
    message: int  # the sent journey's message


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0001, as the previous release built it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrate.upgrade(url, "0001")
        yield url
    else:
        with postgres_database() as url:  # comes migrated; start from nothing
            migrate.downgrade(url, "base")
            migrate.upgrade(url, "0001")
            yield url


def stamp(connection: Connection, moment: datetime) -> Any:
    """A time as the old release stored it: naive UTC text on SQLite, timestamptz on PostgreSQL."""
    utc = moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(sep=" ") if connection.dialect.name == "sqlite" else utc


def insert(connection: Connection, table: str, **values: Any) -> int:
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    statement = text(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id")  # noqa: S608  fixed names
    row_id: int = connection.execute(statement, values).scalar_one()
    return row_id


LINE_ITEMS = json.dumps([{"variant_id": 808950810, "product_id": 632910392, "title": "IPod Nano - 8GB",
                           "variant_title": "Pink", "quantity": 1, "price": "199.00"}])  # fmt: skip


def write_old_rows(url: str) -> Old:
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            at = lambda moment: stamp(c, moment)  # noqa: E731
            installed = datetime(2026, 11, 1, tzinfo=UTC)
            shop_id = insert(
                c, "shops", domain=SHOP, installed=True, installed_at=at(installed), created_at=at(installed),
                updated_at=at(installed), access_token_ciphertext=SecretBox((ENCRYPTION_KEY,)).encrypt("shpat_old"),
                name="Lumen Lamps", email="hello@lumen.example", currency="USD", primary_domain="lumen.example",
                postal_address="12 Harbor Street, Portland, ME 04101, United States", profile_updated_at=at(installed),
            )  # fmt: skip
            insert(c, "shop_flows", shop_id=shop_id, flow="abandoned_checkout", enabled=True, delay_seconds=1800,
                   updated_at=at(installed))  # fmt: skip

            def checkout(token: str, email: str, consent: bool, updated: datetime) -> None:
                insert(
                    c, "checkouts", shop_id=shop_id, token=token, email=email, buyer_accepts_marketing=consent,
                    currency="USD", line_items=LINE_ITEMS, created_at=at(updated - timedelta(hours=1)),
                    updated_at=at(updated), abandoned_checkout_url=f"https://lumen.example/checkouts/{token}/recover",
                )  # fmt: skip

            def journey(token: str, state: str, reason: str, due: datetime | None, created: datetime) -> int:
                return insert(c, "journeys", shop_id=shop_id, flow="abandoned_checkout", subject=token, state=state,
                              reason=reason, due_at=at(due) if due else None, created_at=at(created),
                              updated_at=at(created))  # fmt: skip

            def decision(journey_id: int, step: str, outcome: str, reason: str, decided: datetime) -> None:
                insert(c, "decisions", shop_id=shop_id, journey_id=journey_id, flow="abandoned_checkout", step=step,
                       outcome=outcome, reason=reason, detail="{}", decided_at=at(decided))  # fmt: skip

            checkout("ck-wait", "ada@example.com", True, CHECKOUT_UPDATED)
            waiting = journey("ck-wait", "waiting", "enrolled", REMINDER_DUE, CHECKOUT_UPDATED + timedelta(seconds=5))
            decision(waiting, "enrol", "waiting", "enrolled", CHECKOUT_UPDATED + timedelta(seconds=5))

            sent_at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
            checkout("ck-sent", "grace@example.com", True, sent_at - OLD_DELAY)
            sent = journey("ck-sent", "sent", "sent", None, sent_at - OLD_DELAY)
            decision(sent, "enrol", "waiting", "enrolled", sent_at - OLD_DELAY)
            decision(sent, "reminder", "sent", "sent", sent_at)
            message = insert(
                c, "messages", shop_id=shop_id, journey_id=sent, flow="abandoned_checkout", step="reminder",
                channel="email", recipient="grace@example.com", subject="Grace, you left something at Lumen Lamps",
                body_html=OLD_HTML, body_text=OLD_TEXT, status="sent", attempts=1,
                provider_message_id="<old-1@mail.chorus.example>", created_at=at(sent_at), sent_at=at(sent_at),
            )  # fmt: skip

            insert(c, "suppressions", shop_id=shop_id, channel="email", address="old@example.com", reason="refused",
                   message_id=message, created_at=at(sent_at))  # fmt: skip

            checkout("ck-no", "alan@example.com", False, CHECKOUT_UPDATED)
            ineligible = journey("ck-no", "ineligible", "no_consent", None, CHECKOUT_UPDATED)
            decision(ineligible, "enrol", "ineligible", "no_consent", CHECKOUT_UPDATED)

            # A customer with an order, and a later one that was cancelled.
            insert(c, "customers", shop_id=shop_id, customer_id=501, email="ada@example.com",
                   created_at=at(installed), updated_at=at(installed))  # fmt: skip
            for order_id, placed, cancelled in ((1, 10, None), (2, 15, 16)):
                insert(
                    c, "orders", shop_id=shop_id, order_id=order_id, customer_id=501, email="ada@example.com",
                    line_items="[]", created_at=at(datetime(2026, 11, placed, tzinfo=UTC)),
                    updated_at=at(datetime(2026, 11, cancelled or placed, tzinfo=UTC)),
                    cancelled_at=at(datetime(2026, 11, cancelled, tzinfo=UTC)) if cancelled else None,
                )  # fmt: skip
    finally:
        engine.dispose()
    return Old(url, shop_id, waiting, sent, ineligible, message)


def chorus_db_upgrade(url: str) -> None:
    result = subprocess.run(
        [*chorus_command(), "db", "upgrade"], env=process_env(url), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def old(old_database: str) -> Old:
    rows = write_old_rows(old_database)
    chorus_db_upgrade(old_database)
    return rows


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def upgraded(old: Old, smtp: SmtpServer) -> Iterator[Runtime]:
    runtime = Runtime.build(make_settings(old.url, SMTP_URL=smtp.url, **MAIL), clock=FrozenClock(REMINDER_DUE))
    yield runtime
    runtime.close()


def run_worker(runtime: Runtime, at: datetime) -> RunSummary:
    return Worker(Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(at))).run_once()


def test_journeys_and_messages_of_the_old_release_go_on_as_they_were(
    old: Old, upgraded: Runtime, smtp: SmtpServer
) -> None:
    db = Db(upgraded)
    waiting, sent, ineligible = (db.one(Journey, Journey.id == i) for i in (old.waiting, old.sent, old.ineligible))
    assert (waiting.state, waiting.step, waiting.due_at) == ("waiting", "reminder", REMINDER_DUE)
    assert (sent.state, sent.reason, sent.performed) == ("done", "sent", {"reminder": "sent"})
    assert (ineligible.state, ineligible.reason, ineligible.step) == ("ineligible", "no_consent", None)
    message = db.one(Message, Message.id == old.message)
    assert (message.address, message.status, message.provider) == ("grace@example.com", "sent", "smtp")
    assert message.payload == {
        "subject": "Grace, you left something at Lumen Lamps",
        "html": OLD_HTML,
        "text": OLD_TEXT,
    }
    assert db.one(Customer).last_order_at == datetime(2026, 11, 10, tzinfo=UTC)  # the cancelled order does not count
    assert db.one(Suppression).message_id == old.message
    # The unsubscribe link in the email sent before the upgrade still works.
    link = UnsubscribeLinks(upgraded.settings.secret_key, upgraded.settings.app_url).url(old.message)
    page = create_app(upgraded).test_client().get(link.removeprefix(upgraded.settings.app_url))
    assert page.status_code == 200
    assert b"g****@example.com" in page.data

    early = run_worker(upgraded, REMINDER_DUE - timedelta(minutes=1))
    due = run_worker(upgraded, REMINDER_DUE)  # the old 30 minutes, not the new default hour
    a_day_later = run_worker(upgraded, datetime(2026, 11, 21, 10, 0, tzinfo=UTC))

    assert (early.journeys.sent, due.journeys.sent, a_day_later.journeys.sent) == (0, 1, 0)
    [received] = smtp.sink.received  # nothing more for the journey that had sent before the upgrade
    assert received.recipients == ["ada@example.com"]
    assert received.parsed()["Subject"] == "You left something at Lumen Lamps"
    assert "https://lumen.example/checkouts/ck-wait/recover" in followed(db, received.part("text/plain"))
    reminded = db.one(Journey, Journey.id == old.waiting)
    assert (reminded.step, reminded.performed) == ("second_reminder", {"reminder": "sent"})
    finished = db.one(Journey, Journey.id == old.sent)
    assert (finished.state, finished.performed) == ("done", {"reminder": "sent"})
    assert [m.address for m in db.all(Message)] == ["grace@example.com", "ada@example.com"]
    assert [(d.step, d.outcome) for d in db.all(Decision, Decision.journey_id == old.sent)] == [
        ("enrol", "waiting"), ("reminder", "sent"),
    ]  # fmt: skip
    # The customer became a contact, known by their id and email; the journey and its message refer to it.
    [contact] = db.all(Contact)
    assert contact.customer_id == 501
    assert {(i.kind, i.value) for i in db.all(ContactIdentity)} == {("customer", "501"), ("email", "ada@example.com")}
    assert reminded.contact_id == contact.id
    assert db.one(Message, Message.address == "ada@example.com").contact_id == contact.id


def flows_of(runtime: Runtime, domain: str) -> dict[str, tuple[bool, int]]:
    body = create_app(runtime).test_client().get("/api/flows", headers=bearer(session_token(domain))).json
    assert body is not None
    return {flow["name"]: (flow["enabled"], flow["delay_minutes"]) for flow in body["flows"]}


def subscribed(customer_id: int) -> dict[str, Any]:
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-20T10:00:00Z"}
    return payloads.customer(customer_id, email=f"c{customer_id}@example.com", email_marketing_consent=consent)


def test_the_existing_shop_keeps_its_flow_and_gets_the_new_ones_switched_off(old: Old, upgraded: Runtime) -> None:
    db = Db(upgraded)
    with db.write() as session:
        register_shop(session, upgraded.secret_box, OTHER_SHOP, access_token="t", webhook_secret=None,
                      now=REMINDER_DUE)  # fmt: skip

    assert flows_of(upgraded, SHOP) == {
        "abandoned_cart": (False, 60),
        "abandoned_checkout": (True, 30),  # as configured, its delay now the reminder's
        "browse_abandonment": (False, 120),
        "post_purchase": (False, 0),
        "price_drop": (False, 0),
        "welcome": (False, 0),
        "winback": (False, 0),
    }
    assert {name: enabled for name, (enabled, _delay) in flows_of(upgraded, OTHER_SHOP).items()} == {
        "abandoned_cart": True, "abandoned_checkout": True, "browse_abandonment": True, "post_purchase": True,
        "price_drop": True, "welcome": True, "winback": True,
    }  # fmt: skip

    deliver(upgraded, "customers/create", subscribed(900), shop=SHOP)
    deliver(upgraded, "customers/create", subscribed(901), shop=OTHER_SHOP)
    run_worker(upgraded, REMINDER_DUE - timedelta(minutes=5))

    welcomed = [(j.shop_id, j.subject) for j in db.all(Journey, Journey.flow == "welcome")]
    other = db.one(Shop, Shop.domain == OTHER_SHOP)
    assert welcomed == [(other.id, "901")]  # none in the shop that had not switched it on


def doctor(url: str, fake: FakeSubscriptions) -> Any:
    with responses.RequestsMock() as mock:
        fake.install(mock, BASE)
        return CliRunner().invoke(main, ["shops", "doctor", SHOP], env=chorus_env(url, WEBHOOKS_MANAGED_BY="app"))


def test_the_existing_shop_is_subscribed_to_the_new_topic(old: Old) -> None:
    fake = FakeSubscriptions()
    for topic in OLD_TOPICS:  # what the old release created for the shop
        fake.add(topic.replace("/", "_").upper(), URI)

    before = doctor(old.url, fake)
    assert before.exit_code == 1, before.output
    assert "  missing  orders/fulfilled" in before.output

    runtime = Runtime.build(make_settings(old.url, WEBHOOKS_MANAGED_BY="app"), clock=FrozenClock(REMINDER_DUE))
    try:
        with responses.RequestsMock() as mock:
            fake.install(mock, BASE)
            first = run_worker(runtime, REMINDER_DUE - timedelta(minutes=10))
        again = run_worker(runtime, REMINDER_DUE - timedelta(minutes=5))  # no call to Shopify at all
        shop = Db(runtime).one(Shop)
    finally:
        runtime.close()

    assert (first.jobs.done, again.jobs.done) == (1, 0)
    assert [op for op in fake.operations if op.startswith("create")] == ["create ORDERS_FULFILLED"]
    assert set(fake.tokens_seen) == {"shpat_old"}
    assert shop.webhook_topics == ",".join(sorted(SUBSCRIBED_TOPICS))
    after = doctor(old.url, fake)
    assert after.exit_code == 0, after.output
    assert "missing" not in after.output
