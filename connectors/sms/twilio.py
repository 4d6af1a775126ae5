"""SMS through Twilio's Messages API, with one merchant's account; and Twilio's request signatures.

A message is created with `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form fields `To`, `Body`,
`From` or `MessagingServiceSid`, `StatusCallback`; HTTP basic auth with the account SID and auth token).
201 means Twilio took it; its status then arrives at the status callback. Failures are told apart by
Twilio's error code (the `code` of the JSON error body) and the HTTP status:

- 21610: the recipient replied STOP to this sender: refused, and their SMS consent is withdrawn;
- 21211, 21612, 21614: not a valid, routable or mobile number: refused, the address suppressed;
- 429, 20429 and 5xx: Twilio is busy or failing: not sent, tried again later (after `Retry-After` if given);
- 401/403 (e.g. 20003, wrong credentials): not sent, until the merchant fixes the account;
- any other 4xx: refused (the request itself can never succeed);
- no connection: not sent; a timeout or a dropped connection after the request was written: unknown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from connectors.channel import Handover
from connectors.delivery import AddressProblem, DeliveryError, Failure
from connectors.http import json_object, post, retry_after

DEFAULT_BASE_URL = "https://api.twilio.com"
OPTED_OUT = frozenset({21610})
INVALID_NUMBER = frozenset({21211, 21612, 21614})
RATE_LIMITED = frozenset({20429})
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None  # E.164, or
    messaging_service_sid: str | None = None  # a Messaging Service picks the sender
    status_callback: str | None = None  # where Twilio reports each message's status
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("a Twilio sender is either a From number or a Messaging Service SID, exactly one")

    @property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164
    body: str


class TwilioSms:
    """Hands text messages to Twilio for one account. The HTTP session keeps its connections between
    messages on its own; `sessions()` is there for the channel interface."""

    def __init__(self, account: TwilioAccount, http: requests.Session) -> None:
        self._account = account
        self._http = http

    @contextmanager
    def sessions(self) -> Iterator[None]:
        yield

    def send(self, message: OutgoingSms, now: datetime) -> Handover:
        account = self._account
        form = {"To": message.to, "Body": message.body}
        if account.messaging_service_sid:
            form["MessagingServiceSid"] = account.messaging_service_sid
        else:
            form["From"] = account.from_number or ""
        if account.status_callback:
            form["StatusCallback"] = account.status_callback
        response = post(
            "Twilio",
            lambda: self._http.post(account.messages_url, data=form, auth=(account.account_sid, account.auth_token)),
        )
        return _outcome(response)


class PriceUnknown(Exception):
    """Twilio has not priced the message yet, or could not be asked."""


def message_price(account: TwilioAccount, http: requests.Session, message_sid: str) -> tuple[Decimal, str]:
    """What Twilio charged for a message it sent (`GET …/Messages/{sid}.json`), as a positive amount."""
    if not MESSAGE_SID.fullmatch(message_sid):
        raise ValueError("not a Twilio message SID")
    url = account.messages_url.removesuffix(".json") + f"/{message_sid}.json"
    try:
        response = http.get(url, auth=(account.account_sid, account.auth_token))
    except requests.RequestException as exc:
        raise PriceUnknown(f"Twilio could not be asked: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise PriceUnknown(f"Twilio answered {response.status_code}")
    body = json_object(response)
    cost, currency = twilio_price(body.get("price"), body.get("price_unit"))
    if cost is None or currency is None:
        raise PriceUnknown("Twilio has not priced the message yet")
    return cost, currency


def _outcome(response: requests.Response) -> Handover:
    body = json_object(response)
    if response.status_code in (200, 201):
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise DeliveryError(Failure.UNKNOWN, f"Twilio answered {response.status_code} without a message SID")
        cost, currency = twilio_price(body.get("price"), body.get("price_unit"))
        return Handover("twilio", sid, cost, currency)
    code = body.get("code") if isinstance(body.get("code"), int) else None
    said = f"Twilio answered {response.status_code}" + (f", error {code}" if code is not None else "")
    message = body.get("message")
    detail = f"{said}: {message}" if isinstance(message, str) else said
    named = str(code) if code is not None else None
    if code in OPTED_OUT:
        raise DeliveryError(Failure.REFUSED, detail, code=named, problem=AddressProblem.OPTED_OUT)
    if code in INVALID_NUMBER:
        raise DeliveryError(Failure.REFUSED, detail, code=named, problem=AddressProblem.INVALID)
    if response.status_code == 429 or code in RATE_LIMITED or response.status_code >= 500:
        raise DeliveryError(Failure.NOT_SENT, detail, code=named, retry_after=retry_after(response))
    if response.status_code in (401, 403):
        raise DeliveryError(Failure.NOT_SENT, f"{detail} (check the account SID and auth token)", code=named)
    raise DeliveryError(Failure.REFUSED, detail, code=named)


def twilio_price(price: Any, unit: Any) -> tuple[Decimal | None, str | None]:
    """Twilio reports what a message cost as a negative amount (money leaving the account): stored positive."""
    if price in (None, ""):
        return None, None
    try:
        amount = abs(Decimal(str(price)))
    except InvalidOperation:
        return None, None
    if not amount.is_finite():
        return None, None
    return amount, str(unit).upper()[:3] if isinstance(unit, str) and unit else "USD"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """`X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth token, over the URL exactly as Twilio
    called it followed by each POST parameter's name and value, sorted by name (then value)."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())
