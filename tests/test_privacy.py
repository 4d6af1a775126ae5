"""Shopify's privacy webhooks: data requests exported, customers and shops redacted, provably."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import LargeBinary, func, select, text
from sqlmodel import SQLModel

from shopify_app.app import create_app
from shopify_app.models import (
    ChannelRate,
    ContentOverride,
    Customer,
    Message,
    Order,
    PrivacyRequest,
    Shop,
    WebhookEvent,
    WhatsAppTemplate,
)
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.support.shopify_auth import bearer, session_token
from tests.test_abandoned_checkout_flow import (  # noqa: F401  fixtures
    AFTER_DUE,
    describe_store,
    mail_runtime,
    run_worker,
    smtp,
)

BOB = {
    "id": 706405506930370084,
    "email": "bob@biller.com",
    "phone": "+16135550123",
    "first_name": "Bob",
    "last_name": "Biller",
    "updated_at": "2026-11-20T09:00:00Z",
    "default_address": {"address1": "151 O'Connor Street", "city": "Ottawa", "country_code": "CA"},
    "email_marketing_consent": {
        "state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-20T09:00:00Z",
    },
}  # fmt: skip
ADA = {
    "id": 501,
    "email": "ada@example.com",
    "phone": None,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "updated_at": "2026-11-20T09:00:00Z",
    "default_address": {"address1": "12 Analytical Row", "city": "London", "country_code": "GB"},
}
ADDRESSES = {  # the samples' billing and shipping addresses name Bob Biller: give each person their own
    "ck-bob": {"first_name": "Bob", "last_name": "Biller", "address1": "151 O'Connor Street", "country_code": "CA"},
    "ck-ada": {"first_name": "Ada", "last_name": "Lovelace", "address1": "12 Analytical Row", "country_code": "GB"},
}
TRACES = {
    "email": re.compile(r"bob@biller\.com", re.I),
    "phone": re.compile(r"6135550123"),
    "first name": re.compile(r"\bBob\b"),
    "last name": re.compile(r"Biller"),
    "address": re.compile(r"151 O'Connor"),
}


def person(data: dict[str, Any]) -> dict[str, Any]:
    """A customers/create body for this person, in the sample's shape (none of the sample's values)."""
    return {
        **data,
        "state": "enabled",
        "created_at": data["updated_at"],
        "admin_graphql_api_id": f"gid://shopify/Customer/{data['id']}",
    }


def scan(runtime: Runtime) -> dict[str, list[str]]:
    """Every text, JSON and binary column of every table: where does each trace of Bob appear?"""
    found: dict[str, list[str]] = {name: [] for name in TRACES}
    with runtime.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(column.type, LargeBinary):
                        value = bytes(value).decode("utf-8", "replace")
                    elif isinstance(value, dict | list):
                        value = json.dumps(value)
                    for name, pattern in TRACES.items():
                        if pattern.search(str(value)):
                            found[name].append(f"{table.name}.{column.name}")
    return found


@pytest.fixture
def journeys(mail_runtime: Runtime, shop: Shop, smtp: Any) -> Runtime:  # noqa: F811
    """Bob and Ada: profiles, consent, checkouts, a reminder each, Bob's unsubscribe and his order."""
    runtime = mail_runtime
    describe_store(runtime)
    deliver(runtime, "customers/create", person(BOB))
    deliver(runtime, "customers/create", person(ADA))
    for token, customer in (("ck-bob", BOB), ("ck-ada", ADA)):
        deliver(
            runtime,
            "checkouts/create",
            payloads.checkout(
                token,
                email=customer["email"],
                buyer_accepts_marketing=True,
                customer=customer,
                billing_address=ADDRESSES[token],
                shipping_address=ADDRESSES[token],
            ),
        )
    run_worker(runtime, AFTER_DUE)
    client = create_app(runtime).test_client()
    bob_message = next(m for m in smtp.sink.received if m.recipients == ["bob@biller.com"])
    client.post(bob_message.parsed()["List-Unsubscribe"].strip("<>").removeprefix("https://chorus.example"))
    deliver(runtime, "orders/create", payloads.order(9001, email="bob@biller.com", customer=BOB, total_price="120.00"))
    deliver(runtime, "orders/create", payloads.order(9002, email="ada@example.com", customer=ADA, total_price="80.00"))
    process(runtime)
    return runtime


def redact_request(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "shop_id": 954889,
        "shop_domain": webhooks.SHOP,
        "customer": {"id": customer["id"], "email": customer["email"], "phone": customer.get("phone")},
        "orders_to_redact": [9001],
    }


def test_a_data_request_exports_everything_and_the_merchant_downloads_it(journeys: Runtime, db: Db) -> None:
    request = webhooks.fixture_json("customers_data_request.json") | {
        "customer": {"id": BOB["id"], "email": BOB["email"], "phone": BOB["phone"]},
        "orders_requested": [9001],
    }
    deliver(journeys, "customers/data_request", request)
    process(journeys)

    client: FlaskClient = create_app(journeys).test_client()
    shop_view = client.get("/api/shop", headers=bearer(session_token(webhooks.SHOP))).json
    assert shop_view is not None
    [listed] = shop_view["privacy_requests"]
    assert (listed["kind"], listed["customer_id"]) == ("data_request", BOB["id"])
    download = client.get(listed["export_url"], headers=bearer(session_token(webhooks.SHOP)))
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    export = download.json
    assert export is not None
    assert [p["email"] for p in export["profiles"]] == ["bob@biller.com"]
    # Every signal, with its source: Shopify's state, the checkout's box, the unsubscribe link Bob followed.
    assert [(c["channel"], c["state"], c["source"]) for c in export["consent_history"]] == [
        ("email", "subscribed", "shopify_webhook"),
        ("email", "subscribed", "checkout"),
        ("email", "unsubscribed", "unsubscribe_link"),
    ]
    assert [o["order_id"] for o in export["orders"]] == [9001]
    assert [c["token"] for c in export["checkouts"]] == ["ck-bob"]
    assert {d["outcome"] for d in export["decisions"]} >= {"entered", "waiting", "sending", "sent"}
    assert {(j["flow"], j["subject"]) for j in export["journeys"]} == {
        ("abandoned_checkout", "ck-bob"),
        ("welcome", str(BOB["id"])),  # Bob subscribed: he was welcomed too
    }
    assert {(m["address"], m["step"]) for m in export["messages"]} == {
        ("bob@biller.com", "welcome_1"),
        ("bob@biller.com", "reminder"),
    }
    assert [s["reason"] for s in export["suppressions"]] == ["unsubscribed"]
    assert {e["topic"] for e in export["events"]} >= {"customers/create", "checkouts/create", "orders/create"}
    assert "ada@example.com" not in json.dumps(export)


def test_a_customer_redaction_leaves_no_trace_and_keeps_the_sums(journeys: Runtime, db: Db) -> None:
    deliver(
        journeys,
        "customers/data_request",
        {"customer": {"id": BOB["id"], "email": BOB["email"]}, "data_request": {"id": 1}},
    )
    process(journeys)
    before = scan(journeys)
    assert all(before.values()), before  # the scan does see Bob before
    orders_before = _order_totals(journeys)
    messages_before = len(db.all(Message))

    deliver(journeys, "customers/redact", redact_request(BOB))
    process(journeys)

    after = scan(journeys)
    assert after == {name: [] for name in TRACES}, after
    assert _order_totals(journeys) == orders_before  # revenue and counts unchanged
    assert len(db.all(Message)) == messages_before
    assert "ada@example.com" in json.dumps([m.address for m in db.all(Message)])  # Ada untouched
    redact_event = db.one(WebhookEvent, WebhookEvent.topic == "customers/redact")
    assert (redact_event.status, redact_event.body) == ("done", None)  # its own body is gone too
    [export] = db.all(PrivacyRequest, PrivacyRequest.kind == "data_request")
    assert (export.export, export.export_erased_at is not None) == (None, True)


def test_a_redaction_in_the_same_batch_as_the_customers_last_update_leaves_no_trace(journeys: Runtime) -> None:
    # The update names Bob; the redaction comes right after it, in the same batch.
    deliver(journeys, "customers/update", BOB | {"updated_at": "2026-11-21T10:00:00Z"})
    deliver(journeys, "customers/redact", redact_request(BOB))
    process(journeys)

    after = scan(journeys)
    assert after == {name: [] for name in TRACES}, after


def _order_totals(runtime: Runtime) -> tuple[int, Decimal]:
    with runtime.engine.connect() as connection:
        count, total = connection.execute(select(func.count(), func.sum(Order.__table__.c.total_price))).one()  # type: ignore[attr-defined]
    return int(count), Decimal(str(total)).quantize(Decimal("0.01"))


def test_a_redaction_naming_another_shops_customer_changes_nothing_there(runtime: Runtime, shop: Shop, db: Db) -> None:
    with db.write() as session:
        register_shop(
            session, runtime.secret_box, webhooks.OTHER_SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT
        )
    deliver(runtime, "customers/create", person(BOB), shop=webhooks.OTHER_SHOP)
    process(runtime)

    deliver(runtime, "customers/redact", redact_request(BOB))  # signed by shop A, naming B's customer
    process(runtime)

    [kept] = db.all(Customer)
    assert (kept.email, kept.shop_id) == ("bob@biller.com", db.one(Shop, Shop.domain == webhooks.OTHER_SHOP).id)


def test_a_shop_redaction_deletes_everything_of_the_shop_and_nothing_else(journeys: Runtime, db: Db) -> None:
    with db.write() as session:
        other = register_shop(
            session, journeys.secret_box, webhooks.OTHER_SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT
        )
    deliver(journeys, "customers/create", person(ADA), shop=webhooks.OTHER_SHOP)
    process(journeys)
    shop_id = db.one(Shop, Shop.domain == webhooks.SHOP).id
    deliver(
        journeys, "app/uninstalled", webhooks.fixture_bytes("app_uninstalled.json"), triggered_at="2026-11-20T12:00:00Z"
    )
    process(journeys)

    deliver(journeys, "shop/redact", webhooks.fixture_json("shop_redact.json") | {"shop_domain": webhooks.SHOP})
    process(journeys)

    with journeys.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if "shop_id" in table.columns:
                left = connection.execute(select(func.count()).where(table.c.shop_id == shop_id)).scalar_one()
                assert left == 0, table.name
        remaining_events = connection.execute(
            text("SELECT topic, body FROM webhook_events WHERE shop_domain = :d"), {"d": webhooks.SHOP}
        ).all()
    assert [(topic, body) for topic, body in remaining_events] == [("shop/redact", None)]
    assert [(r.kind, r.shop_domain, r.shop_id) for r in db.all(PrivacyRequest)] == [
        ("shop_redact", webhooks.SHOP, None)
    ]
    assert [s.domain for s in db.all(Shop)] == [webhooks.OTHER_SHOP]
    # The other shop keeps all it had.
    assert [(c.shop_id, c.email) for c in db.all(Customer)] == [(other.id, "ada@example.com")]


def test_every_api_route_with_another_shops_token_sees_and_changes_only_that_shop(journeys: Runtime, db: Db) -> None:
    """Shop B is installed too. Nothing of shop A may come back, or change, through B's session."""
    deliver(
        journeys,
        "customers/data_request",
        {"customer": {"id": BOB["id"], "email": BOB["email"]}, "data_request": {"id": 2}},
    )
    process(journeys)
    with db.write() as session:
        register_shop(
            session, journeys.secret_box, webhooks.OTHER_SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT
        )
    app = create_app(journeys)
    client = app.test_client()
    as_b = bearer(session_token(webhooks.OTHER_SHOP))
    export_id = db.one(PrivacyRequest).id
    a_secrets: tuple[str, ...] = ("bob@biller.com", "ada@example.com", "acme.myshopify.com", "ck-bob", "orders/create")

    a_account = {"account_sid": "AC" + "a1" * 16, "auth_token": "b2" * 16, "from": "+14155550123"}
    as_a = bearer(session_token(webhooks.SHOP))
    assert client.put("/api/channels/sms", json=a_account, headers=as_a).status_code == 200
    a_secrets += (a_account["account_sid"], "+14155550123")

    routes = sorted({rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")})
    assert routes == [
        "/api/channels",
        "/api/channels/<channel>",
        "/api/channels/<channel>/rates",
        "/api/channels/<channel>/test",
        "/api/channels/whatsapp/templates",
        "/api/customers/timeline",
        "/api/events",
        "/api/flows",
        "/api/flows/<flow>",
        "/api/flows/<flow>/preview",
        "/api/flows/<flow>/steps/<step>/content/<channel>",
        "/api/messages",
        "/api/privacy/<int:request_id>/export",
        "/api/shop",
        "/api/shop/policy",
    ]  # fmt: skip  (a new route must be added to this test)
    reads = (
        "/api/events", "/api/flows", "/api/messages", "/api/shop", "/api/customers/timeline?email=bob@biller.com",
        "/api/flows/abandoned_checkout/preview?days=30", "/api/channels",
    )  # fmt: skip
    for path in reads:
        response = client.get(path, headers=as_b)
        assert response.status_code == 200, path
        assert not any(secret in response.get_data(as_text=True) for secret in a_secrets), path
    assert client.get(f"/api/privacy/{export_id}/export", headers=as_b).status_code == 404
    assert client.delete("/api/channels/sms", headers=as_b).status_code == 404
    assert client.post("/api/channels/sms/test", headers=as_b, json={"to": "+14155550123"}).status_code == 400
    template = {"flow": "welcome", "step": "welcome_1", "name": "b_welcome", "language": "en", "params": []}
    assert client.put("/api/channels/whatsapp/templates", headers=as_b, json=template).status_code == 200
    b_id = db.one(Shop, Shop.domain == webhooks.OTHER_SHOP).id
    assert [(t.shop_id, t.name) for t in db.all(WhatsAppTemplate)] == [(b_id, "b_welcome")]
    a_rate = {"rates": [{"country": "US", "amount": "0.0123", "currency": "USD"}]}
    assert client.put("/api/channels/sms/rates", headers=as_a, json=a_rate).status_code == 200
    assert client.put("/api/channels/sms/rates", headers=as_b, json={"rates": []}).status_code == 200  # B's only
    a_id = db.one(Shop, Shop.domain == webhooks.SHOP).id
    assert [(r.shop_id, r.country) for r in db.all(ChannelRate)] == [(a_id, "US")]
    assert "0.0123" not in client.get("/api/channels", headers=as_b).get_data(as_text=True)
    assert client.patch("/api/shop/policy", headers=as_b, json={"caps": ["3/1d"]}).status_code == 200
    assert client.get("/api/shop/policy", headers=as_a).get_json()["policy"]["caps"] == []  # as the fixture set it
    wording = "/api/flows/welcome/steps/welcome_1/content/sms"
    assert client.put(wording, headers=as_b, json={"template": "B says hi"}).status_code == 200
    assert [(o.shop_id, o.source) for o in db.all(ContentOverride)] == [(b_id, "B says hi")]
    a_wording = client.get(wording, headers=as_a).get_json()
    assert a_wording["content"]["template"] is None
    assert client.delete(wording, headers=as_a).status_code == 204
    assert len(db.all(ContentOverride)) == 1  # A's reset leaves B's wording
    a_channels = client.get("/api/channels", headers=as_a).json
    assert a_channels is not None
    assert next(c for c in a_channels["channels"] if c["channel"] == "sms")["state"] == "connected"
    assert client.patch("/api/flows/abandoned_checkout", headers=as_b, json={"enabled": False}).status_code == 200
    a_flows = client.get("/api/flows", headers=bearer(session_token(webhooks.SHOP))).json
    assert a_flows is not None
    assert a_flows["flows"][0]["enabled"] is True
    assert (
        client.get(f"/api/privacy/{export_id}/export", headers=bearer(session_token(webhooks.SHOP))).status_code == 200
    )
