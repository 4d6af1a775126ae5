"""SMS through Twilio's Messages API (faked with `responses` in the documented shapes), and its signatures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from twilio.request_validator import RequestValidator

from connectors.delivery import AddressProblem, DeliveryError, Failure
from connectors.sms.twilio import (
    OutgoingSms,
    PriceUnknown,
    TwilioAccount,
    TwilioSms,
    message_price,
    twilio_signature,
    valid_twilio_signature,
)
from shopify_app.http import http_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
SID = "AC" + "a" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
BASE = "https://twilio.test"
URL = f"{BASE}/2010-04-01/Accounts/{SID}/Messages.json"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
STATUS_URL = "https://chorus.example/channels/twilio/k3y/status"


def _sender(**account: str) -> TwilioSms:
    fields = {"from_number": "+14155552345", **account}
    return TwilioSms(TwilioAccount(SID, TOKEN, status_callback=STATUS_URL, base_url=BASE, **fields), http_session())


def _created(**changes: object) -> dict[str, object]:
    body: dict[str, object] = json.loads((FIXTURES / "message_created.json").read_text())
    body.update(changes)
    return body


def _form(body: object) -> dict[str, str]:
    assert isinstance(body, str)
    return dict(parse_qsl(body))


def _error(code: int, status: int, message: str = "refused") -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@responses.activate
def test_a_message_is_created_with_the_documented_form_and_basic_auth() -> None:
    responses.post(URL, json=_created(), status=201)

    handover = _sender().send(OutgoingSms("+14155550100", "Acme: your cart is waiting. Reply STOP to opt out"), NOW)

    assert handover.provider == "twilio"
    assert handover.provider_message_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert handover.cost is None  # Twilio prices a message later, in its status callback
    [call] = responses.calls
    assert _form(call.request.body) == {
        "To": "+14155550100",
        "Body": "Acme: your cart is waiting. Reply STOP to opt out",
        "From": "+14155552345",
        "StatusCallback": STATUS_URL,
    }
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.request.headers["Authorization"] == requests.auth._basic_auth_str(SID, TOKEN)


@responses.activate
def test_a_messaging_service_picks_the_sender() -> None:
    responses.post(URL, json=_created(), status=201)

    _sender(from_number=None, messaging_service_sid="MG" + "b" * 32).send(OutgoingSms("+14155550100", "Hi"), NOW)  # type: ignore[arg-type]

    form = _form(responses.calls[0].request.body)
    assert form["MessagingServiceSid"] == "MG" + "b" * 32
    assert "From" not in form


def test_an_account_has_exactly_one_kind_of_sender() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TwilioAccount(SID, TOKEN)
    with pytest.raises(ValueError, match="exactly one"):
        TwilioAccount(SID, TOKEN, from_number="+14155552345", messaging_service_sid="MG" + "b" * 32)


@responses.activate
def test_a_reported_price_is_stored_as_a_positive_amount() -> None:
    responses.post(URL, json=_created(price="-0.00790", price_unit="usd"), status=201)

    handover = _sender().send(OutgoingSms("+14155550100", "Hi"), NOW)

    assert (handover.cost, handover.cost_currency) == (Decimal("0.00790"), "USD")


@pytest.mark.parametrize(
    ("status", "body", "headers", "failure", "problem", "retry_after"),
    [
        (400, _error(21610, 400, "Attempt to send to unsubscribed recipient"), {}, Failure.REFUSED,
         AddressProblem.OPTED_OUT, None),
        (400, _error(21211, 400, "Invalid 'To' Phone Number"), {}, Failure.REFUSED, AddressProblem.INVALID, None),
        (400, _error(21612, 400), {}, Failure.REFUSED, AddressProblem.INVALID, None),
        (400, _error(21614, 400, "'To' number is not a valid mobile number"), {}, Failure.REFUSED,
         AddressProblem.INVALID, None),
        (429, _error(20429, 429, "Too Many Requests"), {"Retry-After": "7"}, Failure.NOT_SENT, None,
         timedelta(seconds=7)),
        (400, _error(20429, 400), {}, Failure.NOT_SENT, None, None),
        (503, {"message": "Service Unavailable"}, {}, Failure.NOT_SENT, None, None),
        (401, _error(20003, 401, "Authenticate"), {}, Failure.NOT_SENT, None, None),
        (400, _error(21602, 400, "Message body is required"), {}, Failure.REFUSED, None, None),
    ],
)  # fmt: skip
@responses.activate
def test_each_error_is_classified(
    status: int,
    body: dict[str, object],
    headers: dict[str, str],
    failure: Failure,
    problem: AddressProblem | None,
    retry_after: timedelta | None,
) -> None:
    responses.post(URL, json=body, status=status, headers=headers)

    with pytest.raises(DeliveryError) as raised:
        _sender().send(OutgoingSms("+14155550100", "Hi"), NOW)

    assert raised.value.failure is failure
    assert raised.value.problem is problem
    assert raised.value.retry_after == retry_after
    assert raised.value.code == (str(body["code"]) if "code" in body else None)
    assert TOKEN not in str(raised.value)


@responses.activate
def test_an_answer_without_a_message_sid_is_unknown() -> None:
    responses.post(URL, body="<html>gateway</html>", status=201)

    with pytest.raises(DeliveryError) as raised:
        _sender().send(OutgoingSms("+14155550100", "Hi"), NOW)

    assert raised.value.failure is Failure.UNKNOWN


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once closed


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and reads the request, never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()
    for conn in held:
        conn.close()


def test_no_connection_means_not_sent(closed_port: int) -> None:
    sender = TwilioSms(TwilioAccount(SID, TOKEN, from_number="+14155552345", base_url=f"http://127.0.0.1:{closed_port}"),
                       http_session())  # fmt: skip

    with pytest.raises(DeliveryError) as raised:
        sender.send(OutgoingSms("+14155550100", "Hi"), NOW)

    assert raised.value.failure is Failure.NOT_SENT


def test_no_answer_after_the_request_was_written_is_unknown(silent_server: int) -> None:
    http = http_session()
    http.request = _with_timeout(http.request, 0.5)  # type: ignore[method-assign]
    sender = TwilioSms(TwilioAccount(SID, TOKEN, from_number="+14155552345", base_url=f"http://127.0.0.1:{silent_server}"),
                       http)  # fmt: skip

    with pytest.raises(DeliveryError) as raised:
        sender.send(OutgoingSms("+14155550100", "Hi"), NOW)

    assert raised.value.failure is Failure.UNKNOWN


def _with_timeout(request, seconds: float):
    def call(*args, **kwargs):
        kwargs["timeout"] = seconds
        return request(*args, **kwargs)

    return call


# Signatures

DOCUMENTED_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCUMENTED_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_the_signature_matches_twilios_documented_example() -> None:
    signature = twilio_signature("12345", DOCUMENTED_URL, DOCUMENTED_PARAMS.items())

    assert signature == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(DOCUMENTED_URL, DOCUMENTED_PARAMS, signature)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("https://chorus.example/channels/twilio/k3y/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
        ("https://chorus.example/channels/twilio/k3y/inbound", {"Body": "STOP ✋", "From": "+14155550100", "To": "+1"}),
        ("https://chorus.example/channels/twilio/k3y/status?x=1", {}),
    ],
)
def test_signatures_agree_with_twilios_own_validator(url: str, params: dict[str, str]) -> None:
    signature = twilio_signature(TOKEN, url, params.items())

    assert RequestValidator(TOKEN).validate(url, params, signature)
    assert valid_twilio_signature(TOKEN, url, params.items(), signature)
    assert not valid_twilio_signature(TOKEN, url + "x", params.items(), signature)
    assert not valid_twilio_signature("f" * 32, url, params.items(), signature)
    assert not valid_twilio_signature(TOKEN, url, params.items(), "")


@responses.activate
def test_a_price_is_read_once_twilio_has_one() -> None:
    sid = "SM" + "c" * 32
    url = f"{BASE}/2010-04-01/Accounts/{SID}/Messages/{sid}.json"
    account = TwilioAccount(SID, TOKEN, from_number="+14155552345", base_url=BASE)
    responses.get(url, json={"sid": sid, "price": None, "price_unit": "USD"})
    responses.get(url, json={"sid": sid, "price": "-0.0415", "price_unit": "eur"})

    with pytest.raises(PriceUnknown):
        message_price(account, http_session(), sid)
    assert message_price(account, http_session(), sid) == (Decimal("0.0415"), "EUR")
    assert responses.calls[0].request.headers["Authorization"] == requests.auth._basic_auth_str(SID, TOKEN)
    with pytest.raises(ValueError, match="not a Twilio message SID"):
        message_price(account, http_session(), "../../Accounts")
