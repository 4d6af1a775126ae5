"""The embedded admin: its page, session-token authentication of /api, token exchange, and the routes."""

from __future__ import annotations

import responses
from flask import Flask
from flask.testing import FlaskClient

from shopify_app.crypto import SecretBox
from shopify_app.models import EventStatus, Message, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import API_KEY, API_SECRET, ENCRYPTION_KEY, PREVIOUS_API_SECRET
from tests.support.shopify_auth import bearer, session_token
from tests.support.webhooks import OTHER_SHOP, SHOP

RETRY = "X-Shopify-Retry-Invalid-Session-Request"


def test_the_admin_page_loads_app_bridge_and_may_only_be_framed_by_its_shop(client: FlaskClient) -> None:
    page = client.get(f"/?shop={SHOP}&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ&embedded=1")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in html
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in html
    assert html.index("shopify-api-key") < html.index("app-bridge.js") < html.index("<script>")
    assert page.headers["Content-Security-Policy"] == f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    assert client.get("/?shop=evil.example").headers["Content-Security-Policy"] == "frame-ancestors 'none';"


def test_a_valid_session_token_reads_the_shop(client: FlaskClient, shop: Shop) -> None:
    response = client.get("/api/shop", headers=bearer(session_token(SHOP)))

    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert (body["domain"], body["installed"], body["problem"]) == (SHOP, True, None)
    flows = {flow["name"]: flow for flow in body["flows"]}
    assert sorted(flows) == [
        "abandoned_cart", "abandoned_checkout", "browse_abandonment", "post_purchase", "price_drop", "welcome",
        "winback",
    ]  # fmt: skip
    checkout = flows["abandoned_checkout"]
    assert (checkout["enabled"], checkout["delay_minutes"]) == (True, 60)
    assert [(s["id"], s["delay_minutes"], s["enabled"], s["channels"]) for s in checkout["steps"]] == [
        ("reminder", 60, True, ["email", "sms"]),
        ("second_reminder", 1440, True, ["email", "sms"]),
    ]


def test_the_previous_secret_still_signs_during_a_rotation(client: FlaskClient, shop: Shop) -> None:
    assert client.get("/api/shop", headers=bearer(session_token(SHOP, secret=PREVIOUS_API_SECRET))).status_code == 200


def refused(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/flows", headers=headers)
    assert response.status_code == 401
    assert response.headers[RETRY] == "1"


@responses.activate
def test_bad_session_tokens_get_401_with_the_retry_header(client: FlaskClient, shop: Shop) -> None:
    refused(client, {})
    refused(client, {"Authorization": "Basic dXNlcjpwYXNz"})
    refused(client, bearer("not.a.jwt"))
    refused(client, bearer(session_token(SHOP, issued_ago=120)))  # expired a minute ago
    refused(client, bearer(session_token(SHOP, secret="shpss_ffffffffffffffffffffffffffffffff")))
    refused(client, bearer(session_token(SHOP, audience="another-app")))
    refused(client, bearer(session_token(SHOP, nbf=int(RECEIVED_AT.timestamp()) + 10**9)))  # not yet valid
    refused(client, bearer(session_token(SHOP, iss=f"https://{OTHER_SHOP}/admin")))  # iss and dest disagree
    refused(client, bearer(session_token(SHOP, dest="https://evil.example")))
    assert len(responses.calls) == 0  # none of them got as far as asking Shopify for anything


def test_a_few_seconds_of_clock_difference_are_tolerated(client: FlaskClient, shop: Shop) -> None:
    import time

    almost_expired = session_token(SHOP, issued_ago=65)  # expired 5 s ago: within the leeway
    future = session_token(SHOP, nbf=int(time.time()) + 5)
    assert client.get("/api/shop", headers=bearer(almost_expired)).status_code == 200
    assert client.get("/api/shop", headers=bearer(future)).status_code == 200


@responses.activate
def test_another_shops_token_cannot_read_this_shops_data(app: Flask, runtime: Runtime, shop: Shop, db: Db) -> None:
    with db.write() as session:
        other = register_shop(
            session, runtime.secret_box, OTHER_SHOP, access_token="t2", webhook_secret=None, now=RECEIVED_AT
        )
        session.flush()
        for owner, recipient in ((shop.id, "ada@acme.example"), (other.id, "bob@globex.example")):
            assert owner is not None
            session.add(
                Message(
                    shop_id=owner, journey_id=_journey(session, owner), flow="abandoned_checkout", step="reminder",
                    channel="email", address=recipient, payload={"subject": "Hi", "text": "hi"}, status="sent",
                    created_at=RECEIVED_AT,
                )
            )  # fmt: skip
            session.add(
                WebhookEvent(
                    shop_domain=SHOP if owner == shop.id else OTHER_SHOP, shop_id=owner, topic="orders/create",
                    webhook_id=f"wh-{owner}", received_at=RECEIVED_AT, status=EventStatus.DONE,
                )
            )  # fmt: skip
    client = app.test_client()
    as_other = bearer(session_token(OTHER_SHOP))

    messages = client.get("/api/messages", headers=as_other).json
    events = client.get("/api/events", headers=as_other).json
    client.patch("/api/flows/abandoned_checkout", headers=as_other, json={"enabled": False})

    assert messages is not None
    assert events is not None
    assert [m["recipient"] for m in messages["messages"]] == ["bob@globex.example"]
    assert [e["id"] for e in events["events"]] == [db.one(WebhookEvent, WebhookEvent.shop_id == other.id).id]
    mine = client.get("/api/flows", headers=bearer(session_token(SHOP))).json
    assert mine is not None
    listed = {flow["name"]: flow for flow in mine["flows"]}
    assert listed["abandoned_checkout"]["enabled"] is True  # the other shop switched off only its own flow


def _journey(session, shop_id: int) -> int:
    from shopify_app.models import Journey

    journey = Journey(
        shop_id=shop_id, flow="abandoned_checkout", subject=f"ck-{shop_id}", state="done", reason="sent",
        created_at=RECEIVED_AT, updated_at=RECEIVED_AT,
    )  # fmt: skip
    session.add(journey)
    session.flush()
    assert journey.id is not None
    return journey.id


@responses.activate(assert_all_requests_are_fired=True)
def test_a_shop_without_a_usable_token_gets_one_by_token_exchange(client: FlaskClient, shop: Shop, db: Db) -> None:
    with db.write() as session:
        stored = session.get(Shop, shop.id)
        assert stored is not None
        stored.access_token_ciphertext = None
    token = session_token(SHOP)
    exchange = responses.post(
        f"https://shopify.test/{SHOP}/admin/oauth/access_token",
        json={"access_token": "shpat_exchanged", "scope": "read_orders", "expires_in": 3600, "refresh_token": "shprt_x",
              "refresh_token_expires_in": 7776000},
        match=[
            responses.matchers.json_params_matcher(
                {
                    "client_id": API_KEY,
                    "client_secret": API_SECRET,
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": token,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                    "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                    "expiring": "1",
                }
            )
        ],
    )  # fmt: skip

    response = client.get("/api/shop", headers=bearer(token))

    assert response.status_code == 200
    assert exchange.call_count == 1
    ciphertext = db.one(Shop).access_token_ciphertext
    assert ciphertext is not None
    assert SecretBox((ENCRYPTION_KEY,)).decrypt(ciphertext) == "shpat_exchanged"


@responses.activate
def test_a_managed_install_creates_the_shop_on_its_first_request(client: FlaskClient, db: Db) -> None:
    responses.post(
        f"https://shopify.test/{SHOP}/admin/oauth/access_token",
        json={"access_token": "shpat_new", "scope": "read_orders", "expires_in": 3600, "refresh_token": "shprt_new"},
    )
    assert client.get("/api/shop", headers=bearer(session_token(SHOP))).status_code == 200
    assert db.one(Shop).installed


@responses.activate
def test_a_shop_shopify_refuses_to_exchange_for_gets_401(client: FlaskClient, db: Db) -> None:
    responses.post(
        f"https://shopify.test/{SHOP}/admin/oauth/access_token", status=400, json={"error": "invalid_subject_token"}
    )
    response = client.get("/api/shop", headers=bearer(session_token(SHOP)))
    assert (response.status_code, response.headers[RETRY]) == (401, "1")
    assert db.all(Shop) == []


def test_flows_can_be_switched_and_delayed(client: FlaskClient, shop: Shop) -> None:
    auth = bearer(session_token(SHOP))

    updated = client.patch("/api/flows/abandoned_checkout", headers=auth, json={"enabled": False, "delay_minutes": 30})
    listed = client.get("/api/flows", headers=auth).json

    assert updated.status_code == 200
    assert updated.json is not None
    assert updated.json["flow"]["enabled"] is False
    assert listed is not None
    checkout = next(flow for flow in listed["flows"] if flow["name"] == "abandoned_checkout")
    assert (checkout["enabled"], checkout["delay_minutes"]) == (False, 30)
    assert client.patch("/api/flows/no_such_flow", headers=auth, json={"enabled": True}).status_code == 404
    for bad in ({}, {"enabled": "yes"}, {"delay_minutes": 0}, {"delay_minutes": 1.5}, {"colour": "red"}):
        assert client.patch("/api/flows/abandoned_checkout", headers=auth, json=bad).status_code == 400
