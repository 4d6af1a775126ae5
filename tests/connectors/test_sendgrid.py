"""Email through SendGrid's Mail Send API (faked with `responses` in its documented shapes), and the event
webhook's ECDSA signature, checked against a key pair made here."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from connectors.delivery import DeliveryError, Failure
from connectors.email.message import OutgoingEmail
from connectors.email.sendgrid import SendGridAccount, SendGridSender, valid_event_signature
from shopify_app.http import http_session

API_KEY = "SG.test-key.secret-part"
URL = "https://sendgrid.test/v3/mail/send"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
EMAIL = OutgoingEmail(
    sender_name="Lumen Lamps",
    sender_address="news@lumen.example",
    recipient="ada@example.com",
    subject="You left something at Lumen Lamps",
    text="Your cart is waiting.",
    html="<p>Your cart is waiting.</p>",
    reply_to="hello@lumen.example",
    unsubscribe_url="https://chorus.example/unsubscribe/abc",
    reference="42",
)


def sender() -> SendGridSender:
    return SendGridSender(SendGridAccount(API_KEY, base_url="https://sendgrid.test"), http_session())


@responses.activate
def test_the_mail_send_request_carries_both_parts_the_one_click_headers_and_our_message_id() -> None:
    responses.post(URL, status=202, headers={"X-Message-Id": "W3f9aZ1kQJ2yq0tn6c8x7w"})

    handover = sender().send(EMAIL, NOW)

    assert (handover.provider, handover.provider_message_id) == ("sendgrid", "W3f9aZ1kQJ2yq0tn6c8x7w")
    [call] = responses.calls
    assert call.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(call.request.body or b"") == {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "news@lumen.example", "name": "Lumen Lamps"},
        "reply_to": {"email": "hello@lumen.example"},
        "subject": "You left something at Lumen Lamps",
        "content": [
            {"type": "text/plain", "value": "Your cart is waiting."},
            {"type": "text/html", "value": "<p>Your cart is waiting.</p>"},
        ],
        "headers": {
            "List-Unsubscribe": "<https://chorus.example/unsubscribe/abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "custom_args": {"chorus_message_id": "42"},
    }


@pytest.mark.parametrize(
    ("status", "failure", "retry_after"),
    [
        (400, Failure.REFUSED, None),
        (413, Failure.REFUSED, None),
        (401, Failure.NOT_SENT, None),
        (403, Failure.NOT_SENT, None),
        (429, Failure.NOT_SENT, timedelta(seconds=30)),
        (500, Failure.NOT_SENT, None),
    ],
)
@responses.activate
def test_each_refusal_is_classified(status: int, failure: Failure, retry_after: timedelta | None) -> None:
    errors = {"errors": [{"message": "The from address does not match a verified Sender Identity.", "field": "from"}]}
    responses.post(URL, json=errors, status=status, headers={"Retry-After": "30"} if status == 429 else {})

    with pytest.raises(DeliveryError) as raised:
        sender().send(EMAIL, NOW)

    assert raised.value.failure is failure
    assert raised.value.retry_after == retry_after
    assert f"SendGrid answered {status}" in raised.value.detail
    assert API_KEY not in str(raised.value)


def _keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


def sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_an_event_signature_holds_only_for_its_timestamp_body_and_key() -> None:
    private, public = _keys()
    _other, other_public = _keys()
    body = b'[{"email":"ada@example.com","event":"delivered","sg_message_id":"abc.filter0001"}]'
    signature = sign(private, "1733227200", body)

    assert valid_event_signature(public, signature, "1733227200", body)
    assert not valid_event_signature(public, signature, "1733227201", body)
    assert not valid_event_signature(public, signature, "1733227200", body.replace(b"delivered", b"bounce"))
    assert not valid_event_signature(other_public, signature, "1733227200", body)
    assert not valid_event_signature(public, "not base64!", "1733227200", body)
    assert not valid_event_signature("bm90IGEga2V5", signature, "1733227200", body)
