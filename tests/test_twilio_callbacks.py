"""Twilio's callbacks to a shop, signed as Twilio signs them (checked with the `twilio` package's own
validator): delivery statuses that only move forward, and texted keywords that end or restart SMS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import ConsentRecord, DeliveryReceipt, Job, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests import test_sms_flow as sms
from tests.conftest import RECEIVED_AT
from tests.support import payloads
from tests.support.db import Db
from tests.support.env import APP_URL
from tests.support.pipeline import deliver
from tests.support.webhooks import OTHER_SHOP, SHOP
from tests.test_abandoned_checkout_flow import run_worker

mail_runtime, smtp, store, sms_store, twilio = sms.mail_runtime, sms.smtp, sms.store, sms.sms_store, sms.twilio
SID = "SM" + "1" * 32
INBOUND = "SM" + "9" * 32  # the customer's texts


@pytest.fixture
def client(sms_store: Runtime) -> FlaskClient:
    return create_app(sms_store).test_client()


def key_of(db: Db) -> str:
    key = db.one(Shop).callback_key
    assert key is not None
    return key


def post(
    client: FlaskClient, path: str, form: dict[str, str], *, token: str = sms.TOKEN, sign: bool = True
) -> TestResponse:
    url = f"{APP_URL}{path}"
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)} if sign else {}
    return client.post(path, data=form, headers=headers)


def status(client: FlaskClient, db: Db, value: str, sid: str = SID, **extra: str) -> TestResponse:
    form = {"MessageSid": sid, "MessageStatus": value, "AccountSid": sms.SID, "To": sms.PHONE, "From": sms.SENDER}
    return post(client, f"/channels/twilio/{key_of(db)}/status", form | extra)


def texted(client: FlaskClient, db: Db, body: str) -> TestResponse:
    form = {"MessageSid": INBOUND, "AccountSid": sms.SID, "From": sms.PHONE, "To": sms.SENDER, "Body": body}
    return post(client, f"/channels/twilio/{key_of(db)}/inbound", form)


def sent_one(runtime: Runtime, twilio: responses.RequestsMock) -> None:
    twilio.post(sms.TWILIO, json=sms._created(SID), status=201)
    sms.abandon_by_sms(runtime)
    assert run_worker(runtime, sms.TEXTING).journeys.sent == 1


def test_delivered_then_late_and_repeated_callbacks_never_move_the_status_back(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    sent_one(sms_store, twilio)

    assert status(client, db, "delivered").status_code == 204
    for late in ("sent", "queued", "delivered", "undelivered", "failed"):
        assert status(client, db, late).status_code == 204

    message = db.one(Message)
    assert message.status == "delivered"
    assert message.delivered_at is not None
    assert len(db.all(DeliveryReceipt)) == 4  # every report that said more than "accepted" is kept


def test_undelivered_after_acceptance_is_distinct_from_a_refused_hand_over(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    sent_one(sms_store, twilio)

    status(client, db, "undelivered", ErrorCode="30003")
    status(client, db, "delivered")  # out of order: undelivered is final

    message = db.one(Message)
    assert message.status == "undelivered"
    assert message.error is not None
    assert "30003" in message.error


def test_a_callback_that_comes_before_the_hand_over_is_recorded_is_applied_then(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    status(client, db, "delivered")  # Twilio was faster than the worker's commit
    assert db.all(Message) == []

    sent_one(sms_store, twilio)

    assert db.one(Message).status == "delivered"


def test_a_callback_naming_another_shops_message_changes_nothing(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    sent_one(sms_store, twilio)
    with sms_store.session() as session, session.begin():
        other = register_shop(session, sms_store.secret_box, OTHER_SHOP, access_token="t", webhook_secret=None,
                              now=RECEIVED_AT)  # fmt: skip
        account = parse_account("sms", {"account_sid": "AC" + "7" * 32, "auth_token": "8" * 32, "from": "+14155550199"})
        connect(session, sms_store.secret_box, other, account, RECEIVED_AT)
        other_key = other.callback_key
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "AccountSid": "AC" + "7" * 32}

    answer = post(client, f"/channels/twilio/{other_key}/status", form, token="8" * 32)

    assert answer.status_code == 204
    assert db.one(Message).status == "sent"


def test_unsigned_wrongly_signed_and_unknown_callbacks_are_refused_and_store_nothing(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    sent_one(sms_store, twilio)
    path = f"/channels/twilio/{key_of(db)}/status"
    form = {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": sms.SID, "To": sms.PHONE}

    assert post(client, path, form, sign=False).status_code == 403
    assert post(client, path, form, token="0" * 32).status_code == 403
    assert post(client, path, form | {"AccountSid": "AC" + "e" * 32}).status_code == 403
    signed_for_other_url = RequestValidator(sms.TOKEN).compute_signature(f"{APP_URL}/elsewhere", form)
    assert client.post(path, data=form, headers={"X-Twilio-Signature": signed_for_other_url}).status_code == 403
    assert post(client, "/channels/twilio/no-such-key/status", form).status_code == 404
    assert post(client, f"/channels/twilio/{'k' * 500}/status", form).status_code == 404
    stop = {"From": sms.PHONE, "Body": "STOP", "AccountSid": sms.SID}
    assert post(client, f"/channels/twilio/{key_of(db)}/inbound", stop, sign=False).status_code == 403

    assert db.one(Message).status == "sent"
    assert db.all(DeliveryReceipt) == []
    assert db.all(Suppression) == []
    assert sms.PHONE not in caplog.text


def test_stop_in_a_signed_text_ends_every_later_sms_on_every_flow_and_tells_shopify(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    deliver(sms_store, "customers/create", payloads.customer(501, phone=sms.PHONE, email="ada@example.com"))
    run_worker(sms_store, RECEIVED_AT)  # the customer is in the mirror
    twilio.post(sms.TWILIO, json=sms._created(), status=201)

    answer = texted(client, db, " stop ")

    assert answer.status_code == 200
    assert answer.mimetype == "text/xml"
    assert "<Message>" not in answer.get_data(as_text=True)
    [suppression] = db.all(Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == ("sms", sms.PHONE, "unsubscribed")
    [job] = db.all(Job, Job.kind == "sms_consent")
    assert (job.arguments["customer_id"], job.arguments["state"]) == (501, "UNSUBSCRIBED")
    mutation = twilio.post(
        f"https://shopify.test/{SHOP}/admin/api/2026-10/graphql.json",
        json={"data": {"customerSmsMarketingConsentUpdate": {"customer": {"id": "gid://shopify/Customer/501"},
                                                             "userErrors": []}}},
    )  # fmt: skip
    # The checkout's SMS box, ticked after: the texted STOP still wins; nothing reaches Twilio on any later day.
    sms.abandon_by_sms(sms_store)
    run_worker(sms_store, sms.TEXTING)
    run_worker(sms_store, sms.TEXTING + timedelta(days=1))
    assert [c for c in twilio.calls if c.request.url == sms.TWILIO] == []
    assert mutation.call_count == 1
    sent = json.loads(mutation.calls[0].request.body or "")["variables"]["input"]
    assert sent["customerId"] == "gid://shopify/Customer/501"
    assert sent["smsMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"


def test_start_after_stop_lets_sms_go_out_again(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    texted(client, db, "UNSUBSCRIBE")
    texted(client, db, "Start")

    assert db.all(Suppression) == []
    # Both kept as proof: what was texted, from which message.
    stop, start = ({"keyword": word, "provider_message_id": INBOUND} for word in ("opt_out", "opt_in"))
    assert [(r.channel, r.address, r.state, r.opt_in_level, r.source, r.evidence) for r in db.all(ConsentRecord)] == [
        ("sms", sms.PHONE, "unsubscribed", None, "keyword", stop),
        ("sms", sms.PHONE, "subscribed", "single_opt_in", "keyword", start),
    ]
    sent_one(sms_store, twilio)


def test_help_gets_the_shops_help_text_and_other_words_change_nothing(
    sms_store: Runtime, client: FlaskClient, db: Db
) -> None:
    run_worker(sms_store, RECEIVED_AT)  # the shop's profile, with its name, is in the mirror
    helped = texted(client, db, "HELP")
    chat = texted(client, db, "stop sending me the lamp please")

    text = helped.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>Lumen Lamps:')
    assert "Reply STOP to opt out" in text
    assert chat.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert db.all(Suppression) == []


def test_the_receipt_time_is_when_the_callback_came(sms_store: Runtime, twilio: responses.RequestsMock, db: Db) -> None:
    sent_one(sms_store, twilio)
    later = datetime(2026, 11, 20, 11, 6, tzinfo=UTC)

    client = create_app(Runtime(sms_store.settings, sms_store.engine, sms_store.secret_box, FrozenClock(later)))
    status(client.test_client(), db, "delivered")

    assert db.one(Message).delivered_at == later


def test_once_delivered_the_estimate_is_replaced_by_what_twilio_charged(
    sms_store: Runtime, twilio: responses.RequestsMock, client: FlaskClient, db: Db
) -> None:
    sent_one(sms_store, twilio)
    estimated = db.one(Message).cost
    status(client, db, "delivered")
    [job] = db.all(Job, Job.kind == "twilio_price")
    priced = {"sid": SID, "status": "delivered", "price": "-0.00790", "price_unit": "USD"}
    twilio.get(f"https://api.twilio.com/2010-04-01/Accounts/{sms.SID}/Messages/{SID}.json", json=priced)

    run_worker(sms_store, job.run_after - timedelta(minutes=1))  # Twilio has not priced it yet
    assert db.one(Message).cost == estimated
    run_worker(sms_store, job.run_after)

    message = db.one(Message)
    assert (message.cost, message.cost_currency) == (Decimal("0.00790"), "USD")
