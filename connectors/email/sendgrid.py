"""Email through SendGrid's v3 Mail Send API with one merchant's account, and its signed event webhook.

`POST /v3/mail/send` with `Authorization: Bearer <API key>` and the message as JSON: the same parts (text
before HTML, as SendGrid requires), the same RFC 8058 one-click unsubscribe headers as over SMTP, and
Chorus's message id in `custom_args` (SendGrid's own event ids change on retries). 202 means SendGrid took
it; its `X-Message-Id` header names it in later events. 400 and 413 refuse this message for good; 401 and
403 (a wrong or narrowed key) and 429 or 5xx leave it not sent, tried again later.

Events come signed with ECDSA P-256 over SHA-256: the signature (base64 DER) in
`X-Twilio-Email-Event-Webhook-Signature`, over the timestamp header's value followed by the raw body,
checked with the public key from the account's event webhook settings.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from connectors.channel import Handover
from connectors.delivery import DeliveryError, Failure
from connectors.email.message import OutgoingEmail
from connectors.http import json_object, post, retry_after

DEFAULT_BASE_URL = "https://api.sendgrid.com"
MESSAGE_ID_ARG = "chorus_message_id"


@dataclass(frozen=True)
class SendGridAccount:
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL


class SendGridSender:
    """Hands email to SendGrid for one account (the HTTP session keeps its connections on its own)."""

    def __init__(self, account: SendGridAccount, http: requests.Session) -> None:
        self._account = account
        self._http = http

    @contextmanager
    def sessions(self) -> Iterator[None]:
        yield

    def send(self, email: OutgoingEmail, now: datetime) -> Handover:
        url = f"{self._account.base_url.rstrip('/')}/v3/mail/send"
        headers = {"Authorization": f"Bearer {self._account.api_key}"}
        response = post("SendGrid", lambda: self._http.post(url, json=mail_send_body(email), headers=headers))
        if response.status_code == 202:
            return Handover("sendgrid", response.headers.get("X-Message-Id") or None)
        body = json_object(response)
        errors = body.get("errors")
        said = "; ".join(
            str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")
        ) if isinstance(errors, list) else ""  # fmt: skip
        detail = f"SendGrid answered {response.status_code}" + (f": {said}" if said else "")
        if response.status_code in (400, 413):
            raise DeliveryError(Failure.REFUSED, detail)
        if response.status_code in (401, 403):
            raise DeliveryError(Failure.NOT_SENT, f"{detail} (check the API key and its Mail Send permission)")
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(Failure.NOT_SENT, detail, retry_after=retry_after(response))
        raise DeliveryError(Failure.REFUSED, detail)


def mail_send_body(email: OutgoingEmail) -> dict[str, Any]:
    """The Mail Send request for this email."""
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": email.recipient}]}],
        "from": {"email": email.sender_address, "name": email.sender_name},
        "subject": " ".join(email.subject.split()),
        "content": [{"type": "text/plain", "value": email.text}]
        + ([{"type": "text/html", "value": email.html}] if email.html is not None else []),
    }
    if email.reply_to:
        body["reply_to"] = {"email": email.reply_to}
    if email.unsubscribe_url:
        body["headers"] = {
            "List-Unsubscribe": f"<{email.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    if email.reference:
        body["custom_args"] = {MESSAGE_ID_ARG: email.reference}
    return body


def valid_event_signature(public_key_b64: str, signature_b64: str, timestamp: str, body: bytes) -> bool:
    """Whether SendGrid signed these bytes with the account's key."""
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64, validate=True))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
