"""The pixel endpoint takes what browsers send as untrusted input: validated, deduplicated, limited, stored
outside the webhook queue, erased after its retention, and never a server error, whatever arrives."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopify_app.app import create_app
from shopify_app.browsing.keys import ensure_pixel_key
from shopify_app.contacts import BROWSER
from shopify_app.models import Contact, ContactIdentity, PixelEvent, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.web import pixel
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.test_abandoned_checkout_flow import run_worker

STOREFRONT = "https://lumen.example"
VARIANT, PRODUCT = 808950810, 632910392  # in Shopify's product sample
WHEN = RECEIVED_AT.isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    pixel.BY_CLIENT.clear()
    pixel.BY_ADDRESS.clear()
    yield
    pixel.BY_CLIENT.clear()
    pixel.BY_ADDRESS.clear()


@pytest.fixture
def key(runtime: Runtime, shop: Shop) -> str:
    with runtime.session() as session, session.begin():
        held = session.get(Shop, shop.id)
        assert held is not None
        held.primary_domain = "lumen.example"
        return ensure_pixel_key(held)


@pytest.fixture
def client(runtime: Runtime) -> FlaskClient:
    return create_app(runtime).test_client()


def event(
    event_id: str = "ev-1", name: str = "product_viewed", client_id: str = "client-1", **data: Any
) -> dict[str, Any]:
    if name == "product_viewed" and not data:
        data = {"productVariant": {"id": f"gid://shopify/ProductVariant/{VARIANT}",
                                   "product": {"id": str(PRODUCT)}, "price": {"amount": 0.01, "currencyCode": "USD"}},
                "url": "/products/ipod-nano?utm_source=mail&email=ada@example.com"}  # fmt: skip
    return {"id": event_id, "name": name, "timestamp": WHEN, "clientId": client_id, "data": data}


def post(client: FlaskClient, key: str, body: Any, *, content_type: str = "text/plain", origin: str | None = STOREFRONT,
         address: str = "198.51.100.20") -> TestResponse:  # fmt: skip
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Origin": origin} if origin else {}
    return client.post(f"/pixel/{key}", data=raw, content_type=content_type, headers=headers,
                       environ_base={"REMOTE_ADDR": address})  # fmt: skip


def test_a_beacon_batch_is_stored_with_the_mirrors_price_not_the_browsers(
    runtime: Runtime, key: str, client: FlaskClient, db: Db
) -> None:
    deliver(runtime, "products/create", payloads.product(updated_at="2026-11-20T09:00:00Z"))
    process(runtime)
    added: dict[str, Any] = {
        "cartLine": {"quantity": 2, "merchandise": {"id": str(VARIANT), "product": {"id": PRODUCT}}}
    }
    batch = {"events": [event(), event("ev-2", "product_added_to_cart", **added),
                        event("ev-3", "checkout_started", checkout={"token": "ck-abc", "email": "ada@example.com"}),
                        event("ev-4", "search_submitted", searchResult={"query": "lamp"})]}  # fmt: skip

    answer = post(client, key, batch)

    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == STOREFRONT
    rows = {r.event_id: r for r in db.all(PixelEvent)}
    viewed = rows["ev-1"]
    assert (viewed.name, viewed.client_id, viewed.product_id, viewed.variant_id) == (
        "product_viewed", "client-1", PRODUCT, VARIANT)  # fmt: skip
    assert viewed.mirror_price is not None
    assert str(viewed.mirror_price).startswith("199")  # the sample's price, not the 0.01 the browser claimed
    assert viewed.data == {"path": "/products/ipod-nano"}  # the query string (and the email in it) is not kept
    assert rows["ev-2"].data == {"quantity": 2}
    assert rows["ev-3"].checkout_token == "ck-abc"
    assert "ada@example.com" not in json.dumps([r.data for r in rows.values()])
    assert rows["ev-4"].data == {"query": "lamp"}
    assert db.all(WebhookEvent) == [e for e in db.all(WebhookEvent) if e.topic == "products/create"]  # not queued


def test_json_after_a_preflight_from_the_storefront_and_never_from_another_site(
    key: str, client: FlaskClient, db: Db
) -> None:
    allowed = client.options(f"/pixel/{key}", headers={"Origin": STOREFRONT, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == STOREFRONT
    assert "Content-Type" in allowed.headers["Access-Control-Allow-Headers"]
    assert client.options(f"/pixel/{key}", headers={"Origin": "https://evil.example"}).status_code == 403

    assert post(client, key, {"events": [event()]}, content_type="application/json").status_code == 204
    assert post(client, key, {"events": [event("ev-9")]}, origin="https://evil.example").status_code == 403
    sandboxed = post(client, key, {"events": [event("ev-7")]}, origin="null")  # Shopify's strict pixel sandbox
    assert sandboxed.status_code == 204
    assert "Access-Control-Allow-Origin" not in sandboxed.headers
    assert post(client, key, {"events": [event("ev-8")]}, content_type="image/png").status_code == 415
    assert [r.event_id for r in db.all(PixelEvent)] == ["ev-1", "ev-7"]


def test_replays_are_one_event_and_invalid_events_are_dropped(key: str, client: FlaskClient, db: Db) -> None:
    assert post(client, key, {"events": [event(), event()]}).status_code == 204
    assert post(client, key, {"events": [event()]}).status_code == 204  # a resent batch
    mixed = {"events": [event("ev-2", "page_viewed"), {"id": "x"}, event("ev-3", "unknown_event"),
                        event("ev-4", "checkout_started"),  # without its token: nothing to keep
                        {**event("ev-5"), "timestamp": "2020-01-01T00:00:00Z"},  # far in the past
                        {**event("ev-6"), "clientId": {"$gt": ""}}, 42, None]}  # fmt: skip
    assert post(client, key, mixed).status_code == 204

    assert sorted(r.event_id for r in db.all(PixelEvent)) == ["ev-1", "ev-2"]
    assert post(client, key, {"events": [{"id": "y"}]}).status_code == 400
    assert post(client, key, b"not json").status_code == 400
    assert post(client, key, {"batch": []}).status_code == 400


def test_limits_of_size_count_and_rate(key: str, client: FlaskClient) -> None:
    assert post(client, key, {"events": [event(f"ev-{i}") for i in range(21)]}).status_code == 413
    padded = {"events": [event(), *[{"pad": "x" * 1000}] * 19], "pad": "y" * 70_000}
    assert post(client, key, padded).status_code == 413
    assert post(client, key, b"{" + b" " * 70_000 + b"}").status_code == 413

    statuses = [post(client, key, {"events": [event(f"c-{i}", client_id="busy")]}).status_code for i in range(61)]
    assert statuses[:60] == [204] * 60
    assert statuses[60] == 429  # that browser, this minute
    assert post(client, key, {"events": [event("other", client_id="calm")]}).status_code == 204

    crowd = [post(client, key, {"events": [event(f"a-{i}", client_id=f"b-{i}")]}, address="203.0.113.5").status_code
             for i in range(601)]  # fmt: skip
    assert crowd[-1] == 429  # that address
    assert post(client, key, {"events": [event("z", client_id="z")]}, address="203.0.113.6").status_code == 204


def test_an_unknown_key_or_an_uninstalled_shop_takes_nothing(
    runtime: Runtime, key: str, client: FlaskClient, db: Db
) -> None:
    assert post(client, "no-such-key", {"events": [event()]}).status_code == 404
    assert post(client, "k" * 500, {"events": [event()]}).status_code == 404
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, db.one(Shop).id)
        assert shop is not None
        shop.installed = False
    assert post(client, key, {"events": [event()]}).status_code == 404
    assert db.all(PixelEvent) == []


def test_storefront_events_are_erased_after_their_retention(
    runtime: Runtime, key: str, client: FlaskClient, db: Db
) -> None:
    post(client, key, {"events": [event()]})
    run_worker(runtime, RECEIVED_AT + timedelta(days=89))
    assert len(db.all(PixelEvent)) == 1
    run_worker(runtime, RECEIVED_AT + timedelta(days=91))
    assert db.all(PixelEvent) == []


def test_a_redaction_erases_the_storefront_events_of_the_persons_browsers(
    runtime: Runtime, key: str, client: FlaskClient, db: Db
) -> None:
    post(client, key, {"events": [event(), event("ev-2", client_id="someone-else")]})
    with runtime.session() as session, session.begin():
        shop_id = db.one(Shop).id
        assert shop_id is not None
        ada = Contact(shop_id=shop_id, customer_id=501, created_at=RECEIVED_AT, updated_at=RECEIVED_AT)
        session.add(ada)
        session.flush()
        assert ada.id is not None
        for kind, value in (("customer", "501"), ("email", "ada@example.com"), (BROWSER, "client-1")):
            session.add(
                ContactIdentity(shop_id=shop_id, contact_id=ada.id, kind=kind, value=value, seen_at=RECEIVED_AT)
            )
    request = {"shop_id": 1, "shop_domain": db.one(Shop).domain, "customer": {"id": 501, "email": "ada@example.com"},
               "orders_to_redact": []}  # fmt: skip
    deliver(runtime, "customers/redact", request)
    process(runtime)

    assert [r.client_id for r in db.all(PixelEvent)] == ["someone-else"]


def test_thousands_of_hostile_requests_cause_no_server_error_and_real_events_still_arrive(
    key: str, client: FlaskClient, db: Db
) -> None:
    chance = random.Random(12)
    junk: list[Any] = [None, 0, -1, 2**70, "", "x" * 5000, [], {}, {"a": [1]}, True, 1.5, "gid://shopify/X/1"]
    times = [*junk, "2026-13-45T99:00:00Z", "9999-01-01T00:00:00+00:00", "2026-11-20T10:00:05"]
    types = ["text/plain", "application/json", "text/plain; charset=utf-8"]
    statuses: list[int] = []
    for i in range(3000):
        kind = chance.randrange(8)
        if kind == 0:
            body: Any = bytes(chance.randrange(256) for _ in range(chance.randrange(1, 400)))
        elif kind == 1:
            body = {"events": [{f: chance.choice(junk) for f in ("id", "name", "timestamp", "clientId", "data")}]}
        elif kind == 2:
            data = {f: chance.choice(junk) for f in ("productVariant", "url", "checkout", "cartLine", "searchResult")}
            body = {"events": [{**event(f"f-{i}"), "data": data}]}
        elif kind == 3:
            body = {"events": [event("replayed")] * chance.randrange(1, 25)}
        elif kind == 4:
            body = {"events": chance.choice(junk)}
        elif kind == 5:
            body = json.dumps({"events": [event(f"big-{i}")]}).encode() + b" " * chance.choice([10, 70_000])
        elif kind == 6:
            body = {"events": [{**event(f"t-{i}"), "timestamp": chance.choice(times)}]}
        else:
            body = {"events": [event(f"k-{i}")]}
        target = key if kind != 7 else chance.choice(["x", "k" * 40, "..%2Fadmin", "%00"])
        answer = post(client, target, body, content_type=chance.choice(types), address=f"10.0.{i % 50}.{i % 200}")
        statuses.append(answer.status_code)

    assert max(statuses) < 500
    pixel.BY_CLIENT.clear()
    assert post(client, key, {"events": [event("the-real-one", client_id="shopper")]}).status_code == 204
    assert "the-real-one" in {r.event_id for r in db.all(PixelEvent)}


def test_the_client_address_is_the_one_the_trusted_proxy_saw(db_url: str, shop: Shop) -> None:
    settings = make_settings(db_url, TRUSTED_PROXY_COUNT="1")
    runtime = Runtime.build(settings)
    try:
        client = create_app(runtime).test_client()
        # The router appends the peer it saw; what the client wrote before it is not believed.
        forwarded = {"X-Forwarded-For": "1.2.3.4, 203.0.113.77"}
        client.post(f"/subscribe/{shop.domain}", data={"email": "ada@example.com", "consent_email": "on"},
                    headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip
        with runtime.read_session() as session:
            from sqlmodel import select

            from shopify_app.models import ConsentRecord

            [record] = session.exec(select(ConsentRecord)).all()
        assert record.evidence is not None
        assert record.evidence["ip"] == "203.0.113.77"
    finally:
        runtime.close()
