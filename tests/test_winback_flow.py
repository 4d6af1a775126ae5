"""The winback flow end to end: orders arrive as signed webhooks, the worker's clock moves three months on, the
sweep enrols the customers whose last order became 90 days old, and two emails come back from a real SMTP
server, unless the customer orders again or withdraws consent. Nobody who lapsed before is blasted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopify_app.journeys.tuning import configure
from shopify_app.models import Journey, ShopFlow
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.fake_store import iso
from tests.support.journeys import flow_decisions, followed, subjects, withdraw_email_consent
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import chorus_once, run_worker, shop_id

# The abandoned checkout tests' fixtures: a loopback SMTP server, the runtime sending to it, the shop described.
mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

ADA = 501
ORDERED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # Ada's last order, the day after the shop installed
LAPSED = ORDERED + timedelta(days=90)
FOLLOWUP_DUE = LAPSED + timedelta(days=7, minutes=5)  # a week after the first email went out (at +5 min)
MINUTE = timedelta(minutes=1)
SUBJECTS = ["We miss you at Lumen Lamps", "Still here for you, Ada"]
LONG_AGO = "2025-01-01T00:00:00Z"
PEOPLE = {501: "Ada", 502: "Grace", 503: "Linus", 504: "Margaret"}


def customer(customer_id: int) -> dict[str, Any]:
    """A subscriber of long standing (no welcome for them: that subscription is not news)."""
    name = PEOPLE[customer_id]
    return payloads.customer(
        customer_id,
        email=f"{name.lower()}@example.com",
        first_name=name,
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
        email_marketing_consent={
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": LONG_AGO,
        },
    )


def order(order_id: int, customer_id: int, at: datetime, topic: str = "orders/create") -> dict[str, Any]:
    email = f"{PEOPLE[customer_id].lower()}@example.com"
    return payloads.order(
        order_id,
        email=email,
        customer={"id": customer_id, "email": email},
        financial_status="paid",
        cancelled_at=None,
        created_at=iso(at),
        processed_at=iso(at),
        updated_at=iso(at),
    )


def buys(runtime: Runtime, customer_id: int, order_id: int, at: datetime, *, told_at: datetime | None = None) -> None:
    """The customer is known, then an order of theirs arrives (`told_at`: when Shopify sent it, if later)."""
    deliver(runtime, "customers/create", customer(customer_id), triggered_at=iso(told_at or at))
    deliver(runtime, "orders/create", order(order_id, customer_id, at), triggered_at=iso(told_at or at))


def test_a_customer_whose_last_order_becomes_90_days_old_hears_twice(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    buys(store, ADA, 7001, ORDERED)
    run_worker(store, ORDERED + MINUTE)

    before = run_worker(store, LAPSED - MINUTE)
    crossed = run_worker(store, LAPSED + timedelta(minutes=5))

    assert (before.lapsed, before.journeys.sent) == (0, 0)
    assert (crossed.lapsed, crossed.journeys.sent) == (1, 1)
    [first] = smtp.sink.received
    assert first.recipients == ["ada@example.com"]
    assert first.parsed()["Subject"] == SUBJECTS[0]
    text = first.part("text/plain")
    assert text.startswith("Hi Ada,")
    assert "It has been a while. A lot has changed at Lumen Lamps since your last visit" in text
    assert "See what is new: https://acme.myshopify.com" in followed(db, text)
    assert "190 MacLaren Street, Houston, TN 37178, United States" in text
    journey = db.one(Journey, Journey.flow == "winback")
    assert (journey.subject, journey.entered_at, journey.step) == (str(ADA), LAPSED, "winback_followup")

    assert run_worker(store, FOLLOWUP_DUE - MINUTE).journeys.sent == 0
    assert run_worker(store, FOLLOWUP_DUE + MINUTE).journeys.sent == 1
    assert run_worker(store, FOLLOWUP_DUE + timedelta(days=40)).journeys.sent == 0

    assert subjects(smtp) == SUBJECTS
    assert smtp.sink.received[1].recipients == ["ada@example.com"]
    assert "whenever you are ready, we are here." in smtp.sink.received[1].part("text/plain")
    assert (db.one(Journey, Journey.flow == "winback").state, flow_decisions(db, "winback")[-1]) == (
        "done",
        (None, "completed", "completed"),
    )


def test_customers_who_lapsed_before_the_shop_installed_are_not_blasted(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    # Grace last ordered in July: she was 90 days away before Chorus was installed (an update of that old
    # order reaches Chorus now).
    buys(store, 502, 7002, datetime(2026, 7, 1, 10, 0, tzinfo=UTC), told_at=RECEIVED_AT + MINUTE)
    buys(store, ADA, 7001, ORDERED)

    summaries = [run_worker(store, at) for at in (ORDERED + MINUTE, RECEIVED_AT + timedelta(days=30), LAPSED + MINUTE)]

    assert [s.lapsed for s in summaries] == [0, 0, 1]
    assert [r.recipients for r in smtp.sink.received] == [["ada@example.com"]]
    assert [j.subject for j in db.all(Journey)] == [str(ADA)]


def test_a_flow_switched_on_later_enrols_only_those_who_lapse_from_then_on(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    # The shop installed before winback shipped: the flow starts off for it.
    with db.write() as session:
        configure(session, shop_id(db), store.flows, "winback", enabled=False, now=RECEIVED_AT)
    buys(store, 503, 7003, ORDERED)  # Linus lapses while the flow is off
    buys(store, 504, 7004, ORDERED + timedelta(days=10))  # Margaret lapses after it is switched on
    run_worker(store, ORDERED + MINUTE)
    while_off = run_worker(store, LAPSED + MINUTE)
    switched_on = LAPSED + timedelta(days=5)
    with db.write() as session:
        configure(session, shop_id(db), store.flows, "winback", enabled=True, now=switched_on)

    after = [run_worker(store, at) for at in (switched_on + MINUTE, LAPSED + timedelta(days=10, minutes=5))]

    assert (while_off.lapsed, [s.lapsed for s in after]) == (0, [0, 1])
    assert [r.recipients for r in smtp.sink.received] == [["margaret@example.com"]]
    assert [j.subject for j in db.all(Journey)] == ["504"]
    assert db.one(ShopFlow, ShopFlow.flow == "winback").enabled


def test_a_shop_installed_again_enrols_only_those_who_lapse_from_then_on(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    buys(store, 503, 7003, ORDERED)  # Linus lapses while Chorus is uninstalled
    buys(store, 504, 7004, ORDERED + timedelta(days=20))  # Margaret lapses after it is installed again
    run_worker(store, ORDERED + MINUTE)
    uninstalled = ORDERED + timedelta(days=10)
    deliver(store, "app/uninstalled", webhooks.fixture_bytes("app_uninstalled.json"), triggered_at=iso(uninstalled))
    run_worker(store, uninstalled + MINUTE)
    reinstalled = LAPSED + timedelta(days=10)
    with db.write() as session:
        register_shop(
            session, store.secret_box, webhooks.SHOP, access_token="shpat_again", webhook_secret=None, now=reinstalled
        )

    after = [run_worker(store, at) for at in (reinstalled + MINUTE, LAPSED + timedelta(days=20, minutes=5))]

    assert [s.lapsed for s in after] == [0, 1]
    assert [r.recipients for r in smtp.sink.received] == [["margaret@example.com"]]
    assert [j.subject for j in db.all(Journey)] == ["504"]


def test_a_new_order_between_the_emails_ends_the_journey_when_it_is_handled(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    buys(store, ADA, 7001, ORDERED)
    run_worker(store, LAPSED + timedelta(minutes=5))
    again = LAPSED + timedelta(days=3)
    deliver(store, "orders/create", order(7005, ADA, again), triggered_at=iso(again))

    process(store, again + MINUTE)  # only the webhook is handled

    journey = db.one(Journey, Journey.flow == "winback")
    assert (journey.state, journey.step, journey.due_at) == ("done", "winback_followup", None)
    assert flow_decisions(db, "winback")[-1] == ("winback_followup", "exited", "ordered_since")
    assert run_worker(store, FOLLOWUP_DUE + MINUTE).journeys.sent == 0
    assert subjects(smtp) == SUBJECTS[:1]


def test_consent_withdrawn_between_the_emails_stops_the_followup(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    buys(store, ADA, 7001, ORDERED)
    run_worker(store, LAPSED + timedelta(minutes=5))
    withdrawn = LAPSED + timedelta(days=2)
    withdraw_email_consent(store, ADA, "ada@example.com", withdrawn)

    run_worker(store, FOLLOWUP_DUE + MINUTE)

    assert subjects(smtp) == SUBJECTS[:1]
    assert flow_decisions(db, "winback")[-1] == ("winback_followup", "exited", "consent_withdrawn")


@pytest.mark.slow
def test_chorus_worker_once_sweeps_and_sends_the_winback(db_url: str, store: Runtime, smtp: SmtpServer, db: Db) -> None:
    buys(store, ADA, 7001, ORDERED)
    run_worker(store, ORDERED + MINUTE)
    env = {"SMTP_URL": smtp.url, "EMAIL_FROM": "reminders@mail.chorus.example"}

    output = chorus_once(db_url, (LAPSED + timedelta(minutes=5)).isoformat(), env)

    assert "messages: 1 sent" in output
    assert "journeys: 1 entered by lapse" in output
    [received] = smtp.sink.received
    assert (received.recipients, received.parsed()["Subject"]) == (["ada@example.com"], SUBJECTS[0])
    assert db.one(Journey).step == "winback_followup"
