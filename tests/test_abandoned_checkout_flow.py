"""The abandoned checkout flow end to end: webhooks in, worker, re-validation, a real SMTP server out."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.models import Decision, Journey, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from shopify_app.worker import RunSummary, Worker
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.journeys import followed
from tests.support.pipeline import deliver, process
from tests.support.smtp import Sink, SmtpServer, smtp_server

STARTED = "2026-11-20T10:00:00Z"  # the checkout's last update: the reminder is due an hour later
BEFORE_DUE = datetime(2026, 11, 20, 10, 59, tzinfo=UTC)
AFTER_DUE = datetime(2026, 11, 20, 11, 5, tzinfo=UTC)
VARIANT = 808950810  # the variant in Shopify's checkout sample


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_runtime(db_url: str, smtp: SmtpServer) -> Iterator[Runtime]:
    settings = make_settings(db_url, SMTP_URL=smtp.url, EMAIL_FROM="reminders@mail.chorus.example")
    runtime = Runtime.build(settings, clock=FrozenClock(RECEIVED_AT))
    yield runtime
    runtime.close()


@pytest.fixture
def store(mail_runtime: Runtime, shop: Shop) -> Runtime:
    describe_store(mail_runtime)
    return mail_runtime


def describe_store(runtime: Runtime) -> None:
    """The shop's profile (with its postal address) and catalogue, as Shopify's webhooks describe them."""
    profile = webhooks.fixture_json("app_uninstalled.json") | {
        "name": "Lumen Lamps",
        "updated_at": "2026-11-19T00:00:00Z",
    }
    deliver(runtime, "shop/update", profile)
    deliver(runtime, "products/create", payloads.product(updated_at="2026-11-20T09:00:00Z"))


def run_worker(runtime: Runtime, at: datetime) -> RunSummary:
    return Worker(Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(at))).run_once()


def abandon(runtime: Runtime, token: str = "ck-1", **changes: Any) -> None:
    fields: dict[str, Any] = {"buyer_accepts_marketing": True, "email": "ada@example.com", "updated_at": STARTED}
    fields.update(changes)
    deliver(runtime, "checkouts/create", payloads.checkout(token, **fields))


def reasons(db: Db) -> list[tuple[str, str]]:
    return [(d.outcome, d.reason) for d in db.all(Decision)]


def shop_id(db: Db) -> int:
    found = db.one(Shop).id
    assert found is not None
    return found


def test_exactly_one_email_with_the_current_price_when_nothing_happened(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, BEFORE_DUE)
    assert smtp.sink.received == []  # not yet due

    # The price drops after the checkout: the reminder must show today's price, not the checkout's.
    cheaper = payloads.variant(VARIANT, price="149.00", updated_at="2026-11-20T10:30:00Z", image_id=562641783)
    deliver(store, "products/update", payloads.product(updated_at="2026-11-20T10:30:00Z", variants=[cheaper]))
    first = run_worker(store, AFTER_DUE)
    again = run_worker(store, AFTER_DUE + timedelta(hours=2))

    assert (first.journeys.sent, again.journeys.sent) == (1, 0)  # the second reminder is a day later
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    text, html = received.part("text/plain"), received.part("text/html")
    assert "$149.00" in text  # the shop's own money format
    assert "199.00" not in text + html
    assert "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token" in followed(db, text)
    assert 'src="https://cdn.shopify.com/s/files/ipod-nano-pink.png"' in html
    [message] = db.all(Message)
    assert (message.status, message.address, message.attempts) == ("sent", "ada@example.com", 1)
    assert message.step == "reminder"
    assert reasons(db) == [
        ("entered", "enrolled"),
        ("waiting", "wait"),
        ("sending", "send"),
        ("sent", "sent"),
        ("waiting", "wait"),  # for the second reminder
    ]
    sending = db.all(Decision)[2]
    assert sending.detail["items"][0]["unit_price"] in ("149.00", "149.0000")


def test_the_message_reads_back_from_the_server_with_compliant_headers_and_parts(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)

    [received] = smtp.sink.received
    headers = received.data.split(b"\r\n\r\n")[0].decode().replace("\r\n", "\n")
    match = re.search(r"^List-Unsubscribe: <(https://chorus\.example/unsubscribe/[A-Za-z0-9_.\-]+)>$", headers, re.M)
    assert match, headers  # one line, unencoded, an https URL
    assert re.search(r"^List-Unsubscribe-Post: List-Unsubscribe=One-Click$", headers, re.M), headers
    message = received.parsed()
    assert message["From"] == "Lumen Lamps <reminders@mail.chorus.example>"
    assert message["Subject"] == "John, you left something at Lumen Lamps"  # the customer's first name
    assert message.get_content_type() == "multipart/alternative"
    text, html = received.part("text/plain"), received.part("text/html")
    for body in (text, html):
        assert "190 MacLaren Street, Houston, TN 37178, United States" in body  # CAN-SPAM: a postal address
        assert match.group(1) in body  # a visible unsubscribe link
    assert "<script" not in html


@pytest.mark.parametrize("when", ["before the checkout webhook", "in the checkout's batch", "during the delay"])
def test_no_email_when_the_checkout_became_an_order(store: Runtime, smtp: SmtpServer, db: Db, when: str) -> None:
    placed = payloads.order(
        1001, checkout_token="ck-1", created_at="2026-11-20T10:20:00Z", updated_at="2026-11-20T10:20:00Z"
    )
    if when == "before the checkout webhook":
        deliver(store, "orders/create", placed)
        run_worker(store, BEFORE_DUE)
        abandon(store)
    elif when == "in the checkout's batch":  # the worker was away: both wait, and are handled together
        abandon(store)
        deliver(store, "orders/create", placed)
    else:
        abandon(store)
        run_worker(store, BEFORE_DUE)
        deliver(store, "orders/create", placed)

    summary = run_worker(store, AFTER_DUE)

    assert summary.journeys.sent == 0
    assert smtp.sink.received == []
    # Known before the checkout's journey is decided (journeys are decided on the mirror as the whole batch left
    # it), it never enters; arriving during the delay, it ends the journey at once.
    expected = ("exited" if when == "during the delay" else "ineligible", "order_placed")
    assert reasons(db)[-1] == expected


def test_no_email_when_the_same_customer_bought_in_the_shop(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    process(store, BEFORE_DUE)  # the journey waits for its reminder
    pos = payloads.order(
        2002,
        source_name="pos",
        checkout_token=None,
        cart_token=None,
        email=None,
        contact_email=None,
        customer=payloads.checkout()["customer"],  # the same Shopify customer, in the shop
        created_at="2026-11-20T10:40:00Z",
        updated_at="2026-11-20T10:40:00Z",
    )
    deliver(store, "orders/create", pos)

    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert reasons(db)[-1] == ("exited", "ordered_since")


def test_no_email_without_consent(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store, buyer_accepts_marketing=False)
    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert reasons(db) == [("ineligible", "no_consent")]


def test_no_email_when_consent_was_withdrawn_during_the_delay(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    process(store, BEFORE_DUE)
    customer_id = payloads.checkout()["customer"]["id"]
    withdrawn = {"state": "unsubscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-20T10:30:00Z"}
    deliver(
        store,
        "customers_email_marketing_consent/update",
        {"customer_id": customer_id, "email_address": "ada@example.com", "email_marketing_consent": withdrawn},
    )
    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert reasons(db)[-1] == ("exited", "consent_withdrawn")


def test_a_newer_update_pushes_the_reminder_back(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    abandon(store, updated_at="2026-11-20T10:45:00Z")

    run_worker(store, AFTER_DUE)
    assert smtp.sink.received == []
    assert db.one(Journey).due_at == datetime(2026, 11, 20, 11, 45, tzinfo=UTC)
    run_worker(store, datetime(2026, 11, 20, 11, 46, tzinfo=UTC))
    assert len(smtp.sink.received) == 1


def test_a_disabled_flow_sends_nothing(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    from shopify_app.journeys.tuning import configure

    abandon(store)
    run_worker(store, BEFORE_DUE)  # the journey waits for its reminder
    with db.write() as session:
        configure(session, shop_id(db), store.flows, "abandoned_checkout", enabled=False, now=RECEIVED_AT)
    abandon(store, "ck-2", email="grace@example.com", customer=None)
    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert reasons(db)[-1] == ("ended", "flow_disabled")  # the waiting journey ends when due
    assert [j.subject for j in db.all(Journey)] == ["ck-1"]  # and nothing new enters


def test_an_uninstalled_shop_sends_nothing(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    deliver(
        store, "app/uninstalled", webhooks.fixture_bytes("app_uninstalled.json"), triggered_at="2026-11-20T10:30:00Z"
    )
    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert reasons(db)[-1] == ("ended", "shop_uninstalled")


def test_an_old_checkout_is_not_recovered(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    run_worker(store, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # the worker was down for a week

    assert smtp.sink.received == []
    assert reasons(db)[-1] == ("ended", "too_old")


def test_get_on_the_unsubscribe_link_changes_nothing_and_post_unsubscribes(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    client: FlaskClient = create_app(store).test_client()
    abandon(store, "ck-1")
    run_worker(store, AFTER_DUE)
    [first] = smtp.sink.received
    link = first.parsed()["List-Unsubscribe"].strip("<>")
    path = link.removeprefix("https://chorus.example")

    page = client.get(path)
    assert page.status_code == 200
    assert b'<form method="post">' in page.data
    assert b"a**@example.com" in page.data  # the address, masked
    assert db.all(Suppression) == []

    abandon(store, "ck-2", updated_at="2026-11-20T12:00:00Z")
    run_worker(store, datetime(2026, 11, 20, 13, 5, tzinfo=UTC))
    assert len(smtp.sink.received) == 2  # GET alone unsubscribed nothing

    one_click = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert one_click.status_code == 200
    assert [(s.address, s.reason) for s in db.all(Suppression)] == [("ada@example.com", "unsubscribed")]

    abandon(store, "ck-3", updated_at="2026-11-20T14:00:00Z")
    run_worker(store, datetime(2026, 11, 20, 15, 5, tzinfo=UTC))
    assert len(smtp.sink.received) == 2
    assert reasons(db)[-1] == ("ineligible", "unsubscribed")


def test_a_forged_unsubscribe_link_is_refused(store: Runtime, db: Db) -> None:
    client = create_app(store).test_client()
    assert client.get("/unsubscribe/eyJtIjoxfQ.forged").status_code == 404
    assert client.post("/unsubscribe/eyJtIjoxfQ.forged").status_code == 404
    assert db.all(Suppression) == []


@pytest.mark.slow
def test_a_worker_killed_between_in_progress_and_sent_never_sends_again(
    db_url: str, shop: Shop, db: Db, tmp_path: Path
) -> None:
    with smtp_server(sink=Sink(hang_in_data=True)) as hanging:
        env = {"SMTP_URL": hanging.url, "EMAIL_FROM": "reminders@mail.chorus.example"}
        runtime = Runtime.build(make_settings(db_url, **env), clock=FrozenClock(RECEIVED_AT))
        describe_store(runtime)
        abandon(runtime)
        runtime.close()
        at = AFTER_DUE.isoformat()
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [*chorus_command(), "worker", "--once", "--now", at],
                env=process_env(db_url, **env),
                stdout=log,
                stderr=log,
            )
        try:
            assert hanging.sink.data_started.wait(30), (tmp_path / "worker.log").read_text()
            assert db.one(Message).status == "sending"  # committed before the hand-over
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)

        same_instant = chorus_once(db_url, at, env)
        later = chorus_once(db_url, (AFTER_DUE + timedelta(minutes=10)).isoformat(), env)

        assert len(hanging.sink.received) == 1  # never handed over a second time
    assert "0 sent" in same_instant
    assert "0 unknown" in same_instant
    assert "1 unknown" in later
    message, journey = db.one(Message), db.one(Journey)
    # Never sent again; the journey goes on to the second reminder as if the first had gone out.
    assert message.status == "unknown"
    assert (journey.state, journey.step, journey.performed) == ("waiting", "second_reminder", {"reminder": "unknown"})
    assert reasons(db)[-3:] == [("sending", "send"), ("unknown", "send_interrupted"), ("waiting", "wait")]


def chorus_once(db_url: str, at: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [*chorus_command(), "worker", "--once", "--now", at],
        env=process_env(db_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_no_marketing_email_without_the_shops_postal_address(
    mail_runtime: Runtime, shop: Shop, smtp: SmtpServer, db: Db
) -> None:
    abandon(mail_runtime)  # no shop/update has told Chorus where the shop is
    run_worker(mail_runtime, AFTER_DUE)

    assert smtp.sink.received == []
    assert ("skipped", "no_postal_address") in reasons(db)


def test_an_unsubscribe_is_passed_on_to_shopify(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    customer = {"id": 777, "email": "ada@example.com", "first_name": "Ada", "updated_at": STARTED}
    abandon(store, customer=customer)
    run_worker(store, AFTER_DUE)
    link = smtp.sink.received[0].parsed()["List-Unsubscribe"].strip("<>")
    create_app(store).test_client().post(link.removeprefix("https://chorus.example"))

    with responses.RequestsMock() as shopify:
        mutation = shopify.post(
            f"https://shopify.test/{webhooks.SHOP}/admin/api/2026-10/graphql.json",
            json={"data": {"customerEmailMarketingConsentUpdate": {"customer": {"id": "gid://shopify/Customer/777"},
                                                                   "userErrors": []}}},
        )  # fmt: skip
        summary = run_worker(store, AFTER_DUE + timedelta(minutes=1))

    assert summary.jobs.done == 1
    assert mutation.call_count == 1
    request = mutation.calls[0].request
    assert request.headers["X-Shopify-Access-Token"] == "shpat_test"
    assert json.loads(request.body or "")["variables"]["input"] == {
        "customerId": "gid://shopify/Customer/777",
        "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": "2026-11-20T10:00:05Z"},
    }


SENT_DAY_AFTER = datetime(2026, 11, 21, 11, 5, tzinfo=UTC)  # a day after the reminder went out (just after 11:05)


def journey_of(db: Db, token: str) -> Journey:
    return db.one(Journey, Journey.flow == "abandoned_checkout", Journey.subject == token)


def decisions_of(db: Db, token: str) -> list[tuple[str | None, str, str]]:
    journey_id = journey_of(db, token).id
    return [(d.step, d.outcome, d.reason) for d in db.all(Decision, Decision.journey_id == journey_id)]


def test_the_second_reminder_goes_out_a_day_after_the_first_with_current_data(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)
    [first] = db.all(Message)
    assert first.sent_at is not None
    assert journey_of(db, "ck-1").due_at == first.sent_at + timedelta(hours=24)  # from when it went out

    # The lamp gets cheaper after the first reminder: the second states today's price.
    cheaper = payloads.variant(VARIANT, price="149.00", updated_at="2026-11-20T18:00:00Z", image_id=562641783)
    deliver(store, "products/update", payloads.product(updated_at="2026-11-20T18:00:00Z", variants=[cheaper]))
    early = run_worker(store, first.sent_at + timedelta(hours=24) - timedelta(minutes=1))
    due = run_worker(store, first.sent_at + timedelta(hours=24, minutes=1))
    later = run_worker(store, first.sent_at + timedelta(days=3))

    assert (early.journeys.sent, due.journeys.sent, later.journeys.sent) == (0, 1, 0)
    second = smtp.sink.received[1]
    assert second.recipients == ["ada@example.com"]
    assert second.parsed()["Subject"] == "Still thinking it over, John? Your cart at Lumen Lamps is waiting"
    text = second.part("text/plain")
    assert "Your cart at Lumen Lamps is still there, at today's prices:" in text
    assert "IPod Nano - 8GB (Pink) x 1: $149.00 each" in text
    assert "199.00" not in text
    assert (
        "Return to your cart: https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
        in followed(db, text)
    )
    assert [(m.step, m.status) for m in db.all(Message)] == [("reminder", "sent"), ("second_reminder", "sent")]
    assert (journey_of(db, "ck-1").state, journey_of(db, "ck-1").reason) == ("done", "completed")


def test_with_the_first_reminder_switched_off_the_second_is_due_a_day_after_the_first_was(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    from shopify_app.journeys.tuning import StepChange, configure

    with db.write() as session:
        configure(
            session, shop_id(db), store.flows, "abandoned_checkout",
            steps={"reminder": StepChange(enabled=False)}, now=RECEIVED_AT,
        )  # fmt: skip
    abandon(store)
    run_worker(store, datetime(2026, 11, 20, 10, 1, tzinfo=UTC))
    skipped = run_worker(store, AFTER_DUE)

    assert (skipped.journeys.sent, skipped.journeys.skipped) == (0, 1)
    assert ("reminder", "skipped", "step_disabled") in decisions_of(db, "ck-1")
    reminder_was_due = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    journey = journey_of(db, "ck-1")
    assert (journey.step, journey.due_at) == ("second_reminder", reminder_was_due + timedelta(hours=24))
    assert run_worker(store, reminder_was_due + timedelta(hours=24) - timedelta(minutes=1)).journeys.sent == 0
    assert run_worker(store, reminder_was_due + timedelta(hours=24, minutes=1)).journeys.sent == 1
    [received] = smtp.sink.received
    assert received.parsed()["Subject"] == "Still thinking it over, John? Your cart at Lumen Lamps is waiting"
    assert [m.step for m in db.all(Message)] == ["second_reminder"]


def test_an_order_between_the_reminders_ends_the_journey_when_it_is_handled(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)
    placed = payloads.order(
        1001, checkout_token="ck-1", financial_status="paid", cancelled_at=None,
        created_at="2026-11-20T15:00:00Z", updated_at="2026-11-20T15:00:00Z",
    )  # fmt: skip
    deliver(store, "orders/create", placed, triggered_at="2026-11-20T15:00:00Z")

    process(store, datetime(2026, 11, 20, 15, 1, tzinfo=UTC))  # only the webhook: no due journey is looked at

    journey = journey_of(db, "ck-1")
    assert (journey.state, journey.step, journey.reason, journey.due_at) == (
        "done", "second_reminder", "order_placed", None,
    )  # fmt: skip
    assert decisions_of(db, "ck-1")[-1] == ("second_reminder", "exited", "order_placed")
    assert run_worker(store, SENT_DAY_AFTER + timedelta(hours=1)).journeys.sent == 0
    assert len(smtp.sink.received) == 1


def test_a_newer_checkout_of_the_same_customer_replaces_the_older_journey(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store, "ck-1")
    run_worker(store, datetime(2026, 11, 20, 10, 20, tzinfo=UTC))
    newer = "https://checkout.local/548380009/checkouts/ck-2/recover?key=newer"
    abandon(store, "ck-2", updated_at="2026-11-20T10:30:00Z", abandoned_checkout_url=newer, cart_token="cart-2")
    run_worker(store, datetime(2026, 11, 20, 10, 31, tzinfo=UTC))

    older = journey_of(db, "ck-1")
    assert (older.state, older.reason) == ("done", "superseded")
    assert decisions_of(db, "ck-1")[-1] == ("reminder", "ended", "superseded")
    entered = db.one(Decision, Decision.journey_id == journey_of(db, "ck-2").id, Decision.outcome == "entered")
    assert entered.detail == {"replaces": ["ck-1"]}

    assert run_worker(store, AFTER_DUE).journeys.sent == 0  # the older one's reminder would have been due
    assert run_worker(store, datetime(2026, 11, 20, 11, 31, tzinfo=UTC)).journeys.sent == 1
    [received] = smtp.sink.received
    assert f"Complete your order: {newer}" in followed(db, received.part("text/plain"))
    assert [m.journey_id for m in db.all(Message)] == [journey_of(db, "ck-2").id]


def test_the_line_price_at_checkout_is_kept_in_the_facts(store: Runtime, db: Db) -> None:
    from decimal import Decimal

    from shopify_app.journeys.facts import checkout_facts
    from shopify_app.models import Checkout

    lines = [line | {"price": "189.00"} for line in payloads.checkout()["line_items"]]
    abandon(store, line_items=lines)
    run_worker(store, BEFORE_DUE)

    facts = checkout_facts(db.one(Checkout), None)
    assert [line.price_at_checkout for line in facts.lines] == [Decimal("189.00"), Decimal("189.00")]
    assert facts.lines[0].variant_id == VARIANT


def test_a_checkout_without_any_timestamp_is_ineligible_for_that_reason(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    timeless = payloads.checkout("ck-1", email="ada@example.com", buyer_accepts_marketing=True)
    timeless["created_at"] = timeless["updated_at"] = None
    deliver(store, "checkouts/create", timeless)
    run_worker(store, AFTER_DUE)

    assert smtp.sink.received == []
    assert decisions_of(db, "ck-1") == [(None, "ineligible", "no_timestamp")]


def test_a_step_skipped_when_due_says_why_not_send(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    abandon(store)
    run_worker(store, BEFORE_DUE)
    # The shopper removes their email address from the checkout (and is no longer signed in).
    abandon(store, updated_at="2026-11-20T10:30:00Z", email=None, customer=None)
    run_worker(store, datetime(2026, 11, 20, 10, 31, tzinfo=UTC))

    first = run_worker(store, datetime(2026, 11, 20, 11, 31, tzinfo=UTC))
    second = run_worker(store, datetime(2026, 11, 21, 11, 31, tzinfo=UTC))

    assert smtp.sink.received == []
    assert (first.journeys.skipped, second.journeys.skipped) == (1, 1)
    skips = [(step, reason) for step, outcome, reason in decisions_of(db, "ck-1") if outcome == "skipped"]
    assert skips == [("reminder", "no_email"), ("second_reminder", "no_email")]
    assert all(reason != "send" for _step, _outcome, reason in decisions_of(db, "ck-1"))
    journey = journey_of(db, "ck-1")
    assert (journey.state, journey.reason, journey.performed) == (
        "done", "completed", {"reminder": "skipped", "second_reminder": "skipped"},
    )  # fmt: skip
    assert db.all(Message) == []
