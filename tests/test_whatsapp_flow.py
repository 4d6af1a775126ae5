"""Abandoned checkout reminders on WhatsApp, end to end: the customer's own opt-in (START to the shop's
number), the merchant's approved template for the step, Meta's Cloud API faked with `responses`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from click.testing import CliRunner

from connectors.whatsapp.cloud import webhook_signature
from shopify_app.app import create_app
from shopify_app.cli import main
from shopify_app.journeys.tuning import StepChange, configure
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import Decision, Journey, Message, Shop
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, describe_store, mail_runtime, run_worker, smtp, store
from tests.test_whatsapp_callbacks import APP_SECRET, PHONE_NUMBER_ID, inbound, webhook

GRAPH = f"https://graph.facebook.com/v23.0/{PHONE_NUMBER_ID}/messages"
PHONE = "+14155550123"
__all__ = ["mail_runtime", "smtp", "store"]  # fixtures


@pytest.fixture
def graph() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.post(GRAPH, json={"messaging_product": "whatsapp", "contacts": [{"input": PHONE, "wa_id": PHONE[1:]}],
                               "messages": [{"id": "wamid.HBgLMTQxNTU1NTAxMjM"}]})  # fmt: skip
        yield fake


@pytest.fixture
def wa_store(runtime: Runtime, shop: Shop, db: Db) -> Runtime:
    """The lamp shop with its WhatsApp number connected and its reminder sent on WhatsApp first."""
    describe_store(runtime)
    account = {"phone_number_id": PHONE_NUMBER_ID, "access_token": "EAAG-token", "app_secret": APP_SECRET,
               "verify_token": "v"}  # fmt: skip
    with runtime.session() as session, session.begin():
        found = session.get(Shop, shop.id, with_for_update=True)
        assert found is not None
        connect(session, runtime.secret_box, found, parse_account("whatsapp", account), RECEIVED_AT)
        configure(session, found.id or 0, runtime.flows, "abandoned_checkout",
                  steps={"reminder": StepChange(channels=("whatsapp", "email"))}, now=RECEIVED_AT)  # fmt: skip
    return runtime


def set_template(db_url: str) -> None:
    result = CliRunner().invoke(main, [
        "channels", "templates", "set", "--shop", SHOP, "--flow", "abandoned_checkout", "--step", "reminder",
        "--name", "cart_reminder", "--language", "en_US", "--param", "{{ first_name }}",
        "--param", "{{ items[0].title }}", "--param", "{{ recovery_url }}",
    ], env=chorus_env(db_url))  # fmt: skip
    assert result.exit_code == 0, result.output


def opt_in(runtime: Runtime, db: Db) -> None:
    body = webhook(inbound("START"))
    headers = {"X-Hub-Signature-256": webhook_signature(APP_SECRET, body), "Content-Type": "application/json"}
    answer = create_app(runtime).test_client().post(f"/channels/whatsapp/{db.one(Shop).callback_key}", data=body,
                                                    headers=headers)  # fmt: skip
    assert answer.status_code == 200


def abandon_with_number(runtime: Runtime) -> None:
    abandon(runtime, buyer_accepts_marketing=False, sms_marketing_phone=PHONE)


def test_an_opted_in_customer_gets_the_reminder_as_the_merchants_template(
    wa_store: Runtime, graph: responses.RequestsMock, db: Db, db_url: str
) -> None:
    set_template(db_url)
    opt_in(wa_store, db)
    abandon_with_number(wa_store)

    assert run_worker(wa_store, AFTER_DUE).journeys.sent == 1

    [call] = graph.calls
    sent = json.loads(call.request.body or b"")
    assert call.request.headers["Authorization"] == "Bearer EAAG-token"
    assert (sent["to"], sent["type"], sent["template"]["name"]) == ("14155550123", "template", "cart_reminder")
    first_name, title, link = [p["text"] for p in sent["template"]["components"][0]["parameters"]]
    assert (first_name, title) == ("John", "IPod Nano - 8GB")
    assert link.startswith("https://chorus.example/l/")  # a short link, as in every other channel
    message = db.one(Message)
    assert (message.channel, message.address, message.provider) == ("whatsapp", PHONE, "whatsapp")
    assert message.provider_message_id == "wamid.HBgLMTQxNTU1NTAxMjM"
    # Meta's answer has no price: one marketing template to a US number, at the shipped rate.
    assert (message.cost, message.cost_currency) == (Decimal("0.0250"), "USD")


def test_without_the_customers_opt_in_nothing_goes_on_whatsapp(
    wa_store: Runtime, graph: responses.RequestsMock, db: Db, db_url: str
) -> None:
    set_template(db_url)
    abandon_with_number(wa_store)

    run_worker(wa_store, AFTER_DUE)

    assert len(graph.calls) == 0
    assert db.all(Message) == []


def test_without_a_template_for_the_step_the_step_gives_way_to_the_next_channel(
    wa_store: Runtime, graph: responses.RequestsMock, db: Db
) -> None:
    opt_in(wa_store, db)
    abandon_with_number(wa_store)

    run_worker(wa_store, AFTER_DUE)

    assert len(graph.calls) == 0
    assert [(m.channel, m.status) for m in db.all(Message)] == [("whatsapp", "cancelled")]
    checked = [d.detail["channels"] for d in db.all(Decision) if d.outcome in ("skipped", "deferred")]
    assert {"channel": "whatsapp", "outcome": "no_template"} in checked[0]


def test_templates_are_checked_before_they_are_stored(wa_store: Runtime, db_url: str) -> None:
    result = CliRunner().invoke(main, [
        "channels", "templates", "set", "--shop", SHOP, "--flow", "abandoned_checkout", "--step", "nope",
        "--name", "Cart Reminder", "--language", "english", "--param", "{{ first_name",
        "--param", "https://lumen.example/sale",
    ], env=chorus_env(db_url))  # fmt: skip

    assert result.exit_code == 2
    for problem in ("step: abandoned_checkout has no send step 'nope'", "name: expected", "language: expected",
                    "params[1]:", "params[2]: a link written out would go uncounted"):  # fmt: skip
        assert problem in result.output


def test_the_api_sets_a_template(wa_store: Runtime) -> None:
    client = create_app(wa_store).test_client()
    headers = bearer(session_token(SHOP))
    body = {"flow": "welcome", "step": "welcome_1", "name": "welcome", "language": "de", "params": ["{{ shop_name }}"],
            "category": "utility"}  # fmt: skip

    answer = client.put("/api/channels/whatsapp/templates", json=body, headers=headers)

    assert answer.status_code == 200
    assert answer.get_json()["template"] == body
    bad = client.put("/api/channels/whatsapp/templates", json=body | {"flow": "nope"}, headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["problems"] == ["flow: unknown flow 'nope'"]
    promo = client.put("/api/channels/whatsapp/templates", json=body | {"category": "promotional"}, headers=headers)
    assert promo.status_code == 400
    assert promo.get_json()["problems"] == [
        "category: expected one of marketing, utility, authentication, as Meta approved the template"
    ]
    not_text = client.put("/api/channels/whatsapp/templates", json=body | {"category": 1}, headers=headers)
    assert not_text.status_code == 400
    unnamed = body.copy()
    del unnamed["category"]
    assert client.put("/api/channels/whatsapp/templates", json=unnamed, headers=headers).get_json()["template"] == (
        unnamed | {"category": "marketing"}
    )


@pytest.fixture
def wa_mail_store(store: Runtime, db: Db) -> Runtime:
    """The lamp shop sending email through SMTP, with its WhatsApp number connected and tried first."""
    account = {"phone_number_id": PHONE_NUMBER_ID, "access_token": "EAAG-token", "app_secret": APP_SECRET,
               "verify_token": "v"}  # fmt: skip
    with store.session() as session, session.begin():
        found = session.get(Shop, db.one(Shop).id, with_for_update=True)
        assert found is not None
        connect(session, store.secret_box, found, parse_account("whatsapp", account), RECEIVED_AT)
        configure(session, found.id or 0, store.flows, "abandoned_checkout",
                  steps={"reminder": StepChange(channels=("whatsapp", "email"))}, now=RECEIVED_AT)  # fmt: skip
    return store


@pytest.mark.parametrize(
    ("code", "reason"),
    [(131047, "outside_window"), (132001, "channel_refused"), (132012, "channel_refused")],
)
def test_a_message_whatsapp_will_not_carry_goes_out_on_the_steps_next_channel(
    wa_mail_store: Runtime,
    graph: responses.RequestsMock,
    smtp: SmtpServer,
    db: Db,
    db_url: str,
    code: int,
    reason: str,
) -> None:
    refused = {"error": {"message": "(#132001) Template name does not exist in the translation", "code": code,
                         "type": "OAuthException", "fbtrace_id": "A2"}}  # fmt: skip
    graph.replace(responses.POST, GRAPH, json=refused, status=400)
    set_template(db_url)
    opt_in(wa_mail_store, db)
    abandon(wa_mail_store, sms_marketing_phone=PHONE)  # email consent, and a WhatsApp opt-in

    first = run_worker(wa_mail_store, AFTER_DUE)
    assert (first.journeys.sent, len(graph.calls), smtp.sink.received) == (0, 1, [])
    # The worker's next pass decides the step again, without WhatsApp; nothing is tried twice on it.
    assert run_worker(wa_mail_store, AFTER_DUE + timedelta(seconds=5)).journeys.sent == 1

    assert len(graph.calls) == 1
    assert len(smtp.sink.received) == 1
    assert sorted((m.channel, m.status) for m in db.all(Message)) == [("email", "sent"), ("whatsapp", "failed")]
    failed = next(m for m in db.all(Message) if m.channel == "whatsapp")
    assert f"error {code}" in (failed.error or "")
    [sending] = [d for d in db.all(Decision) if d.outcome == "sending" and d.detail["channel"] == "email"]
    assert sending.detail["channels"][0] == {"channel": "whatsapp", "outcome": reason}
    assert [d.reason for d in db.all(Decision) if d.outcome == "failed"] == [reason]
    # Moving on, the journey forgets it: the next step may try WhatsApp again.
    assert db.one(Journey).unusable == {}


def test_metas_per_user_marketing_limit_holds_the_message_for_a_day(
    wa_store: Runtime, graph: responses.RequestsMock, db: Db, db_url: str
) -> None:
    limit = {"error": {"message": "Message failed to send because of a per-user marketing limit", "code": 131049,
                       "type": "OAuthException", "fbtrace_id": "A1"}}  # fmt: skip
    graph.replace(responses.POST, GRAPH, json=limit, status=400)
    set_template(db_url)
    opt_in(wa_store, db)
    abandon_with_number(wa_store)

    assert run_worker(wa_store, AFTER_DUE).journeys.deferred == 1
    graph.replace(responses.POST, GRAPH, json={"messages": [{"id": "wamid.later"}], "messaging_product": "whatsapp"})
    assert run_worker(wa_store, AFTER_DUE + timedelta(hours=23)).journeys.sent == 0  # not before 24 hours
    assert run_worker(wa_store, AFTER_DUE + timedelta(hours=24, minutes=1)).journeys.sent == 1
    assert db.one(Message).provider_message_id == "wamid.later"


def test_the_channel_list_shows_each_steps_template(wa_store: Runtime, db_url: str) -> None:
    set_template(db_url)

    listed = CliRunner().invoke(main, ["channels", "list", "--shop", SHOP], env=chorus_env(db_url))
    as_json = CliRunner().invoke(main, ["channels", "list", "--shop", SHOP, "--json"], env=chorus_env(db_url))

    assert "abandoned_checkout/reminder: template cart_reminder (en_US), 3 parameter(s), marketing" in listed.output
    whatsapp = next(c for c in json.loads(as_json.output)["channels"] if c["channel"] == "whatsapp")
    params = ["{{ first_name }}", "{{ items[0].title }}", "{{ recovery_url }}"]
    assert whatsapp["templates"] == [
        {
            "flow": "abandoned_checkout",
            "step": "reminder",
            "name": "cart_reminder",
            "language": "en_US",
            "params": params,
            "category": "marketing",
        }
    ]
    assert "EAAG-token" not in as_json.output


def test_help_on_whatsapp_gets_the_shops_help_text_as_free_text_inside_the_window_only(
    wa_store: Runtime, graph: responses.RequestsMock, db: Db
) -> None:
    run_worker(wa_store, RECEIVED_AT)  # the shop's profile, with its name, is in the mirror
    client = create_app(wa_store).test_client()
    key = db.one(Shop).callback_key

    def write(text: str) -> None:
        body = webhook(inbound(text))
        headers = {"X-Hub-Signature-256": webhook_signature(APP_SECRET, body), "Content-Type": "application/json"}
        assert client.post(f"/channels/whatsapp/{key}", data=body, headers=headers).status_code == 200

    write("HELP")
    run_worker(wa_store, RECEIVED_AT + timedelta(minutes=1))

    [call] = graph.calls
    sent = json.loads(call.request.body or b"")
    assert (sent["to"], sent["type"]) == ("14155550123", "text")
    assert sent["text"]["body"].startswith("Lumen Lamps: marketing messages")
    assert sent["text"]["body"].endswith("Reply STOP to opt out.")
    assert db.all(Message) == []  # a reply, not a message of any journey: never counted

    write("info")  # answered only while the window it opened lasts: this job runs a day later
    run_worker(wa_store, RECEIVED_AT + timedelta(hours=24, minutes=1))
    assert len(graph.calls) == 1
