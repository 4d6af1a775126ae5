"""Meta's webhook for a shop's WhatsApp number: the subscription check, and signed statuses and messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connectors.whatsapp.cloud import webhook_signature
from shopify_app.app import create_app
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import DeliveryReceipt, Shop, Suppression, WhatsAppWindow
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.pipeline import deliver
from tests.test_abandoned_checkout_flow import run_worker

PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "meta-app-secret"
VERIFY = "verify-me"


@pytest.fixture
def client(runtime: Runtime, shop: Shop) -> FlaskClient:
    account = {"phone_number_id": PHONE_NUMBER_ID, "access_token": "EAAG-token", "app_secret": APP_SECRET,
               "verify_token": VERIFY}  # fmt: skip
    with runtime.session() as session, session.begin():
        found = session.get(Shop, shop.id, with_for_update=True)
        assert found is not None
        connect(session, runtime.secret_box, found, parse_account("whatsapp", account), runtime.clock.now())
    return create_app(runtime).test_client()


def path(db: Db) -> str:
    return f"/channels/whatsapp/{db.one(Shop).callback_key}"


def webhook(value: dict[str, Any], number_id: str = PHONE_NUMBER_ID) -> bytes:
    metadata = {"display_phone_number": "15550001111", "phone_number_id": number_id}
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [change]}]}).encode()


def post(client: FlaskClient, db: Db, body: bytes, secret: str | None = APP_SECRET) -> TestResponse:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = webhook_signature(secret, body)
    return client.post(path(db), data=body, headers=headers)


def inbound(text: str) -> dict[str, Any]:
    return {"contacts": [{"profile": {"name": "Ada"}, "wa_id": "14155550123"}],
            "messages": [{"from": "14155550123", "id": "wamid.in", "timestamp": "1763636400", "type": "text",
                          "text": {"body": text}}]}  # fmt: skip


def test_the_subscription_check_echoes_the_challenge_only_for_the_shops_verify_token(
    client: FlaskClient, db: Db
) -> None:
    ok = client.get(f"{path(db)}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444")

    assert (ok.status_code, ok.get_data(as_text=True), ok.mimetype) == (200, "1158201444", "text/plain")
    assert client.get(f"{path(db)}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1").status_code == 403
    assert client.get(f"{path(db)}?hub.mode=unsubscribe&hub.verify_token={VERIFY}&hub.challenge=1").status_code == 403
    assert client.get("/channels/whatsapp/nope?hub.mode=subscribe").status_code == 404


def test_statuses_are_kept_for_the_shops_number_only(client: FlaskClient, db: Db) -> None:
    statuses = {"statuses": [
        {"id": "wamid.A", "status": "delivered", "timestamp": "1763636400", "recipient_id": "14155550123"},
        {"id": "wamid.A", "status": "read", "timestamp": "1763636460", "recipient_id": "14155550123"},
        {"id": "wamid.B", "status": "failed", "timestamp": "1763636400", "recipient_id": "14155550123",
         "errors": [{"code": 131026, "title": "Message undeliverable"}]},
        {"id": "wamid.C", "status": "sent", "timestamp": "1763636400", "recipient_id": "14155550123"},
    ]}  # fmt: skip

    assert post(client, db, webhook(statuses)).status_code == 200
    assert post(client, db, webhook(statuses, number_id="999")).status_code == 200  # another number: not read

    kept = sorted((r.provider_message_id, r.status, r.error_code) for r in db.all(DeliveryReceipt))
    assert kept == [("wamid.A", "delivered", None), ("wamid.A", "read", None), ("wamid.B", "undelivered", "131026")]


def test_a_customers_message_opens_the_window_and_stop_then_start_end_and_restart_whatsapp(
    client: FlaskClient, db: Db
) -> None:
    assert post(client, db, webhook(inbound("Stop"))).status_code == 200

    [window] = db.all(WhatsAppWindow)
    assert window.phone == "+14155550123"
    [suppression] = db.all(Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == (
        "whatsapp",
        "+14155550123",
        "unsubscribed",
    )

    post(client, db, webhook(inbound("START")))
    assert db.all(Suppression) == []
    post(client, db, webhook(inbound("when does my lamp arrive?")))
    assert db.all(Suppression) == []


def test_unsigned_wrongly_signed_and_malformed_webhooks_are_refused_and_store_nothing(
    client: FlaskClient, db: Db
) -> None:
    body = webhook(inbound("STOP"))

    assert post(client, db, body, secret=None).status_code == 403
    assert post(client, db, body, secret="another-secret").status_code == 403
    assert post(client, db, b"{not json").status_code == 400
    assert post(client, db, b"[" * 5000 + b"]" * 5000).status_code == 400
    assert post(client, db, json.dumps({"entry": "nonsense"}).encode()).status_code == 200
    assert client.post("/channels/whatsapp/nope", data=body).status_code == 404
    assert db.all(Suppression) == []
    assert db.all(WhatsAppWindow) == []


def test_erasing_the_customer_forgets_their_number_s_window_and_opt_out(
    client: FlaskClient, runtime: Runtime, db: Db
) -> None:
    post(client, db, webhook(inbound("STOP")))
    assert len(db.all(WhatsAppWindow)) == 1

    deliver(runtime, "customers/redact", {"customer": {"id": 501, "phone": "+1 415-555-0123"}, "orders_to_redact": []})
    run_worker(runtime, RECEIVED_AT)

    assert db.all(WhatsAppWindow) == []
    assert db.all(Suppression) == []
