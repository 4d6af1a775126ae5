"""A merchant's own wording of a step, per channel: checked on save (CLI and API), then what the next message
says on that channel, inside the shop's layout; a wording that fails for a real customer skips its channel."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from shopify_app.app import create_app
from shopify_app.cli import main
from shopify_app.journeys.tuning import StepChange, configure
from shopify_app.messaging.wording import shipped_wording
from shopify_app.models import ContentOverride, Decision, Link, Message, Shop
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.pipeline import process
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.support.webhooks import OTHER_SHOP, SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, mail_runtime, run_worker, smtp, store
from tests.test_sms_flow import TEXTING, TWILIO, _created, abandon_by_sms, sent_forms, sms_store, twilio

__all__ = ["mail_runtime", "sms_store", "smtp", "store", "twilio"]  # fixtures

ROUTE = "/api/flows/abandoned_checkout/steps/reminder/content"
EMAIL_WORDING = """\
{% block subject %}{{ content.first_name or "Hello" }}, your lamp is still here{% endblock %}
{% block html %}{% set item = content.items[0] %}
<p>We kept <b>{{ item.title }}</b> for you at {{ item.unit_price | money(item.currency) }}.</p>
<p><a href="{{ content.recovery_url }}">Back to your cart</a></p>{% endblock %}
{% block text %}{% set item = content.items[0] %}
We kept {{ item.title }} for you at {{ item.unit_price | money(item.currency) }}.
Back to your cart: {{ content.recovery_url }}{% endblock %}
"""


def cli(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=chorus_env(db_url))
    return result.exit_code, result.output


def set_by_cli(db_url: str, tmp_path: Path, channel: str, wording: str) -> tuple[int, str]:
    path = tmp_path / f"{channel}.jinja"
    path.write_text(wording, encoding="utf-8")
    return cli(db_url, "content", "set", "--shop", SHOP, "--flow", "abandoned_checkout", "--step", "reminder",
               "--channel", channel, "--file", str(path))  # fmt: skip


def test_the_shops_email_wording_is_what_the_next_reminder_says_inside_the_shops_layout(
    store: Runtime, smtp: SmtpServer, db: Db, db_url: str, tmp_path: Path
) -> None:
    code, output = set_by_cli(db_url, tmp_path, "email", EMAIL_WORDING)
    assert code == 0, output
    assert "Subject: Ada, your lamp is still here" in output  # tried on the example customer first

    abandon(store)
    assert run_worker(store, AFTER_DUE).journeys.sent == 1

    [received] = smtp.sink.received
    assert received.parsed()["Subject"] == "John, your lamp is still here"
    html, text = received.part("text/html"), received.part("text/plain")
    assert "We kept <b>IPod Nano - 8GB</b> for you at $199.00." in html  # the shop's money format
    assert "We kept IPod Nano - 8GB for you at $199.00." in text
    assert "You left these in your cart" not in html  # the shipped wording is not used
    message = db.one(Message)
    for body in (html, text):  # the layout stays: greeting, postal address, the message's unsubscribe link
        assert "Hi John," in body
        assert "190 MacLaren Street, Houston, TN 37178, United States" in body
        assert message.payload["unsubscribe_url"] in body
    # Its links go through the short links, like the shipped wording's.
    [link] = [link for link in db.all(Link) if "/recover" in link.target]
    assert f'<a href="https://chorus.example/l/{link.id}">Back to your cart</a>' in html


def test_an_sms_wording_keeps_the_shops_name_and_the_opt_out(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    process(sms_store, RECEIVED_AT)  # the shop's profile, with its name
    client = create_app(sms_store).test_client()
    headers = bearer(session_token(SHOP))
    wording = "{{ content.first_name }}, {{ content.items[0].title }} is waiting: {{ content.recovery_url }}"
    saved = client.put(f"{ROUTE}/sms", json={"template": wording}, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    shown = saved.get_json()["content"]
    assert shown["template"] == wording
    assert shown["preview"]["body"].startswith("Lumen Lamps: Ada, Linen shirt is waiting: ")
    assert shown["preview"]["body"].endswith("\nReply STOP to opt out")
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store)

    assert run_worker(sms_store, TEXTING).journeys.sent == 1

    [form] = sent_forms(twilio)
    assert form["Body"].startswith("Lumen Lamps: John, IPod Nano - 8GB is waiting: https://chorus.example/l/")
    assert form["Body"].endswith("\nReply STOP to opt out")


@pytest.mark.parametrize(
    ("channel", "wording", "problem"),
    [
        ("email", "{% block subject %}{{ content.first_name {% endblock %}", "line 1"),
        ("email", "{% block subject %}{{ content.coupon }}{% endblock %}", "has no attribute 'coupon'"),
        ("email", "{% block subject %}{{ content.__class__.__init__ }}{% endblock %}", "unsafe"),
        ("email", "{% block html %}<p>Hi</p>{% endblock %}", "give both or neither"),
        ("email", "{% block subject %}Hi{% endblock %} and more", "outside the blocks"),
        ("email", '{% extends "_layout.html" %}', "cannot extend"),
        ("sms", "{% block body %}Hi{% endblock %}", "without blocks"),
        ("sms", "Our new lamps: https://lumen.example/new", "would go uncounted"),
        ("email", "{% block subject %}{{ 'see www.lumen.example' }}{% endblock %}", "would go uncounted"),
        ("sms", "{{ content.recovery_url }} " + "Our lamps are handmade in Porto. " * 12, "segments, at most 2"),
    ],
)
def test_a_wording_that_would_not_render_is_refused_with_what_is_wrong_and_nothing_is_kept(
    store: Runtime, db: Db, channel: str, wording: str, problem: str
) -> None:
    client = create_app(store).test_client()
    answer = client.put(f"{ROUTE}/{channel}", json={"template": wording}, headers=bearer(session_token(SHOP)))

    assert answer.status_code == 400
    assert any(problem in p for p in answer.get_json()["problems"]), answer.get_json()
    assert db.all(ContentOverride) == []


def test_whatsapp_is_worded_by_its_template_and_unknown_steps_are_not_found(store: Runtime) -> None:
    client = create_app(store).test_client()
    headers = bearer(session_token(SHOP))

    whatsapp = client.put(f"{ROUTE}/whatsapp", json={"template": "Hi"}, headers=headers)
    assert whatsapp.status_code == 404
    assert "approved template" in whatsapp.get_json()["error"]
    unknown = "/api/flows/abandoned_checkout/steps/nope/content/email"
    assert client.get(unknown, headers=headers).status_code == 404
    assert client.put(f"{ROUTE}/email", json={"wording": "x"}, headers=headers).status_code == 400


def test_reading_shows_the_wording_in_force_and_resetting_brings_back_the_shipped_one(
    store: Runtime, smtp: SmtpServer, db: Db, db_url: str, tmp_path: Path
) -> None:
    process(store, RECEIVED_AT)  # the shop's profile, with its name
    client = create_app(store).test_client()
    headers = bearer(session_token(SHOP))
    shipped = client.get(f"{ROUTE}/email", headers=headers).get_json()["content"]
    assert shipped["template"] is None
    assert "{% block subject %}" in shipped["default"]  # a starting point in the wording's own form
    assert shipped["preview"]["subject"] == "Ada, you left something at Lumen Lamps"

    assert set_by_cli(db_url, tmp_path, "email", EMAIL_WORDING)[0] == 0
    assert client.get(f"{ROUTE}/email", headers=headers).get_json()["content"]["template"] == EMAIL_WORDING
    code, output = cli(db_url, "content", "reset", "--shop", SHOP, "--flow", "abandoned_checkout",
                       "--step", "reminder", "--channel", "email")  # fmt: skip
    assert code == 0, output
    assert client.delete(f"{ROUTE}/email", headers=headers).status_code == 204  # already the shipped one

    abandon(store)
    run_worker(store, AFTER_DUE)
    [received] = smtp.sink.received
    assert received.parsed()["Subject"] == "John, you left something at Lumen Lamps"


def test_the_shipped_wording_saved_as_the_shops_own_sends_the_same_message(store: Runtime, db: Db) -> None:
    client = create_app(store).test_client()
    headers = bearer(session_token(SHOP))
    for channel in ("email", "sms"):
        before = client.get(f"{ROUTE}/{channel}", headers=headers).get_json()["content"]["preview"]
        default = shipped_wording("abandoned_checkout.reminder", channel)
        saved = client.put(f"{ROUTE}/{channel}", json={"template": default}, headers=headers).get_json()["content"]
        after = saved["preview"]
        assert {k: " ".join(str(v).split()) for k, v in after.items()} == {
            k: " ".join(str(v).split()) for k, v in before.items()
        }


def test_a_wording_that_fails_for_a_real_customer_skips_its_channel_for_the_next(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db, db_url: str, tmp_path: Path
) -> None:
    # A wording that fails for some customers only: it renders for the example customer, Ada, not for John.
    second = "{% block subject %}{{ content.first_name if content.first_name == 'Ada' else content.coupon }}"
    second += "{% endblock %}"
    assert set_by_cli(db_url, tmp_path, "email", second)[0] == 0
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store, buyer_accepts_marketing=True)

    assert run_worker(sms_store, TEXTING).journeys.sent == 1

    assert smtp.sink.received == []
    assert len(sent_forms(twilio)) == 1
    by_channel = {m.channel: m for m in db.all(Message)}
    assert by_channel["email"].status == "cancelled"
    assert "the shop's wording failed to render" in (by_channel["email"].error or "")
    assert by_channel["sms"].status == "sent"
    [sending] = [d for d in db.all(Decision) if d.outcome == "sending"]
    assert sending.detail["channels"][0] == {"channel": "email", "outcome": "render_failed"}


def test_one_shops_wording_never_reaches_another_shop(
    store: Runtime, smtp: SmtpServer, db: Db, db_url: str, tmp_path: Path
) -> None:
    client = create_app(store).test_client()
    assert client.put(f"{ROUTE}/email", json={"template": EMAIL_WORDING},
                      headers=bearer(session_token(OTHER_SHOP))).status_code in (200, 401)  # fmt: skip
    with store.session() as session, session.begin():
        configure(session, db.one(Shop, Shop.domain == SHOP).id or 0, store.flows, "abandoned_checkout",
                  steps={"reminder": StepChange(channels=("email",))}, now=RECEIVED_AT)  # fmt: skip

    abandon(store)
    run_worker(store, AFTER_DUE)
    [received] = smtp.sink.received
    assert received.parsed()["Subject"] == "John, you left something at Lumen Lamps"
