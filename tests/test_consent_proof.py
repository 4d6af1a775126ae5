"""Consent with proof, end to end: Chorus's sign-up form, double opt-in through a link emailed over a real SMTP
server, Chorus's own opt-outs standing until an explicit opt-in, and what Shopify is told."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlmodel import select
from werkzeug.test import TestResponse

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.models import ConsentConfirmation, ConsentRecord, Job, Shop, Suppression
from shopify_app.runtime import Runtime
from shopify_app.shop_policy import set_policy
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.database import sqlite_database
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, run_worker
from tests.test_privacy import scan

mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

SHOP = webhooks.SHOP
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Firefox/140.0"}
CONFIRM_LINK = re.compile(r"https://chorus\.example(/confirm/[0-9a-f]{64})")
LATER = "2026-11-20T12:00:00Z"  # a second checkout, after the opt-in: its reminder is due at 13:00
LATER_DUE = datetime.fromisoformat("2026-11-20T13:05:00+00:00")
ADA = {"id": 777, "email": "ada@example.com", "first_name": "Ada", "updated_at": checkout_flow.STARTED}
GRAPHQL = f"https://shopify.test/{SHOP}/admin/api/2026-10/graphql.json"


def double_opt_in(runtime: Runtime, channels: str = "email") -> None:
    with runtime.session() as session, session.begin():
        set_policy(session.exec(select(Shop).where(Shop.domain == SHOP)).one(), {"double_opt_in": channels})


def sign_up(client: FlaskClient, ip: str = "203.0.113.9", **fields: str) -> TestResponse:
    return client.post(f"/subscribe/{SHOP}", data=fields, headers=BROWSER, environ_base={"REMOTE_ADDR": ip})


def records(db: Db) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [(r.channel, r.address, r.state, r.opt_in_level, r.source) for r in db.all(ConsentRecord)]


def confirmation_link(smtp: SmtpServer) -> str:
    [email] = [m for m in smtp.sink.received if m.parsed()["Subject"].startswith("Confirm your subscription")]
    found = CONFIRM_LINK.search(email.part("text/plain"))
    assert found is not None
    return found.group(1)


def reminders(smtp: SmtpServer) -> list[str]:
    return [m.parsed()["Subject"] for m in smtp.sink.received if "you left something" in m.parsed()["Subject"]]


def shopify_consent(level: str, at: str) -> dict[str, Any]:
    """Ada's customer record, subscribed at `level` as of `at`."""
    consent = {"state": "subscribed", "opt_in_level": level, "consent_updated_at": at}
    return payloads.customer(777, email="ada@example.com", updated_at=at, email_marketing_consent=consent)


def unsubscribed_after_a_reminder(store: Runtime, smtp: SmtpServer) -> FlaskClient:
    """Ada, customer 777, gets a reminder and follows its unsubscribe link."""
    abandon(store, customer=ADA)
    run_worker(store, AFTER_DUE)
    client = create_app(store).test_client()
    client.post(smtp.sink.received[0].parsed()["List-Unsubscribe"].strip("<>").removeprefix("https://chorus.example"))
    return client


def test_the_form_shows_what_each_opt_in_means_and_an_unknown_shop_has_none(store: Runtime) -> None:
    process(store)  # the shop's profile: its name
    client = create_app(store).test_client()
    page = client.get(f"/subscribe/{SHOP}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Email me news and offers from Lumen Lamps" in body
    assert "Reply STOP to opt out" in body
    assert client.get("/subscribe/nobody.myshopify.com").status_code == 404


def test_double_opt_in_counts_only_once_the_emailed_link_is_confirmed(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    double_opt_in(store)
    client = create_app(store).test_client()

    answer = sign_up(client, email=" Ada@Example.com ", consent_email="on")

    assert answer.status_code == 200
    assert "Check your inbox" in answer.get_data(as_text=True)
    assert records(db) == [("email", "ada@example.com", "pending", "confirmed_opt_in", "form")]
    [pending] = db.all(ConsentRecord)
    assert pending.evidence is not None
    assert (pending.evidence["ip"], pending.evidence["user_agent"]) == ("203.0.113.9", BROWSER["User-Agent"])
    assert pending.evidence["wording_version"] == "signup-2026-12"
    assert len(pending.evidence["wording_sha256"]) == 64

    # Not confirmed yet: a checkout without its marketing box gets no reminder; the confirmation email goes out.
    abandon(store, "ck-1", buyer_accepts_marketing=False)
    run_worker(store, AFTER_DUE)
    assert reminders(smtp) == []
    link = confirmation_link(smtp)
    [confirmation] = [m for m in smtp.sink.received if m.recipients == ["ada@example.com"]]
    assert "List-Unsubscribe" not in confirmation.parsed()  # asked for, not marketing

    # Mail scanners open links: the page changes nothing until its button is pressed.
    page = client.get(link)
    assert page.status_code == 200
    assert '<form method="post">' in page.get_data(as_text=True)
    assert len(db.all(ConsentRecord)) == 1

    done = client.post(link, headers={"User-Agent": "Phone Mail/2"}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    again = client.post(link)

    assert (done.status_code, again.status_code) == (200, 200)
    assert records(db)[1:] == [("email", "ada@example.com", "subscribed", "confirmed_opt_in", "form")]
    confirmed = db.all(ConsentRecord)[1]
    assert confirmed.evidence is not None
    assert confirmed.evidence["ip"] == "203.0.113.9"  # the sign-up's proof, and the confirmation's
    assert confirmed.evidence["confirmed"] == {"ip": "198.51.100.7", "user_agent": "Phone Mail/2"}
    assert db.one(ConsentConfirmation).confirmed_at is not None

    abandon(store, "ck-2", buyer_accepts_marketing=False, updated_at=LATER)
    run_worker(store, LATER_DUE)
    assert len(reminders(smtp)) == 1


def test_a_link_that_is_not_ours_or_has_expired_confirms_nothing(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    double_opt_in(store)
    client = create_app(store).test_client()
    sign_up(client, email="ada@example.com", consent_email="on")
    run_worker(store, AFTER_DUE)
    link = confirmation_link(smtp)

    forged = "/confirm/" + "0" * 64
    assert (client.get(forged).status_code, client.post(forged).status_code) == (404, 404)
    assert client.post("/confirm/" + "a" * 500).status_code == 404

    expired = Runtime(store.settings, store.engine, store.secret_box, FrozenClock(RECEIVED_AT + timedelta(days=8)))
    assert create_app(expired).test_client().post(link).status_code == 404
    assert [r[2] for r in records(db)] == ["pending"]


def test_a_single_opt_in_counts_at_once_and_reaches_shopify(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    deliver(
        store, "customers/create", payloads.customer(777, email="ada@example.com", updated_at="2026-11-20T09:00:00Z")
    )
    process(store)
    client = create_app(store).test_client()

    answer = sign_up(client, email="ada@example.com", consent_email="on")

    assert "You are subscribed" in answer.get_data(as_text=True)
    assert records(db)[-1] == ("email", "ada@example.com", "subscribed", "single_opt_in", "form")
    assert db.all(ConsentRecord)[-1].customer_id == 777
    with responses.RequestsMock() as shopify:
        mutation = shopify.post(GRAPHQL, json={"data": {"customerEmailMarketingConsentUpdate": {
            "customer": {"id": "gid://shopify/Customer/777"}, "userErrors": []}}})  # fmt: skip
        abandon(store, "ck-1", buyer_accepts_marketing=False, customer={"id": 777, "email": "ada@example.com"})
        run_worker(store, AFTER_DUE)
    assert len(reminders(smtp)) == 1
    assert mutation.call_count == 1
    sent = json.loads(mutation.calls[0].request.body or "")["variables"]["input"]
    assert sent == {
        "customerId": "gid://shopify/Customer/777",
        "emailMarketingConsent": {"marketingState": "SUBSCRIBED", "marketingOptInLevel": "SINGLE_OPT_IN",
                                  "consentUpdatedAt": "2026-11-20T10:00:05Z"},
    }  # fmt: skip


def test_an_unsubscribe_stands_until_the_person_opts_in_again_themselves(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    client = unsubscribed_after_a_reminder(store, smtp)
    assert records(db)[-1] == ("email", "ada@example.com", "unsubscribed", None, "unsubscribe_link")

    # Shopify then reports a single opt-in (an import, say), and a later checkout has its box ticked: neither is
    # the person's own word to Chorus.
    deliver(store, "customers/update", shopify_consent("single_opt_in", "2026-11-20T11:30:00Z"))
    abandon(store, "ck-2", customer=ADA, updated_at=LATER)
    run_worker(store, LATER_DUE)
    assert len(reminders(smtp)) == 1  # the first checkout's, before the unsubscribe
    assert db.all(Suppression) != []

    # The form, even without double opt-in, asks an address that opted out to confirm.
    answer = sign_up(client, email="ada@example.com", consent_email="on")
    assert "Check your inbox" in answer.get_data(as_text=True)
    assert db.all(Suppression) != []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as shopify:
        shopify.post(GRAPHQL, json={"data": {"customerEmailMarketingConsentUpdate": {
            "customer": {"id": "gid://shopify/Customer/777"}, "userErrors": []}}})  # fmt: skip
        run_worker(store, LATER_DUE + timedelta(minutes=1))
    client.post(confirmation_link(smtp))
    assert db.all(Suppression) == []


def test_an_opt_in_shopify_reports_as_confirmed_lifts_a_chorus_opt_out(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    unsubscribed_after_a_reminder(store, smtp)
    assert len(db.all(Suppression)) == 1

    deliver(store, "customers/update", shopify_consent("confirmed_opt_in", "2026-11-20T12:00:00Z"))
    process(store)

    assert db.all(Suppression) == []
    assert records(db)[-1] == ("email", "ada@example.com", "subscribed", "confirmed_opt_in", "shopify_webhook")


def test_one_confirmation_email_a_day_per_address_and_never_one_that_may_have_left(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    double_opt_in(store, "email,sms")
    client = create_app(store).test_client()
    sign_up(client, email="ada@example.com", consent_email="on")
    sign_up(client, email="ada@example.com", phone="+1 514 555 0100", consent_sms="on")  # adds SMS to the same link

    [confirmation] = db.all(ConsentConfirmation)
    assert confirmation.opt_ins == {"email": "ada@example.com", "sms": "+15145550100"}
    with store.session() as session, session.begin():
        held = session.get(ConsentConfirmation, confirmation.id)
        assert held is not None
        held.sending_at = RECEIVED_AT  # a hand-over that was interrupted: it may have left
    run_worker(store, AFTER_DUE)
    assert smtp.sink.received == []
    assert db.one(Job, Job.kind == "consent_confirmation").status == "done"


def test_an_sms_opt_in_under_double_opt_in_needs_an_email_to_confirm(store: Runtime, db: Db) -> None:
    double_opt_in(store, "sms")
    answer = sign_up(create_app(store).test_client(), phone="+15145550100", consent_sms="on")
    assert answer.status_code == 422
    assert "Enter your email address as well" in answer.get_data(as_text=True)
    assert db.all(ConsentRecord) == []


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"consent_email": "on"},
        {"email": "not an address", "consent_email": "on"},
        {"email": "ada@example.com"},
        {"email": "a" * 5000 + "@example.com", "consent_email": "on"},
        {"phone": "12", "consent_sms": "on"},
        {"phone": "+1 514 555 0100", "consent_email": "on"},  # a number, and email ticked without an address
        {"email": "ada@example.com\r\nBcc: eve@example.com", "consent_email": "on"},
        {"email": "ada@example.com", "consent_email": "on", "website": "https://spam.example"},
    ],
)
def test_hostile_or_incomplete_forms_get_a_clear_answer_and_record_nothing(
    store: Runtime, db: Db, form: dict[str, str]
) -> None:
    answer = sign_up(create_app(store).test_client(), **form)
    assert answer.status_code in (200, 422)
    assert db.all(ConsentRecord) == []
    assert db.all(Job, Job.kind == "consent_confirmation") == []


def test_a_redaction_erases_what_the_form_collected(store: Runtime, db: Db) -> None:
    double_opt_in(store)
    sign_up(create_app(store).test_client(), email="bob@biller.com", phone="+16135550123", consent_email="on",
            consent_sms="on")  # fmt: skip
    assert db.all(ConsentConfirmation) != []
    request = {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "customer": {"id": 4242, "email": "bob@biller.com", "phone": "+16135550123"},
        "orders_to_redact": [],
    }
    deliver(store, "customers/redact", request)
    process(store)

    found = scan(store)
    assert found["email"] == []
    assert found["phone"] == []


def test_records_written_before_consent_had_sources_keep_their_topic_as_evidence(tmp_path: Any) -> None:
    with sqlite_database(tmp_path) as url:
        migrate.downgrade(url, "0010")
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO shops (id, domain, installed, policy, created_at, updated_at) "
                "VALUES (1, 'a.myshopify.com', 1, '{}', '2026-11-01', '2026-11-01')"))  # fmt: skip
            connection.execute(text(
                "INSERT INTO customers (shop_id, customer_id, email, phone) VALUES "
                "(1, 7, 'ada@example.com', '+15145550100')"))  # fmt: skip
            insert = text(
                "INSERT INTO consent_records (shop_id, customer_id, channel, state, consent_updated_at, source, "
                "recorded_at) VALUES (1, 7, :channel, 'subscribed', '2026-11-01', :source, '2026-11-01')"
            )
            for channel, source in (("email", "customers/update"), ("sms", "sync/full")):
                connection.execute(insert, {"channel": channel, "source": source})
        migrate.upgrade(url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT channel, address, source, evidence FROM consent_records ORDER BY id")
            )
            assert [(c, a, s, json.loads(e)) for c, a, s, e in rows] == [
                ("email", "ada@example.com", "shopify_webhook", {"topic": "customers/update"}),
                ("sms", "+15145550100", "reconciliation", {"topic": "sync/full"}),
            ]
        engine.dispose()
