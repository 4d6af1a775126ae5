"""POST /webhooks: verify, deduplicate, store verbatim, answer; never process in the request."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import select
from werkzeug.test import EnvironBuilder, TestResponse

from shopify_app.models import EventStatus, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support import webhooks
from tests.support.db import Db
from tests.support.env import PREVIOUS_API_SECRET
from tests.support.pipeline import process


def stored(db: Db) -> list[WebhookEvent]:
    return db.all(WebhookEvent)


def post(client: FlaskClient, topic: str, body: bytes, **options: Any) -> TestResponse:
    return client.post("/webhooks", data=body, headers=webhooks.headers(topic, body, **options))


def test_a_signed_delivery_is_stored_verbatim_and_acknowledged(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("orders_create.json")
    response = post(client, "orders/create", body, webhook_id="wh-1", event_id="ev-1")

    assert response.status_code == 200
    [event] = stored(db)
    assert event.body == body  # byte for byte, as signed
    assert (event.topic, event.shop_domain, event.shop_id) == ("orders/create", webhooks.SHOP, shop.id)
    assert (event.webhook_id, event.event_id, event.api_version) == ("wh-1", "ev-1", "2026-07")
    assert event.triggered_at == datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
    assert event.received_at == RECEIVED_AT
    assert event.status == EventStatus.PENDING  # handled later by the worker, not in the request
    assert event.attempts == 0


def test_header_names_are_case_insensitive(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("customers_create.json")
    lowered = {k.lower(): v for k, v in webhooks.headers("customers/create", body).items()}
    assert client.post("/webhooks", data=body, headers=lowered).status_code == 200
    assert len(stored(db)) == 1


def test_a_wrong_signature_is_rejected_and_nothing_is_stored(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("orders_create.json")
    forged = post(client, "orders/create", body, secret="not-the-app-secret")
    tampered_headers = webhooks.headers("orders/create", body)
    tampered = client.post("/webhooks", data=body.replace(b"jon@", b"eve@"), headers=tampered_headers)
    unsigned_headers = webhooks.headers("orders/create", body)
    del unsigned_headers["X-Shopify-Hmac-Sha256"]
    unsigned = client.post("/webhooks", data=body, headers=unsigned_headers)

    assert [forged.status_code, tampered.status_code, unsigned.status_code] == [401, 401, 401]
    assert stored(db) == []


def test_the_previous_secret_is_accepted_during_a_rotation(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("customers_create.json")
    assert post(client, "customers/create", body, secret=PREVIOUS_API_SECRET).status_code == 200
    assert len(stored(db)) == 1


def test_a_custom_app_shop_is_verified_with_its_own_secret(client: FlaskClient, runtime: Runtime) -> None:
    with runtime.session() as session, session.begin():
        register_shop(
            session, runtime.secret_box, webhooks.OTHER_SHOP,
            access_token="shpat_x", webhook_secret="custom-app-secret", now=RECEIVED_AT,
        )  # fmt: skip
    body = webhooks.fixture_bytes("customers_create.json")

    own = post(client, "customers/create", body, shop=webhooks.OTHER_SHOP, secret="custom-app-secret")
    app_signed = post(client, "customers/create", body, shop=webhooks.OTHER_SHOP)

    assert (own.status_code, app_signed.status_code) == (200, 401)


def test_a_repeated_delivery_is_acknowledged_and_changes_nothing(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("orders_create.json")
    first = post(client, "orders/create", body, webhook_id="wh-1")
    again = post(client, "orders/create", body, webhook_id="wh-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == {"result": "duplicate"}
    assert len(stored(db)) == 1


def test_a_doubled_subscription_is_stored_once(client: FlaskClient, shop: Shop, db: Db) -> None:
    # Two subscriptions to one topic: one action, the same event id, two distinct webhook ids.
    body = webhooks.fixture_bytes("orders_create.json")
    first = post(client, "orders/create", body, webhook_id="wh-a", event_id="ev-1")
    second = post(client, "orders/create", body, webhook_id="wh-b", event_id="ev-1")
    other_topic = post(client, "orders/paid", body, webhook_id="wh-c", event_id="ev-1")

    assert [first.status_code, second.status_code, other_topic.status_code] == [200, 200, 200]
    assert [(e.topic, e.webhook_id) for e in stored(db)] == [
        ("orders/create", "wh-a"),
        ("orders/paid", "wh-c"),
    ]


def test_a_signed_body_that_is_not_json_is_kept_as_malformed_and_never_processed(
    client: FlaskClient, runtime: Runtime, shop: Shop, db: Db
) -> None:
    body = b'{"id": 1, "truncated'
    assert post(client, "orders/create", body).status_code == 200

    report = process(runtime)

    [event] = stored(db)
    assert event.status == EventStatus.MALFORMED
    assert event.body == body
    assert event.last_error is not None
    assert "not valid JSON" in event.last_error
    assert report.claimed == 0


def test_an_unknown_topic_is_stored_as_unhandled(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("carts_create.json")
    assert post(client, "carts/create", body).status_code == 200
    [event] = stored(db)
    assert (event.topic, event.status) == ("carts/create", EventStatus.UNHANDLED)


def test_a_shop_chorus_never_knew_is_acknowledged_and_ignored(client: FlaskClient, shop: Shop, db: Db) -> None:
    body = webhooks.fixture_bytes("orders_create.json")
    response = post(client, "orders/create", body, shop="stranger.myshopify.com")
    assert response.status_code == 200
    assert response.json == {"result": "unknown_shop"}
    assert stored(db) == []


def test_an_uninstalled_shop_only_gets_its_privacy_webhooks_stored(
    client: FlaskClient, shop: Shop, runtime: Runtime, db: Db
) -> None:
    with db.write() as session:
        session.exec(select(Shop)).one().installed = False
    order = post(client, "orders/create", webhooks.fixture_bytes("orders_create.json"))
    redact = post(client, "customers/redact", webhooks.fixture_bytes("customers_redact.json"))

    assert (order.status_code, redact.status_code) == (200, 200)
    assert [e.topic for e in stored(db)] == ["customers/redact"]


def test_a_body_over_the_limit_gets_413_and_nothing_is_stored(
    client: FlaskClient, shop: Shop, runtime: Runtime, db: Db
) -> None:
    limit = runtime.settings.webhook_max_body_bytes
    body = b'{"pad": "' + b"x" * limit + b'"}'
    declared = post(client, "orders/create", body)

    # Chunked transfer: no Content-Length, so the limit must hold while the body is read.
    environ = EnvironBuilder(
        path="/webhooks",
        method="POST",
        headers=list(webhooks.headers("orders/create", body).items()),
        input_stream=io.BytesIO(body),
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    chunked = client.open(environ)

    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert stored(db) == []


def test_missing_topic_or_shop_headers_on_a_signed_body_are_a_client_error(
    client: FlaskClient, shop: Shop, db: Db
) -> None:
    body = webhooks.fixture_bytes("orders_create.json")
    headers = webhooks.headers("orders/create", body)
    del headers["X-Shopify-Topic"]
    assert client.post("/webhooks", data=body, headers=headers).status_code == 400
    assert stored(db) == []


def test_a_body_exactly_at_the_limit_is_accepted(client: FlaskClient, shop: Shop, runtime: Runtime, db: Db) -> None:
    limit = runtime.settings.webhook_max_body_bytes
    body = b'{"pad": "' + b"x" * (limit - 11) + b'"}'
    assert len(body) == limit
    assert post(client, "orders/create", body).status_code == 200
    assert len(stored(db)) == 1


def test_a_reinstalled_shop_is_heard_at_once(client: FlaskClient, shop: Shop, db: Db) -> None:
    with db.write() as session:
        session.exec(select(Shop)).one().installed = False
    body = webhooks.fixture_bytes("orders_create.json")
    assert post(client, "orders/create", body).json == {"result": "shop_uninstalled"}
    with db.write() as session:
        session.exec(select(Shop)).one().installed = True  # installed again (OAuth or token exchange)

    assert post(client, "orders/create", body).json == {"result": "stored"}  # not a cached "uninstalled"
