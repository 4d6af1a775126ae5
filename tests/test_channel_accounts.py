"""A merchant's own provider accounts, connected through the `chorus channels` commands and the admin API."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask.testing import FlaskClient
from sqlmodel import select

from shopify_app.cli import main
from shopify_app.crypto import SecretBox, generate_key
from shopify_app.key_rotation import rotate_secrets
from shopify_app.messaging.accounts import InvalidAccount, parse_account, secrets_of
from shopify_app.models import ChannelAccount, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support.env import APP_URL, ENCRYPTION_KEY, chorus_env
from tests.support.shopify_auth import bearer, session_token
from tests.support.webhooks import OTHER_SHOP, SHOP

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
SERVICE_SID = "MG" + "fedcba9876543210" * 2


def _public_key(pem: bool = False) -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    if pem:
        return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


def chorus(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=chorus_env(db_url))


def _accounts(runtime: Runtime) -> list[ChannelAccount]:
    with runtime.read_session() as session:
        return list(session.exec(select(ChannelAccount)))


def test_connecting_sms_stores_the_token_encrypted_and_lists_the_callbacks_without_it(
    db_url: str, runtime: Runtime, shop: Shop
) -> None:
    result = chorus(db_url, "channels", "connect", "sms", "--shop", SHOP, "--account-sid", ACCOUNT_SID,
                    "--auth-token", AUTH_TOKEN, "--from", "+1 (415) 555-0123")  # fmt: skip
    assert result.exit_code == 0, result.output

    [account] = _accounts(runtime)
    assert (account.channel, account.provider) == ("sms", "twilio")
    assert account.settings == {"account_sid": ACCOUNT_SID, "from": "+14155550123"}  # normalised to E.164
    assert AUTH_TOKEN not in account.secrets_ciphertext
    assert secrets_of(SecretBox((ENCRYPTION_KEY,)), account) == {"auth_token": AUTH_TOKEN}

    listed = chorus(db_url, "channels", "list", "--shop", SHOP, "--json")
    assert listed.exit_code == 0, listed.output
    assert AUTH_TOKEN not in listed.output
    channels = {c["channel"]: c for c in json.loads(listed.output)["channels"]}
    with runtime.read_session() as session:
        key = session.exec(select(Shop.callback_key).where(Shop.domain == SHOP)).one()
    assert key is not None
    assert len(key) >= 16
    assert channels["sms"]["state"] == "connected"
    assert channels["sms"]["callbacks"] == {
        "status": f"{APP_URL}/channels/twilio/{key}/status",
        "inbound": f"{APP_URL}/channels/twilio/{key}/inbound",
    }
    assert channels["whatsapp"] == {"channel": "whatsapp", "state": "not_connected", "rates": []}  # none of its own
    text = chorus(db_url, "channels", "list", "--shop", SHOP).output
    assert f"status callback: {APP_URL}/channels/twilio/{key}/status" in text


def test_reconnecting_replaces_the_account_and_keeps_the_callback_key(
    db_url: str, runtime: Runtime, shop: Shop
) -> None:
    args = ("channels", "connect", "sms", "--shop", SHOP, "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN)
    assert chorus(db_url, *args, "--from", "+14155550123").exit_code == 0
    with runtime.read_session() as session:
        first_key = session.exec(select(Shop.callback_key)).one()
    assert chorus(db_url, *args, "--messaging-service-sid", SERVICE_SID).exit_code == 0

    [account] = _accounts(runtime)
    assert account.settings == {"account_sid": ACCOUNT_SID, "messaging_service_sid": SERVICE_SID}
    with runtime.read_session() as session:
        assert session.exec(select(Shop.callback_key)).one() == first_key


def test_whatsapp_and_sendgrid_accounts_keep_every_secret_encrypted(db_url: str, runtime: Runtime, shop: Shop) -> None:
    public_key = _public_key()
    whatsapp = chorus(db_url, "channels", "connect", "whatsapp", "--shop", SHOP,
                      "--phone-number-id", "106540352242922", "--access-token", "EAAGm0PX4ZCpsBA",
                      "--app-secret", "a1b2c3d4e5f6", "--verify-token", "v3rify")  # fmt: skip
    email = chorus(db_url, "channels", "connect", "email", "--shop", SHOP, "--provider", "sendgrid",
                   "--api-key", "SG.abc_DEF-1.xyz_987", "--from", "Acme <news@acme.example>",
                   "--event-public-key", public_key)  # fmt: skip
    assert whatsapp.exit_code == 0, whatsapp.output
    assert email.exit_code == 0, email.output

    accounts = {a.channel: a for a in _accounts(runtime)}
    box = SecretBox((ENCRYPTION_KEY,))
    assert accounts["whatsapp"].settings == {"phone_number_id": "106540352242922"}
    assert secrets_of(box, accounts["whatsapp"]) == {
        "access_token": "EAAGm0PX4ZCpsBA", "app_secret": "a1b2c3d4e5f6", "verify_token": "v3rify",
    }  # fmt: skip
    assert accounts["email"].settings == {"from": "news@acme.example", "event_public_key": public_key}
    assert secrets_of(box, accounts["email"]) == {"api_key": "SG.abc_DEF-1.xyz_987"}
    listed = chorus(db_url, "channels", "list", "--shop", SHOP, "--json").output
    for secret in ("EAAGm0PX4ZCpsBA", "a1b2c3d4e5f6", "v3rify", "SG.abc_DEF-1.xyz_987"):
        assert secret not in listed
    callbacks = {c["channel"]: c.get("callbacks") for c in json.loads(listed)["channels"]}
    assert set(callbacks["whatsapp"]) == {"webhook"}
    assert callbacks["email"]["events"].endswith("/events")


def test_bad_account_values_are_refused_with_every_problem_and_nothing_stored(
    db_url: str, runtime: Runtime, shop: Shop
) -> None:
    result = chorus(db_url, "channels", "connect", "sms", "--shop", SHOP, "--account-sid", "AC123",
                    "--auth-token", "has space", "--from", "+1 555",
                    "--messaging-service-sid", SERVICE_SID)  # fmt: skip

    assert result.exit_code == 2
    assert "account_sid: expected AC followed by 32 hexadecimal digits" in result.output
    assert "auth_token: expected printable characters without spaces" in result.output
    assert "from: expected a phone number in international form" in result.output
    assert "exactly one" in result.output
    assert _accounts(runtime) == []
    unknown_shop = chorus(db_url, "channels", "list", "--shop", "nowhere.myshopify.com")
    assert unknown_shop.exit_code == 2
    assert "no shop" in unknown_shop.output


@pytest.mark.parametrize(
    ("channel", "values", "problem"),
    [
        ("sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, "exactly one"),
        ("whatsapp", {"phone_number_id": "12ab", "access_token": "t", "app_secret": "s", "verify_token": "v"},
         "phone_number_id: expected digits only"),
        ("email", {"api_key": "not-a-key", "from": "x@y.example", "event_public_key": "AAAA"}, "api_key"),
        ("email", {"api_key": "SG.a.b", "from": "nobody", "event_public_key": _public_key()}, "from"),
        ("email", {"api_key": "SG.a.b", "from": "x@y.example", "event_public_key": "bm90IGEga2V5"},
         "event_public_key: expected the base64 ECDSA public key"),
        ("email", {"provider": "mailgun", "api_key": "SG.a.b", "from": "x@y.example",
                   "event_public_key": _public_key()}, "provider"),
        ("sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155550123", "extra": "1"},
         "unknown field(s) for sms: extra"),
        ("sms", {"account_sid": ACCOUNT_SID, "auth_token": ["a"], "from": "+14155550123"}, "auth_token: expected"),
        ("fax", {}, "unknown channel"),
    ],
)  # fmt: skip
def test_each_invalid_field_is_named(channel: str, values: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidAccount) as refused:
        parse_account(channel, values)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_a_pem_public_key_is_stored_as_base64_der() -> None:
    form = parse_account(
        "email", {"api_key": "SG.a.b", "from": "x@y.example", "event_public_key": _public_key(pem=True)}
    )
    assert base64.b64decode(form.settings["event_public_key"])[:2] == b"\x30\x59"  # a DER SubjectPublicKeyInfo


def test_disconnect_forgets_the_account(db_url: str, runtime: Runtime, shop: Shop) -> None:
    chorus(db_url, "channels", "connect", "sms", "--shop", SHOP, "--account-sid", ACCOUNT_SID,
           "--auth-token", AUTH_TOKEN, "--from", "+14155550123")  # fmt: skip

    assert chorus(db_url, "channels", "disconnect", "sms", "--shop", SHOP).exit_code == 0
    assert _accounts(runtime) == []
    again = chorus(db_url, "channels", "disconnect", "sms", "--shop", SHOP)
    assert again.exit_code == 2
    assert "sms is not connected" in again.output


def test_email_through_the_deployments_smtp_server_is_listed_as_its_default(db_url: str, shop: Shop) -> None:
    env = chorus_env(db_url, SMTP_URL="smtp://127.0.0.1:2525", EMAIL_FROM="shop@chorus.example")
    result = CliRunner().invoke(main, ["channels", "list", "--shop", SHOP, "--json"], env=env)
    email = next(c for c in json.loads(result.output)["channels"] if c["channel"] == "email")
    assert email["state"] == "connected"
    assert email["provider"] == "smtp"
    assert email["deployment_default"] is True


def test_key_rotation_re_encrypts_channel_secrets(runtime: Runtime, shop: Shop) -> None:
    form = parse_account("sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155550123"})
    from shopify_app.messaging.accounts import connect

    with runtime.session() as session, session.begin():
        connect(session, runtime.secret_box, session.get(Shop, shop.id), form, RECEIVED_AT)  # type: ignore[arg-type]
    newer = generate_key()
    rotated_box = SecretBox((newer, ENCRYPTION_KEY))
    with runtime.session() as session, session.begin():
        assert rotate_secrets(session, rotated_box) >= 2  # the shop's token and the account's secrets

    [account] = _accounts(runtime)
    assert secrets_of(SecretBox((newer,)), account) == {"auth_token": AUTH_TOKEN}


# The admin API


def test_the_api_connects_lists_and_disconnects_a_channel_for_the_session_shop_only(
    client: FlaskClient, runtime: Runtime, shop: Shop
) -> None:
    with runtime.session() as session, session.begin():
        register_shop(session, runtime.secret_box, OTHER_SHOP, access_token="shpat_other", webhook_secret=None,
                      now=RECEIVED_AT)  # fmt: skip
    mine, theirs = bearer(session_token(SHOP)), bearer(session_token(OTHER_SHOP))
    values = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+44 20 7946 0958"}

    put = client.put("/api/channels/sms", json=values, headers=mine)
    assert put.status_code == 200, put.get_json()
    described = put.get_json()["channel"]
    assert described["settings"] == {"account_sid": ACCOUNT_SID, "from": "+442079460958"}
    assert AUTH_TOKEN not in put.get_data(as_text=True)

    listed = client.get("/api/channels", headers=mine).get_json()["channels"]
    assert next(c for c in listed if c["channel"] == "sms")["state"] == "connected"
    assert AUTH_TOKEN not in json.dumps(listed)
    others = client.get("/api/channels", headers=theirs).get_json()["channels"]
    assert next(c for c in others if c["channel"] == "sms")["state"] == "not_connected"
    assert client.delete("/api/channels/sms", headers=theirs).status_code == 404  # not theirs to remove

    assert client.delete("/api/channels/sms", headers=mine).status_code == 204
    assert _accounts(runtime) == []


def test_the_api_refuses_bad_accounts_with_the_problems(client: FlaskClient, runtime: Runtime, shop: Shop) -> None:
    headers = bearer(session_token(SHOP))

    bad = client.put("/api/channels/sms", json={"account_sid": "nope"}, headers=headers)
    assert bad.status_code == 400
    problems = bad.get_json()["problems"]
    assert "auth_token is required" in problems
    assert any(p.startswith("account_sid:") for p in problems)
    assert (
        client.put("/api/channels/sms", data="[1]", content_type="application/json", headers=headers).status_code == 400
    )
    assert client.put("/api/channels/fax", json={}, headers=headers).status_code == 404
    assert client.get("/api/channels").status_code == 401
    assert _accounts(runtime) == []


# Test messages

TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _connect_sms(db_url: str) -> None:
    result = chorus(db_url, "channels", "connect", "sms", "--shop", SHOP, "--account-sid", ACCOUNT_SID,
                    "--auth-token", AUTH_TOKEN, "--from", "+14155552345")  # fmt: skip
    assert result.exit_code == 0, result.output


@responses.activate
def test_a_test_sms_goes_out_through_the_shops_account_and_is_no_message_of_any_journey(
    db_url: str, runtime: Runtime, shop: Shop
) -> None:
    _connect_sms(db_url)
    responses.post(TWILIO, json={"sid": "SM" + "4" * 32, "status": "queued"}, status=201)

    result = chorus(db_url, "channels", "test", "sms", "--shop", SHOP, "--to", "+1 415 555 0100")

    assert result.exit_code == 0, result.output
    assert f"sent through twilio: SM{'4' * 32}" in result.output
    form = dict(parse_qsl(str(responses.calls[0].request.body)))
    assert form["To"] == "+14155550100"
    assert form["Body"].endswith("Reply STOP to opt out")
    with runtime.read_session() as session:
        assert session.exec(select(Message)).all() == []  # never counted


@responses.activate
def test_a_test_message_that_cannot_go_says_why(db_url: str, shop: Shop) -> None:
    not_set_up = chorus(db_url, "channels", "test", "sms", "--shop", SHOP, "--to", "+14155550100")
    assert not_set_up.exit_code == 2
    assert "sms is not set up" in not_set_up.output

    _connect_sms(db_url)
    bad_number = chorus(db_url, "channels", "test", "sms", "--shop", SHOP, "--to", "not a number")
    assert bad_number.exit_code == 2
    assert "expected a phone number" in bad_number.output

    responses.post(TWILIO, json={"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}, status=400)
    refused = chorus(db_url, "channels", "test", "sms", "--shop", SHOP, "--to", "+14155550100")
    assert refused.exit_code == 1
    assert "not sent (refused): Twilio answered 400, error 21211" in refused.output


@responses.activate
def test_the_api_sends_a_test_message(client: FlaskClient, db_url: str, shop: Shop) -> None:
    _connect_sms(db_url)
    responses.post(TWILIO, json={"sid": "SM" + "5" * 32, "status": "queued"}, status=201)
    headers = bearer(session_token(SHOP))

    sent = client.post("/api/channels/sms/test", json={"to": "+14155550100"}, headers=headers)
    assert sent.status_code == 200
    assert sent.get_json() == {"sent": True, "provider": "twilio", "provider_message_id": "SM" + "5" * 32}
    assert client.post("/api/channels/sms/test", json={}, headers=headers).status_code == 400
    assert client.post("/api/channels/sms/test", json={"to": "+1 555"}, headers=headers).status_code == 400
    assert client.post("/api/channels/whatsapp/test", json={"to": "+14155550100"}, headers=headers).status_code == 400
    responses.post(TWILIO, json={"code": 21610, "message": "unsubscribed recipient", "status": 400}, status=400)
    refused = client.post("/api/channels/sms/test", json={"to": "+14155550100"}, headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "21610"
