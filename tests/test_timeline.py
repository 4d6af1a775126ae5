"""One customer's story in one shop, from `chorus customers timeline` and `GET /api/customers/timeline`: the
webhooks that named them, every decision of their journeys and every message, in time order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopify_app.app import create_app
from shopify_app.models import Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import (  # noqa: F401  fixtures
    describe_store,
    mail_runtime,
    run_worker,
    smtp,
)
from tests.test_flow_management import chorus_all

SHOP = webhooks.SHOP
OTHER_SHOP = webhooks.OTHER_SHOP
ADA = {"id": 777, "email": "ada@example.com", "phone": "+15145550100", "first_name": "Ada",
       "updated_at": "2026-11-20T10:00:00Z"}  # fmt: skip
GRACE = {"id": 888, "email": "grace@example.com", "phone": None, "first_name": "Grace",
         "updated_at": "2026-11-20T10:02:00Z"}  # fmt: skip
KEYS = {"at", "kind", "flow", "step", "outcome", "reason", "detail"}
ENTERED, REMINDED, ORDER_HANDLED = (datetime(2026, 11, 20, h, m, tzinfo=UTC) for h, m in ((10, 5), (11, 5), (11, 31)))


def checkout(runtime: Runtime, token: str, customer: dict[str, Any], at: str, *, shop: str = SHOP) -> None:
    body = payloads.checkout(
        token, updated_at=at, email=customer["email"], buyer_accepts_marketing=True, customer=customer
    )
    body["created_at"] = at
    deliver(runtime, "checkouts/create", body, shop=shop, triggered_at=at)


@pytest.fixture
def story(mail_runtime: Runtime, shop: Shop, smtp: SmtpServer, db: Db) -> Runtime:  # noqa: F811
    """Ada leaves a checkout, gets the reminder, then orders. Around her: Grace (another customer, also
    reminded), a customer known only by phone, and another shop where Ada's address left a checkout too."""
    runtime = mail_runtime
    describe_store(runtime)
    with db.write() as session:
        register_shop(session, runtime.secret_box, OTHER_SHOP, access_token="t2", webhook_secret=None, now=RECEIVED_AT)
    checkout(runtime, "ck-1", ADA, "2026-11-20T10:00:00Z")
    checkout(runtime, "ck-2", GRACE, "2026-11-20T10:02:00Z")
    phone_only = payloads.customer(999, email=None, phone="+15145550199", first_name="Hedy", last_name="Lamarr")
    deliver(runtime, "customers/create", phone_only, triggered_at="2026-11-20T10:03:00Z")
    elsewhere = ADA | {"id": 4242}
    checkout(runtime, "ck-elsewhere", elsewhere, "2026-11-20T10:04:00Z", shop=OTHER_SHOP)
    run_worker(runtime, ENTERED)
    run_worker(runtime, REMINDED)
    assert sorted(r.recipients[0] for r in smtp.sink.received) == ["ada@example.com", "grace@example.com"]
    order = payloads.order(
        1001, checkout_token="ck-1", email="ada@example.com", customer=ADA,
        created_at="2026-11-20T11:30:00Z", updated_at="2026-11-20T11:30:00Z",
    )  # fmt: skip
    deliver(runtime, "orders/create", order, triggered_at="2026-11-20T11:30:00Z")
    run_worker(runtime, ORDER_HANDLED)
    return runtime


def api_timeline(client: FlaskClient, query: str, shop: str = SHOP) -> list[dict[str, Any]]:
    response = client.get(f"/api/customers/timeline?{query}", headers=bearer(session_token(shop)))
    assert response.status_code == 200, response.json
    assert response.json is not None
    entries: list[dict[str, Any]] = response.json["entries"]
    return entries


def outline(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e["flow"], e["step"], e["outcome"], e["reason"]) for e in entries]


ADAS_STORY = [
    ("event", None, None, "done", "checkouts/create"),
    ("decision", "abandoned_checkout", None, "entered", "enrolled"),
    ("decision", "abandoned_checkout", "reminder", "waiting", "wait"),
    ("decision", "abandoned_checkout", "reminder", "sending", "send"),
    ("decision", "abandoned_checkout", "reminder", "sent", "sent"),
    ("decision", "abandoned_checkout", "second_reminder", "waiting", "wait"),
    ("message", "abandoned_checkout", "reminder", "sent", None),
    ("event", None, None, "done", "orders/create"),
    ("decision", "abandoned_checkout", "second_reminder", "exited", "order_placed"),
]


def test_the_cli_and_the_api_tell_the_customers_story_in_time_order(db_url: str, story: Runtime, db: Db) -> None:
    client = create_app(story).test_client()
    by_email = api_timeline(client, "email=Ada@Example.com")
    by_phone = api_timeline(client, "phone=%2B15145550100")
    as_json, text, neither, both = chorus_all(
        db_url,
        ["customers", "timeline", "--shop", SHOP, "--email", " ADA@example.com", "--json"],
        ["customers", "timeline", "--shop", SHOP, "--phone", "+15145550100"],
        ["customers", "timeline", "--shop", SHOP],
        ["customers", "timeline", "--shop", SHOP, "--email", "ada@example.com", "--phone", "+15145550100"],
    )

    assert outline(by_email) == ADAS_STORY  # Grace, the phone-only customer and the other shop are not in it
    assert all(set(entry) == KEYS for entry in by_email)
    moments = [datetime.fromisoformat(e["at"]) for e in by_email]
    assert moments == sorted(moments)
    assert moments[0] == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # when Shopify says the checkout happened
    assert moments[1] == moments[2] == ENTERED
    assert all(REMINDED <= m < REMINDED + timedelta(minutes=1) for m in moments[3:7])  # the worker's run
    assert moments[7] == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    assert moments[8] == ORDER_HANDLED
    checkout_event = db.one(
        WebhookEvent, WebhookEvent.topic == "checkouts/create", WebhookEvent.shop_id == story_shop(db),
        WebhookEvent.email == "ada@example.com",
    )  # fmt: skip
    assert by_email[0]["detail"] == {"event_id": checkout_event.id, "topic": "checkouts/create"}
    assert by_email[1]["detail"]["subject"] == "ck-1"
    message = by_email[6]["detail"]
    assert (message["channel"], message["address"], message["attempts"]) == ("email", "ada@example.com", 1)
    assert message["subject"] == "Ada, you left something at Lumen Lamps"
    assert by_phone == by_email

    for result in (as_json, text):
        assert result.returncode == 0, result.stderr
    printed = json.loads(as_json.stdout)
    assert printed["entries"] == by_email
    assert [c["customer_id"] for c in printed["contacts"]] == [777]
    lines = text.stdout.splitlines()
    ada = printed["contacts"][0]["id"]
    assert (
        lines[0]
        == f"contact {ada}: customer 777, email ada@example.com, phone +15145550100 (time zone: America/New_York)"
    )
    # The checkout's marketing box, kept as proof of Ada's consent.
    assert lines[1] == "2026-11-20T10:00:00+00:00\tconsent\temail\tsubscribed\tcheckout"
    assert printed["consent_history"][0]["evidence"]["checkout_token"] == "ck-1"
    assert lines[2:] == [
        f"{e['at']}\t{e['kind']}\t{'/'.join(p for p in (e['flow'], e['step']) if p) or '-'}\t{e['outcome']}\t"
        f"{e['reason'] or ''}"
        for e in by_email
    ]
    assert lines[8].split("\t")[1:4] == ["message", "abandoned_checkout/reminder", "sent"]
    for refused in (neither, both):
        assert refused.returncode == 2
        assert "name the customer with --email or --phone (one of them)" in refused.stderr


def story_shop(db: Db) -> int:
    found = db.one(Shop, Shop.domain == SHOP).id
    assert found is not None
    return found


def test_neither_another_customer_nor_another_shop_shows_up(story: Runtime, db: Db) -> None:
    client = create_app(story).test_client()

    grace = api_timeline(client, "email=grace@example.com")
    phone_only = api_timeline(client, "phone=%2B15145550199")
    elsewhere = api_timeline(client, "email=ada@example.com", shop=OTHER_SHOP)

    assert outline(grace)[:3] == [
        ("event", None, None, "done", "checkouts/create"),
        ("decision", "abandoned_checkout", None, "entered", "enrolled"),
        ("decision", "abandoned_checkout", "reminder", "waiting", "wait"),
    ]
    assert [e["detail"]["address"] for e in grace if e["kind"] == "message"] == ["grace@example.com"]
    assert "ada@example.com" not in json.dumps(grace)
    assert [(e["kind"], e["reason"]) for e in phone_only] == [("event", "customers/create")]
    other_events = [e.id for e in db.all(WebhookEvent, WebhookEvent.shop_domain == OTHER_SHOP)]
    assert [e["detail"]["event_id"] for e in elsewhere if e["kind"] == "event"] == other_events
    assert {e["detail"]["subject"] for e in elsewhere if e["kind"] == "decision"} == {"ck-elsewhere"}
    assert not [e for e in elsewhere if e["kind"] == "message"]  # Ada's reminder went out from this shop only


def test_after_a_redaction_the_timeline_shows_the_customers_address_nowhere(story: Runtime) -> None:
    client = create_app(story).test_client()
    assert "ada@example.com" in json.dumps(api_timeline(client, "email=ada@example.com"))

    redact = {"shop_domain": SHOP, "customer": {"id": 777, "email": "ada@example.com", "phone": "+15145550100"},
              "orders_to_redact": [1001]}  # fmt: skip
    deliver(story, "customers/redact", redact)
    process(story, ORDER_HANDLED)

    for query in ("email=ada@example.com", "phone=%2B15145550100", "email=grace@example.com"):
        shown = json.dumps(api_timeline(client, query))
        assert "ada@example.com" not in shown, query
        assert "5145550100" not in shown, query
    assert "grace@example.com" in json.dumps(api_timeline(client, "email=grace@example.com"))  # others keep theirs


def test_the_api_wants_exactly_one_of_email_and_phone(client: FlaskClient, shop: Shop) -> None:
    auth = bearer(session_token(SHOP))
    for query in ("", "?email=", "?phone=%20", "?email=ada@example.com&phone=%2B15145550100"):
        response = client.get(f"/api/customers/timeline{query}", headers=auth)
        assert response.status_code == 400, query
        assert response.json == {"error": "name the customer by email or by phone (one of them)"}


def test_messages_keep_their_keys_and_say_more(story: Runtime) -> None:
    client = create_app(story).test_client()
    response = client.get("/api/messages", headers=bearer(session_token(SHOP)))
    assert response.json is not None
    messages = {m["recipient"]: m for m in response.json["messages"]}

    ada = messages["ada@example.com"]
    assert set(ada) == {
        "id", "flow", "channel", "recipient", "subject", "status", "created_at", "sent_at",
        "step", "address", "attempts", "provider", "provider_message_id", "cost", "cost_currency", "error",
    }  # fmt: skip
    assert (ada["flow"], ada["step"], ada["channel"], ada["address"], ada["status"], ada["attempts"]) == (
        "abandoned_checkout", "reminder", "email", "ada@example.com", "sent", 1,
    )  # fmt: skip
    assert ada["error"] is None
    assert datetime.fromisoformat(ada["sent_at"]) >= REMINDED


def test_the_timeline_names_the_contact_its_identities_and_consent_history_and_each_sends_candidates(
    story: Runtime,
) -> None:
    consent = {"state": "unsubscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-21T09:00:00Z"}
    deliver(story, "customers_email_marketing_consent/update",
            {"customer_id": 777, "email_address": "ada@example.com", "email_marketing_consent": consent})  # fmt: skip
    process(story, datetime(2026, 11, 21, 9, 1, tzinfo=UTC))
    client = create_app(story).test_client()
    body = client.get("/api/customers/timeline?email=ada@example.com", headers=bearer(session_token(SHOP))).json
    assert body is not None

    [contact] = body["contacts"]
    assert contact["customer_id"] == 777
    identities = {(i["kind"], i["value"]) for i in contact["identities"]}
    assert {("customer", "777"), ("email", "ada@example.com"), ("phone", "+15145550100")} <= identities
    assert [(r["channel"], r["state"], r["at"]) for r in body["consent_history"]][-1] == (
        "email", "unsubscribed", "2026-11-21T09:00:00+00:00",
    )  # fmt: skip
    [sending] = [e for e in body["entries"] if e["kind"] == "decision" and e["outcome"] == "sending"]
    assert sending["detail"]["candidates"][0] == {"channel": "email", "ok": True, "reason": "chosen: the first usable"}
    # Another customer's contact is not hers.
    grace = client.get("/api/customers/timeline?email=grace@example.com", headers=bearer(session_token(SHOP))).json
    assert grace is not None
    assert [c["id"] for c in grace["contacts"]] != [contact["id"]]
