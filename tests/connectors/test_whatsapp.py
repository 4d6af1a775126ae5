"""WhatsApp through Meta's Cloud API (faked with `responses` in the shapes of Meta's OpenAPI examples), and
the webhook's signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses

from connectors.delivery import AddressProblem, DeliveryError, Failure
from connectors.whatsapp.cloud import (
    TemplateMessage,
    TextMessage,
    WhatsAppAccount,
    WhatsAppSender,
    valid_webhook_signature,
    webhook_signature,
)
from shopify_app.http import http_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp"
URL = "https://graph.test/v23.0/106540352242922/messages"
TOKEN = "EAAG-test-token"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def sender() -> WhatsAppSender:
    return WhatsAppSender(WhatsAppAccount("106540352242922", TOKEN, base_url="https://graph.test"), http_session())


@responses.activate
def test_a_template_goes_out_in_the_documented_shape_with_the_bearer_token() -> None:
    responses.post(URL, json=json.loads((FIXTURES / "message_sent.json").read_text()))

    handover = sender().send(TemplateMessage("+14155550123", "cart_reminder", "en_US", ("Ada", "Desk lamp")), NOW)

    assert (handover.provider, handover.provider_message_id) == ("whatsapp", "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww")
    [call] = responses.calls
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    sent = json.loads(call.request.body or b"")
    documented = json.loads((FIXTURES / "template_request.json").read_text())
    assert set(sent) == set(documented)  # the same fields as Meta's example
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550123",
        "type": "template",
        "template": {
            "name": "cart_reminder",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"},
                                                           {"type": "text", "text": "Desk lamp"}]}],
        },
    }  # fmt: skip


@responses.activate
def test_a_free_text_reply() -> None:
    responses.post(URL, json={"messages": [{"id": "wamid.reply"}], "messaging_product": "whatsapp"})

    sender().send(TextMessage("+14155550123", "Thanks, we are on it."), NOW)

    sent = json.loads(responses.calls[0].request.body or b"")
    assert (sent["type"], sent["text"]) == ("text", {"preview_url": False, "body": "Thanks, we are on it."})


def _graph_error(code: int) -> dict[str, object]:
    return {
        "error": {"message": f"error {code}", "type": "OAuthException", "code": code, "fbtrace_id": "Az8or2yhqkZfEZ"}
    }


@pytest.mark.parametrize(
    ("code", "status", "failure", "problem", "retry_after"),
    [
        (131047, 400, Failure.NOT_CARRIED, None, None),
        (132001, 404, Failure.NOT_CARRIED, None, None),
        (132012, 400, Failure.NOT_CARRIED, None, None),
        (131049, 400, Failure.NOT_SENT, None, timedelta(hours=24)),
        (131050, 400, Failure.REFUSED, AddressProblem.OPTED_OUT, None),
        (130429, 400, Failure.NOT_SENT, None, None),
        (190, 401, Failure.NOT_SENT, None, None),
        (1, 500, Failure.NOT_SENT, None, None),
        (100, 400, Failure.REFUSED, None, None),
    ],
)
@responses.activate
def test_each_error_code_is_classified(
    code: int, status: int, failure: Failure, problem: AddressProblem | None, retry_after: timedelta | None
) -> None:
    responses.post(URL, json=_graph_error(code), status=status)

    with pytest.raises(DeliveryError) as raised:
        sender().send(TemplateMessage("+14155550123", "cart_reminder", "en_US"), NOW)

    assert (raised.value.failure, raised.value.problem, raised.value.retry_after) == (failure, problem, retry_after)
    assert raised.value.code == str(code)
    assert TOKEN not in str(raised.value)


def test_the_webhook_signature_is_the_hex_hmac_of_the_raw_body_with_the_app_secret() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    expected = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()

    assert webhook_signature("app-secret", body) == expected
    assert valid_webhook_signature("app-secret", body, expected)
    assert not valid_webhook_signature("app-secret", body + b" ", expected)
    assert not valid_webhook_signature("other", body, expected)
    assert not valid_webhook_signature("app-secret", body, expected.removeprefix("sha256="))
