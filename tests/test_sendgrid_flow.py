"""Email through the shop's own SendGrid account instead of SMTP, end to end, and SendGrid's signed events:
delivered, bounced, dropped, reported as spam, opened; refused when unsigned or about another shop."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopify_app.app import create_app
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import DeliveryReceipt, Job, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from tests.connectors.test_sendgrid import _keys, sign
from tests.support.db import Db
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, describe_store, run_worker

SENDGRID = "https://api.sendgrid.com/v3/mail/send"
X_MESSAGE_ID = "W3f9aZ1kQJ2yq0tn6c8x7w"


@pytest.fixture
def keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    return _keys()


@pytest.fixture
def sendgrid() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.post(SENDGRID, status=202, headers={"X-Message-Id": X_MESSAGE_ID})
        yield fake


@pytest.fixture
def sg_store(runtime: Runtime, shop: Shop, db: Db, keys: tuple[ec.EllipticCurvePrivateKey, str]) -> Runtime:
    """The lamp shop, without SMTP, with its SendGrid account connected."""
    describe_store(runtime)
    account = {"api_key": "SG.key-id.key-secret", "from": "news@lumen.example", "event_public_key": keys[1]}
    with runtime.session() as session, session.begin():
        found = session.get(Shop, shop.id, with_for_update=True)
        assert found is not None
        connect(session, runtime.secret_box, found, parse_account("email", account), runtime.clock.now())
    return runtime


def events(client: FlaskClient, db: Db, private: ec.EllipticCurvePrivateKey, batch: list[dict[str, object]],
           *, signed: bool = True) -> TestResponse:  # fmt: skip
    body = json.dumps(batch).encode()
    headers = {"X-Twilio-Email-Event-Webhook-Timestamp": "1763636400", "Content-Type": "application/json"}
    if signed:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = sign(private, "1763636400", body)
    return client.post(f"/channels/sendgrid/{db.one(Shop).callback_key}/events", data=body, headers=headers)


ADA = {"id": 777, "email": "ada@example.com", "first_name": "Ada", "updated_at": "2026-11-20T10:00:00Z"}


def sent_one(runtime: Runtime, db: Db) -> Message:
    abandon(runtime, customer=ADA)
    assert run_worker(runtime, AFTER_DUE).journeys.sent == 1
    return db.one(Message)


def event(message: Message, kind: str, **extra: object) -> dict[str, object]:
    return {"email": "ada@example.com", "timestamp": 1763636400, "event": kind, "sg_event_id": f"ev-{kind}",
            "sg_message_id": f"{X_MESSAGE_ID}.filterdrecv-5645d9c87f-abc-1-0", "chorus_message_id": str(message.id),
            **extra}  # fmt: skip


def test_the_reminder_goes_through_sendgrid_with_the_shops_sender_and_our_message_id(
    sg_store: Runtime, sendgrid: responses.RequestsMock, db: Db
) -> None:
    message = sent_one(sg_store, db)

    [call] = sendgrid.calls
    sent = json.loads(call.request.body or b"")
    assert call.request.headers["Authorization"] == "Bearer SG.key-id.key-secret"
    assert sent["from"] == {"email": "news@lumen.example", "name": "Lumen Lamps"}
    assert sent["custom_args"] == {"chorus_message_id": str(message.id)}
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [part["type"] for part in sent["content"]] == ["text/plain", "text/html"]
    assert (message.channel, message.provider, message.provider_message_id) == ("email", "sendgrid", X_MESSAGE_ID)


def test_delivered_then_an_open_which_is_kept_but_moves_nothing(
    sg_store: Runtime, sendgrid: responses.RequestsMock, db: Db, keys: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    message = sent_one(sg_store, db)
    client = create_app(sg_store).test_client()

    assert events(client, db, keys[0], [event(message, "delivered"), event(message, "open")]).status_code == 204

    assert db.one(Message).status == "delivered"
    assert sorted((r.status, r.error_code) for r in db.all(DeliveryReceipt)) == [
        ("delivered", None), ("opened", "unreliable"),
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["bounce", "dropped"])
def test_a_bounce_or_a_drop_makes_the_message_undelivered_and_suppresses_the_address(
    sg_store: Runtime, sendgrid: responses.RequestsMock, db: Db, keys: tuple[ec.EllipticCurvePrivateKey, str],
    kind: str,
) -> None:  # fmt: skip
    message = sent_one(sg_store, db)

    events(create_app(sg_store).test_client(), db, keys[0], [event(message, kind, type="bounce", reason="550")])

    assert db.one(Message).status == "undelivered"
    [suppression] = db.all(Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", "ada@example.com", "refused")


def test_a_spam_report_is_an_unsubscribe_passed_on_to_shopify(
    sg_store: Runtime, sendgrid: responses.RequestsMock, db: Db, keys: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    message = sent_one(sg_store, db)

    events(create_app(sg_store).test_client(), db, keys[0], [event(message, "spamreport")])

    [suppression] = db.all(Suppression)
    assert (suppression.address, suppression.reason) == ("ada@example.com", "unsubscribed")
    [job] = db.all(Job, Job.kind == "email_unsubscribe")
    assert job.arguments["customer_id"] == 777


def test_unsigned_wrongly_signed_malformed_and_other_shops_events_change_nothing(
    sg_store: Runtime, sendgrid: responses.RequestsMock, db: Db, keys: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    message = sent_one(sg_store, db)
    client = create_app(sg_store).test_client()
    wrong_key, _public = _keys()
    bounce = [event(message, "bounce", type="bounce")]

    assert events(client, db, keys[0], bounce, signed=False).status_code == 403
    assert events(client, db, wrong_key, bounce).status_code == 403
    assert client.post("/channels/sendgrid/unknown/events", data=b"[]").status_code == 404
    for malformed in (b"{not json", b'{"event": "bounce"}', b"[" * 5000 + b"]" * 5000):
        headers = {"X-Twilio-Email-Event-Webhook-Timestamp": "1", "Content-Type": "application/json",
                   "X-Twilio-Email-Event-Webhook-Signature": sign(keys[0], "1", malformed)}  # fmt: skip
        answer = client.post(f"/channels/sendgrid/{db.one(Shop).callback_key}/events", data=malformed, headers=headers)
        assert answer.status_code == 400
    # Signed by this shop's key, but naming a message Chorus never gave this shop: ignored.
    stranger = event(message, "bounce", type="bounce", chorus_message_id="999999", sg_message_id="other.filter")
    assert events(client, db, keys[0], [stranger, "not an object"]).status_code == 204  # type: ignore[list-item]

    assert db.one(Message).status == "sent"
    assert db.all(Suppression) == []
