"""WhatsApp messages through Meta's Cloud API with one merchant's business number, and its webhook signatures.

`POST /{version}/{phone-number-id}/messages` with the system user's access token (`Authorization: Bearer`).
Marketing goes out as an approved template (its name, language and body parameters); free text only as a
reply inside the 24 hours after the customer's last message. 200 names the message (`messages[0].id`, a
`wamid.…`); its statuses arrive at the webhook. Errors are told apart by Graph's `error.code`:

- 131047 (outside the 24-hour window) and 132000-132999 (the template: missing, paused, wrong parameters):
  not carried on this channel (another of the step's channels may carry it), the reason kept;
- 131049 (Meta's per-user marketing limit): not sent, not before 24 hours;
- 131050 (the user stopped marketing messages from the business): refused, an opt-out;
- 130429 (throughput), 429 and 5xx: not sent, tried again later;
- 190 or 401 (the token expired or was revoked): not sent, until the merchant connects a new token.

The webhook's `X-Hub-Signature-256` is `sha256=` and the hex HMAC-SHA256 of the raw body, keyed with the app
secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from connectors.channel import Handover
from connectors.delivery import AddressProblem, DeliveryError, Failure
from connectors.http import json_object, post, retry_after

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v23.0"
OUTSIDE_WINDOW = 131047
MARKETING_LIMIT = 131049
STOPPED_MARKETING = 131050
THROUGHPUT = 130429
TOKEN_INVALID = 190
MARKETING_LIMIT_WAIT = timedelta(hours=24)


@dataclass(frozen=True)
class WhatsAppAccount:
    phone_number_id: str
    access_token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    version: str = DEFAULT_VERSION

    @property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.version}/{self.phone_number_id}/messages"


@dataclass(frozen=True)
class TemplateMessage:
    to: str  # E.164
    name: str
    language: str  # e.g. "en_US"
    parameters: Sequence[str] = ()  # the body's {{1}}, {{2}}... in order


@dataclass(frozen=True)
class TextMessage:
    to: str  # E.164
    body: str


OutgoingWhatsApp = TemplateMessage | TextMessage


def request_body(message: OutgoingWhatsApp) -> dict[str, Any]:
    """The Cloud API's message object: the number without its +, as WhatsApp ids are written."""
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": message.to.lstrip("+")}
    if isinstance(message, TextMessage):
        return base | {"type": "text", "text": {"preview_url": False, "body": message.body}}
    template: dict[str, Any] = {"name": message.name, "language": {"code": message.language}}
    if message.parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": value} for value in message.parameters]}
        ]
    return base | {"type": "template", "template": template}


class WhatsAppSender:
    def __init__(self, account: WhatsAppAccount, http: requests.Session) -> None:
        self._account = account
        self._http = http

    @contextmanager
    def sessions(self) -> Iterator[None]:
        yield

    def send(self, message: OutgoingWhatsApp, now: datetime) -> Handover:
        headers = {"Authorization": f"Bearer {self._account.access_token}"}
        body = request_body(message)
        url = self._account.messages_url
        response = post("WhatsApp", lambda: self._http.post(url, json=body, headers=headers))
        answer = json_object(response)
        if response.status_code == 200:
            messages = answer.get("messages")
            first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
            wamid = first.get("id")
            if not isinstance(wamid, str) or not wamid:
                raise DeliveryError(Failure.UNKNOWN, "WhatsApp answered 200 without a message id")
            return Handover("whatsapp", wamid)
        raise _refusal(response, answer)


def _refusal(response: requests.Response, answer: dict[str, Any]) -> DeliveryError:
    found = answer.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    said = error.get("message") if isinstance(error.get("message"), str) else None
    detail = f"WhatsApp answered {response.status_code}" + (f", error {code}" if code is not None else "")
    detail += f": {said}" if said else ""
    named = str(code) if code is not None else None
    if code == STOPPED_MARKETING:
        return DeliveryError(Failure.REFUSED, detail, code=named, problem=AddressProblem.OPTED_OUT)
    if code == OUTSIDE_WINDOW or (code is not None and 132000 <= code <= 132999):
        return DeliveryError(Failure.NOT_CARRIED, detail, code=named)
    if code == MARKETING_LIMIT:
        return DeliveryError(Failure.NOT_SENT, detail, code=named, retry_after=MARKETING_LIMIT_WAIT)
    if code == THROUGHPUT or response.status_code == 429 or response.status_code >= 500:
        return DeliveryError(Failure.NOT_SENT, detail, code=named, retry_after=retry_after(response))
    if code == TOKEN_INVALID or response.status_code == 401:
        return DeliveryError(Failure.NOT_SENT, f"{detail} (connect a new access token)", code=named)
    return DeliveryError(Failure.REFUSED, detail, code=named)


def webhook_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def valid_webhook_signature(app_secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(webhook_signature(app_secret, body).encode(), header.encode())
