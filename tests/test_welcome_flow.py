"""The welcome flow end to end: a first subscription arrives as signed webhooks, the worker runs as the days
pass, and three welcomes come back from a real SMTP server, unless the subscriber orders or withdraws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from sqlmodel import select

from shopify_app.models import Customer, Journey, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import admin_endpoint
from shopify_app.sync import RECONCILE, StoreSync
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.fake_store import FakeStore, customer_node, iso
from tests.support.journeys import flow_decisions, followed, subjects
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import chorus_once, run_worker

# The abandoned checkout tests' fixtures: a loopback SMTP server, the runtime sending to it, the shop described.
mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

ADA = 501
SUBSCRIBED_AT = "2026-11-20T09:58:00Z"
ENTERED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # when Shopify sent the subscription (its Triggered-At)
FIRST_RUN = ENTERED + timedelta(minutes=5)
SECOND_DUE = ENTERED + timedelta(days=2)
THIRD_DUE = ENTERED + timedelta(days=5)
MINUTE = timedelta(minutes=1)
SUBJECTS = ["Welcome to Lumen Lamps, Ada", "What people love at Lumen Lamps", "Anything we can help with?"]


def consent(state: str, at: str = SUBSCRIBED_AT) -> dict[str, Any]:
    return {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at}


def ada(state: str = "subscribed", *, at: str = SUBSCRIBED_AT, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "created_at": "2026-11-20T09:50:00Z",
        "updated_at": at,
        "email_marketing_consent": consent(state, at),
    }
    fields.update(changes)
    return payloads.customer(ADA, **fields)


def subscribe(runtime: Runtime) -> None:
    deliver(runtime, "customers/create", ada(), triggered_at=iso(ENTERED))


def consent_update(runtime: Runtime, state: str, at: datetime) -> None:
    body = {"customer_id": ADA, "email_address": "ada@example.com", "email_marketing_consent": consent(state, iso(at))}
    deliver(runtime, "customers_email_marketing_consent/update", body, triggered_at=iso(at))


def test_three_welcomes_on_the_first_second_and_fifth_day(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    subscribe(store)

    sent = [run_worker(store, at).journeys.sent for at in (FIRST_RUN, SECOND_DUE - MINUTE, SECOND_DUE + MINUTE)]
    sent += [run_worker(store, at).journeys.sent for at in (THIRD_DUE - MINUTE, THIRD_DUE + MINUTE)]
    sent.append(run_worker(store, THIRD_DUE + timedelta(days=20)).journeys.sent)

    assert sent == [1, 0, 1, 0, 1, 0]
    assert subjects(smtp) == SUBJECTS
    assert {r.recipients[0] for r in smtp.sink.received} == {"ada@example.com"}
    first = smtp.sink.received[0]
    assert first.parsed()["From"] == "Lumen Lamps <reminders@mail.chorus.example>"
    text, html = first.part("text/plain"), first.part("text/html")
    assert text.startswith("Hi Ada,")
    assert "Thank you for joining Lumen Lamps." in text
    assert "Visit the shop: https://acme.myshopify.com" in followed(db, text)
    assert 'href="https://acme.myshopify.com"' in followed(db, html)
    for body in (text, html):
        assert "190 MacLaren Street, Houston, TN 37178, United States" in body
    assert "A few days in: here is where to start." in smtp.sink.received[1].part("text/plain")
    assert "just reply to this email: a person reads it." in smtp.sink.received[2].part("text/plain")
    journey = db.one(Journey, Journey.flow == "welcome")
    assert (journey.subject, journey.state, journey.reason) == (str(ADA), "done", "completed")
    assert journey.entered_at == ENTERED  # the subscription's moment, not the worker's
    sent_at = [m.sent_at for m in db.all(Message)]
    assert [m.step for m in db.all(Message)] == ["welcome_1", "welcome_2", "welcome_3"]
    assert sent_at[1] is not None
    assert sent_at[1] >= SECOND_DUE
    assert sent_at[2] is not None
    assert sent_at[2] >= THIRD_DUE
    assert flow_decisions(db, "welcome")[-1] == (None, "completed", "completed")


@pytest.mark.parametrize("path", ["customers/update", "consent webhook", "inside a checkout", "inside an order"])
def test_the_first_subscription_welcomes_whichever_delivery_brings_it(
    store: Runtime, smtp: SmtpServer, db: Db, path: str
) -> None:
    subscribed = ada()["email_marketing_consent"]
    if path in ("customers/update", "consent webhook"):
        # Known first as a customer who has not subscribed: no welcome for that.
        deliver(store, "customers/create", ada("not_subscribed", at="2026-11-19T08:00:00Z"))
        run_worker(store, ENTERED - timedelta(hours=1))
        assert db.all(Journey) == []
    if path == "customers/update":
        deliver(store, "customers/update", ada(), triggered_at=iso(ENTERED))
    elif path == "consent webhook":
        consent_update(store, "subscribed", ENTERED)
    elif path == "inside a checkout":
        inside = {"id": ADA, "email": "ada@example.com", "first_name": "Ada", "email_marketing_consent": subscribed}
        checkout = payloads.checkout("ck-ada", email="ada@example.com", customer=inside, buyer_accepts_marketing=False)
        deliver(store, "checkouts/create", checkout, triggered_at=iso(ENTERED))
    else:
        inside = {"id": ADA, "email": "ada@example.com", "first_name": "Ada", "email_marketing_consent": subscribed}
        order = payloads.order(
            1001, email="ada@example.com", customer=inside, created_at="2026-11-20T09:58:00Z", cancelled_at=None
        )
        deliver(store, "orders/create", order, triggered_at=iso(ENTERED))

    run_worker(store, FIRST_RUN)

    [message] = [r for r in smtp.sink.received if r.parsed()["Subject"] == SUBJECTS[0]]
    assert message.recipients == ["ada@example.com"]
    assert flow_decisions(db, "welcome")[:2] == [(None, "entered", "enrolled"), ("welcome_1", "sending", "send")]
    journey = db.one(Journey, Journey.flow == "welcome")
    assert (journey.state, journey.step, journey.entered_at) == ("waiting", "welcome_2", ENTERED)


def test_only_a_first_and_recent_subscription_is_welcomed(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    # Grace subscribed two years ago; Chorus only hears of her now.
    grace = payloads.customer(
        777,
        email="grace@example.com",
        first_name="Grace",
        updated_at="2026-11-20T09:00:00Z",
        email_marketing_consent=consent("subscribed", "2024-11-01T00:00:00Z"),
    )
    deliver(store, "customers/create", grace, triggered_at=iso(ENTERED))
    # Ada is welcomed, leaves, and subscribes again: that is not a first subscription.
    subscribe(store)
    run_worker(store, FIRST_RUN)
    consent_update(store, "unsubscribed", ENTERED + timedelta(hours=3))
    process(store, ENTERED + timedelta(hours=3, minutes=1))
    consent_update(store, "subscribed", ENTERED + timedelta(hours=6))
    run_worker(store, ENTERED + timedelta(hours=7))
    run_worker(store, THIRD_DUE + MINUTE)

    assert subjects(smtp) == SUBJECTS[:1]
    [journey] = db.all(Journey)  # Ada's only; none for Grace
    assert (journey.subject, journey.state, journey.reason) == (str(ADA), "done", "consent_withdrawn")


def test_an_order_between_welcomes_ends_the_journey_when_it_is_handled(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    subscribe(store)
    run_worker(store, FIRST_RUN)
    ordered = ENTERED + timedelta(days=1)
    order = payloads.order(
        1001,
        email="ada@example.com",
        customer={"id": ADA, "email": "ada@example.com"},
        created_at=iso(ordered),
        updated_at=iso(ordered),
        cancelled_at=None,
        financial_status="pending",
    )
    deliver(store, "orders/create", order, triggered_at=iso(ordered))

    process(store, ordered + MINUTE)  # only the webhook is handled: no due journey is looked at

    journey = db.one(Journey, Journey.flow == "welcome")
    assert (journey.state, journey.step, journey.reason, journey.due_at) == ("done", "welcome_2", "ordered_since", None)
    assert flow_decisions(db, "welcome")[-1] == ("welcome_2", "exited", "ordered_since")
    assert [run_worker(store, at).journeys.sent for at in (SECOND_DUE + MINUTE, THIRD_DUE + MINUTE)] == [0, 0]
    assert subjects(smtp) == SUBJECTS[:1]


def test_consent_withdrawn_between_welcomes_stops_the_rest(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    subscribe(store)
    run_worker(store, FIRST_RUN)
    run_worker(store, SECOND_DUE + MINUTE)
    withdrawn = SECOND_DUE + timedelta(hours=5)
    consent_update(store, "unsubscribed", withdrawn)

    process(store, withdrawn + MINUTE)
    assert flow_decisions(db, "welcome")[-1] == ("welcome_3", "exited", "consent_withdrawn")
    run_worker(store, THIRD_DUE + MINUTE)

    assert subjects(smtp) == SUBJECTS[:2]
    assert db.one(Journey).state == "done"


def test_an_unsubscribe_the_reconciliation_finds_ends_the_journey(
    store: Runtime, smtp: SmtpServer, db: Db, shop: Shop
) -> None:
    """The unsubscribe reaches Chorus by the periodic reconciliation, not a webhook (one was lost): the repair
    ends the journey at once, as the webhook would have."""
    subscribe(store)
    run_worker(store, FIRST_RUN)
    withdrawn = iso(ENTERED + timedelta(days=1))
    node = customer_node(ADA, updated_at=withdrawn, state="UNSUBSCRIBED")
    node["defaultEmailAddress"]["emailAddress"] = "ada@example.com"
    node["firstName"] = "Ada"
    reconciled_at = ENTERED + timedelta(days=1, minutes=2)  # it reads what changed since it began, 5 min more
    with responses.RequestsMock() as mock:
        FakeStore(customers=[node]).install(mock, admin_endpoint(f"https://shopify.test/{webhooks.SHOP}", "2026-10"))
        assert StoreSync(ShopifyAccess(store)).run_slice(shop.id or 0, RECONCILE, reconciled_at).finished

    assert flow_decisions(db, "welcome")[-1] == ("welcome_2", "exited", "consent_withdrawn")
    run_worker(store, SECOND_DUE + MINUTE)
    assert subjects(smtp) == SUBJECTS[:1]


def test_consent_is_read_again_when_a_welcome_is_due(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    """Whatever moved the mirror (here nothing told the journey), a due step reads consent afresh."""
    subscribe(store)
    run_worker(store, FIRST_RUN)
    with db.write() as session:
        customer = session.exec(select(Customer).where(Customer.email == "ada@example.com")).one()
        customer.email_consent_state = "unsubscribed"
        customer.email_consent_updated_at = ENTERED + timedelta(days=1)

    run_worker(store, SECOND_DUE + MINUTE)

    assert subjects(smtp) == SUBJECTS[:1]
    assert flow_decisions(db, "welcome")[-1] == ("welcome_2", "exited", "consent_withdrawn")


@pytest.mark.slow
def test_chorus_worker_once_sends_the_first_welcome(db_url: str, store: Runtime, smtp: SmtpServer, db: Db) -> None:
    subscribe(store)
    env = {"SMTP_URL": smtp.url, "EMAIL_FROM": "reminders@mail.chorus.example"}

    output = chorus_once(db_url, FIRST_RUN.isoformat(), env)

    assert "messages: 1 sent" in output
    [received] = smtp.sink.received
    assert (received.recipients, received.parsed()["Subject"]) == (["ada@example.com"], SUBJECTS[0])
    assert db.one(Journey).step == "welcome_2"
