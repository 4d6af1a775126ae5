"""Installing through the authorization code grant, against a fake Shopify that checks every request."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask.testing import FlaskClient

from shopify_app.crypto import SecretBox
from shopify_app.models import Job, Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.oauth import query_is_signed
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import API_KEY, API_SECRET, ENCRYPTION_KEY
from tests.support.shopify_auth import signed_query
from tests.support.webhooks import SHOP

TOKEN_URL = f"https://shopify.test/{SHOP}/admin/oauth/access_token"
EXPIRING_GRANT = {
    "access_token": "shpat_first_access",
    "scope": "read_customers,write_customers,read_orders,read_products,read_inventory",
    "expires_in": 3600,
    "refresh_token": "shprt_first_refresh",
    "refresh_token_expires_in": 7776000,
}


@pytest.mark.parametrize(
    ("params", "secret", "expected"),
    [  # Shopify's published vectors (shopify_python_api tests and the OAuth documentation)
        ({"shop": "some-shop.myshopify.com", "code": "a94a110d86d2452eb3e2af4cfb8a3828", "timestamp": "1337178173"},
         "hush", "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"),
        ({"code": "0907a61c0c8d55e99db179b68161bc00", "shop": "some-shop.myshopify.com",
          "state": "0.6784241404160823", "timestamp": "1337178173"},
         "hush", "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"),
        ({"a": "1&b=2", "c=3&d": "4"}, "secret", "8de3c7e965d22fa21e059868e4004f5b6fbdcef293d1622ff9408edd6325bc6b"),
    ],
)  # fmt: skip
def test_shopifys_query_signature_vectors(params: dict[str, str], secret: str, expected: str) -> None:
    assert query_is_signed({**params, "hmac": expected}, (secret,))
    assert not query_is_signed({**params, "hmac": expected}, ("another",))
    assert not query_is_signed({**params, "extra": "1", "hmac": expected}, (secret,))


def begin(client: FlaskClient, shop: str = SHOP) -> str:
    response = client.get(f"/auth?shop={shop}")
    assert response.status_code == 302
    return response.headers["Location"]


def callback_params(state: str, **changes: str) -> dict[str, str]:
    params = {"code": "auth-code-1", "shop": SHOP, "state": state, "timestamp": str(int(RECEIVED_AT.timestamp()))}
    params.update(changes)
    return params


def test_auth_redirects_to_shopify_with_scopes_and_a_state_bound_to_the_browser(client: FlaskClient) -> None:
    response = client.get(f"/auth?shop={SHOP.upper()}")

    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert (location.scheme, location.netloc, location.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert query["client_id"] == [API_KEY]
    assert query["scope"] == [
        "read_customers,write_customers,read_orders,read_products,read_inventory,write_pixels,read_customer_events"
    ]
    assert query["redirect_uri"] == ["https://chorus.example/auth/callback"]
    assert "grant_options[]" not in query  # offline access
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("chorus_oauth_state=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/auth"):
        assert attribute in cookie
    assert query["state"][0] not in cookie  # signed, but the nonce is not readable as such


@pytest.mark.parametrize("shop", ["", "acme", "acme.example.com", "https://evil.example/?x=acme.myshopify.com"])
def test_auth_refuses_what_is_not_a_shop(client: FlaskClient, shop: str) -> None:
    assert client.get(f"/auth?shop={shop}").status_code == 400


@responses.activate(assert_all_requests_are_fired=True)
def test_install_trades_the_code_for_an_expiring_offline_token(client: FlaskClient, runtime: Runtime, db: Db) -> None:
    token_call = responses.post(
        TOKEN_URL,
        json=EXPIRING_GRANT,
        match=[
            responses.matchers.json_params_matcher(
                {"client_id": API_KEY, "client_secret": API_SECRET, "code": "auth-code-1", "expiring": "1"}
            )
        ],
    )
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]

    response = client.get("/auth/callback", query_string=signed_query(callback_params(state)))

    assert response.status_code == 302
    assert response.headers["Location"] == f"https://{SHOP}/admin/apps/{API_KEY}"
    assert "chorus_oauth_state=;" in response.headers["Set-Cookie"]  # the state is single-use
    assert token_call.call_count == 1
    shop = db.one(Shop)
    box = SecretBox((ENCRYPTION_KEY,))
    assert shop.installed
    assert shop.access_token_ciphertext is not None
    assert shop.refresh_token_ciphertext is not None
    assert box.decrypt(shop.access_token_ciphertext) == "shpat_first_access"
    assert box.decrypt(shop.refresh_token_ciphertext) == "shprt_first_refresh"
    assert "shpat_first_access" not in shop.access_token_ciphertext
    assert shop.access_token_expires_at == RECEIVED_AT + timedelta(hours=1)
    assert shop.refresh_token_expires_at == RECEIVED_AT + timedelta(days=90)
    assert [(j.kind, j.status) for j in db.all(Job)] == [("install", "pending")]  # webhook subscriptions next


def refusal_cases() -> list[object]:
    now = int(RECEIVED_AT.timestamp())
    return [
        pytest.param(lambda s: signed_query(callback_params(s, code="")), id="no code"),
        pytest.param(lambda s: callback_params(s), id="no hmac"),
        pytest.param(lambda s: {**signed_query(callback_params(s)), "code": "swapped"}, id="tampered after signing"),
        pytest.param(lambda s: signed_query(callback_params(s), secret="not-the-secret"), id="wrong secret"),
        pytest.param(lambda s: signed_query(callback_params(s, timestamp=str(now - 3600))), id="stale timestamp"),
        pytest.param(lambda s: signed_query(callback_params(s, timestamp=str(now + 3600))), id="future timestamp"),
        pytest.param(lambda s: signed_query(callback_params("another-state")), id="state does not match"),
        pytest.param(lambda s: signed_query(callback_params(s, shop="globex.myshopify.com")), id="other shop"),
        pytest.param(lambda s: signed_query(callback_params(s, shop="evil.example")), id="not a shop"),
    ]


@pytest.mark.parametrize("make_params", refusal_cases())
@responses.activate
def test_every_refusal_stops_before_the_token_endpoint(client: FlaskClient, db: Db, make_params) -> None:
    token_call = responses.post(TOKEN_URL, json=EXPIRING_GRANT)
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]

    response = client.get("/auth/callback", query_string=make_params(state))

    assert response.status_code in (400, 403)
    assert b"Installation not completed" in response.data
    assert token_call.call_count == 0
    assert db.all(Shop) == []


@responses.activate
def test_a_callback_without_the_state_cookie_is_refused(app, db: Db) -> None:
    token_call = responses.post(TOKEN_URL, json=EXPIRING_GRANT)
    state = parse_qs(urlsplit(begin(app.test_client())).query)["state"][0]
    stranger = app.test_client()  # another browser: it never visited /auth

    response = stranger.get("/auth/callback", query_string=signed_query(callback_params(state)))

    assert response.status_code == 403
    assert token_call.call_count == 0


@responses.activate
def test_a_forged_state_cookie_is_refused(client: FlaskClient, db: Db) -> None:
    token_call = responses.post(TOKEN_URL, json=EXPIRING_GRANT)
    client.set_cookie("chorus_oauth_state", '{"state": "s", "shop": "acme.myshopify.com"}', path="/auth")

    response = client.get("/auth/callback", query_string=signed_query(callback_params("s")))

    assert response.status_code == 403
    assert token_call.call_count == 0


@responses.activate
def test_a_token_endpoint_refusal_stores_nothing(client: FlaskClient, db: Db) -> None:
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_request", "error_description": "code used"})
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]

    response = client.get("/auth/callback", query_string=signed_query(callback_params(state)))

    assert response.status_code == 502
    assert db.all(Shop) == []


@responses.activate
def test_reinstall_after_uninstall(client: FlaskClient, runtime: Runtime, db: Db) -> None:
    responses.post(TOKEN_URL, json=EXPIRING_GRANT)
    responses.post(TOKEN_URL, json={**EXPIRING_GRANT, "access_token": "shpat_second", "refresh_token": "shprt_second"})
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    client.get("/auth/callback", query_string=signed_query(callback_params(state)))
    with db.write() as session:
        shop = session.get(Shop, db.one(Shop).id)
        assert shop is not None
        shop.installed, shop.uninstalled_at, shop.access_token_ciphertext = False, RECEIVED_AT, None

    state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    response = client.get("/auth/callback", query_string=signed_query(callback_params(state, code="auth-code-2")))

    assert response.status_code == 302
    shop = db.one(Shop)
    assert (shop.installed, shop.uninstalled_at) == (True, None)
    assert shop.access_token_ciphertext is not None
    assert SecretBox((ENCRYPTION_KEY,)).decrypt(shop.access_token_ciphertext) == "shpat_second"
