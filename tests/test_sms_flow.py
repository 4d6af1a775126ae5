"""Abandoned checkout reminders by SMS through the shop's own Twilio account, end to end: webhooks in, the
worker deciding and sending, Twilio's Messages API faked with `responses` and asserting what was sent."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses

import flows as flows_package
from shopify_app.app import create_app
from shopify_app.journeys.tuning import StepChange, configure
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import Decision, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.env import APP_URL
from tests.support.pipeline import deliver
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, run_worker

mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

SID = "AC" + "5" * 32
TOKEN = "9" * 32
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
PHONE = "+14155550123"
SENDER = "+14155552345"
# 08:05 where the buyer lives (the checkout ships to Kentucky): marketing texts go out from 08:00 there.
TEXTING = datetime(2026, 11, 20, 13, 5, tzinfo=UTC)


def _created(sid: str = "SM" + "1" * 32) -> dict[str, Any]:
    return {"sid": sid, "status": "queued", "to": PHONE, "from": SENDER, "price": None, "price_unit": None}


@pytest.fixture
def twilio() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        yield fake


@pytest.fixture
def sms_store(store: Runtime, db: Db) -> Runtime:
    """The lamp shop with its Twilio account connected."""
    form = parse_account("sms", {"account_sid": SID, "auth_token": TOKEN, "from": SENDER})
    with store.session() as session, session.begin():
        shop = session.get(Shop, db.one(Shop).id, with_for_update=True)
        assert shop is not None
        connect(session, store.secret_box, shop, form, RECEIVED_AT)
    return store


def abandon_by_sms(runtime: Runtime, token: str = "ck-1", **changes: Any) -> None:
    """A checkout whose buyer ticked only the SMS box: email may not be used, SMS may."""
    fields = {"buyer_accepts_marketing": False, "buyer_accepts_sms_marketing": True, "sms_marketing_phone": PHONE}
    abandon(runtime, token, **(fields | changes))


def sms_first(runtime: Runtime, db: Db) -> None:
    """The shop's reminder tries SMS before email."""
    with runtime.session() as session, session.begin():
        configure(session, db.one(Shop).id or 0, runtime.flows, "abandoned_checkout",
                  steps={"reminder": StepChange(channels=("sms", "email"))}, now=RECEIVED_AT)  # fmt: skip


def sent_forms(twilio: responses.RequestsMock) -> list[dict[str, str]]:
    forms = []
    for call in twilio.calls:
        assert call.request.url == TWILIO
        body = call.request.body
        assert isinstance(body, str)
        forms.append(dict(parse_qsl(body)))
    return forms


def test_the_reminder_goes_out_by_sms_naming_the_shop_with_the_opt_out_and_the_status_callback(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store)

    summary = run_worker(sms_store, TEXTING)

    assert summary.journeys.sent == 1
    assert smtp.sink.received == []
    [form] = sent_forms(twilio)
    key = db.one(Shop).callback_key
    assert form["To"] == PHONE
    assert form["From"] == SENDER
    assert form["StatusCallback"] == f"{APP_URL}/channels/twilio/{key}/status"
    assert form["Body"].startswith("Lumen Lamps: ")
    assert form["Body"].endswith("Reply STOP to opt out")
    assert "IPod Nano - 8GB and 1 more" in form["Body"]  # the checkout's line, from the current catalogue
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert twilio.calls[0].request.headers["Authorization"] == f"Basic {credentials}"
    message = db.one(Message)
    assert (message.channel, message.address, message.status) == ("sms", PHONE, "sent")
    assert (message.provider, message.provider_message_id) == ("twilio", "SM" + "1" * 32)
    assert message.payload["segments"] <= 2
    # Twilio prices a message only later: until then, the shipped rate of a US number, per segment.
    assert (message.cost, message.cost_currency) == (Decimal("0.0083") * message.payload["segments"], "USD")
    listed = create_app(sms_store).test_client().get("/api/channels", headers=bearer(session_token(webhooks.SHOP)))
    assert listed.get_json()["costs"] == [
        {"channel": "sms", "month": "2026-11", "currency": "USD", "messages": 1, "cost": f"{message.cost:.4f}"}
    ]


def test_before_eight_where_the_buyer_lives_the_sms_waits_for_the_morning_whatever_the_shops_zone(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    profile = webhooks.fixture_json("app_uninstalled.json") | {
        "name": "Lumen Lamps", "iana_timezone": "Asia/Tokyo", "updated_at": "2026-11-19T12:00:00Z",
    }  # fmt: skip
    deliver(sms_store, "shop/update", profile)
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store)

    early = run_worker(sms_store, AFTER_DUE)  # 06:05 in Kentucky, where the checkout ships (20:05 in Tokyo)
    assert early.journeys.sent == 0
    assert len(twilio.calls) == 0
    held = [d for d in db.all(Decision) if d.reason == "quiet_hours"]
    assert [(d.detail["channel"], d.detail["until"]) for d in held] == [("sms", "2026-11-20T13:00:00+00:00")]

    assert run_worker(sms_store, datetime(2026, 11, 20, 12, 59, tzinfo=UTC)).journeys.sent == 0
    assert run_worker(sms_store, datetime(2026, 11, 20, 13, 1, tzinfo=UTC)).journeys.sent == 1
    assert len(sent_forms(twilio)) == 1


def test_a_states_own_law_narrows_the_federal_window(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    twilio.post(TWILIO, json=_created(), status=201)
    florida = {"country_code": "US", "province_code": "FL", "country": "United States", "province": "Florida"}
    abandon_by_sms(sms_store, shipping_address=florida)

    # 20:30 in Miami: the federal rule would allow it until 21:00, Florida's only until 20:00.
    assert run_worker(sms_store, datetime(2026, 11, 21, 1, 30, tzinfo=UTC)).journeys.sent == 0
    held = [d for d in db.all(Decision) if d.reason == "quiet_hours"]
    assert [d.detail["until"] for d in held] == ["2026-11-21T13:00:00+00:00"]  # 08:00 the next morning
    assert run_worker(sms_store, datetime(2026, 11, 21, 13, 0, tzinfo=UTC)).journeys.sent == 1


def test_a_recipient_who_replied_stop_to_the_sender_is_never_texted_again_on_any_flow(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    refusal = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400,
               "more_info": "https://www.twilio.com/docs/errors/21610"}  # fmt: skip
    twilio.post(TWILIO, json=refusal, status=400)
    abandon_by_sms(sms_store)

    first = run_worker(sms_store, TEXTING)

    assert first.journeys.refused == 1
    [suppression] = db.all(Suppression)
    assert (suppression.channel, suppression.address, suppression.reason) == ("sms", PHONE, "unsubscribed")
    # A later checkout of the same number: nothing goes to it, and Twilio is not asked again.
    abandon_by_sms(sms_store, "ck-2", updated_at="2026-11-21T10:00:00Z")
    run_worker(sms_store, datetime(2026, 11, 21, 11, 5, tzinfo=UTC))
    assert len(twilio.calls) == 1
    later = checkout_flow.decisions_of(db, "ck-2")
    assert later
    assert "sending" not in [outcome for _step, outcome, _reason in later]


def test_an_invalid_number_is_suppressed_and_the_message_is_not_retried(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    twilio.post(TWILIO, json={"code": 21614, "message": "'To' number is not a valid mobile number", "status": 400},
                status=400)  # fmt: skip
    abandon_by_sms(sms_store)

    run_worker(sms_store, TEXTING)
    run_worker(sms_store, TEXTING + timedelta(hours=2))

    assert len(twilio.calls) == 1
    assert db.one(Message).status == "failed"
    assert [(s.channel, s.reason) for s in db.all(Suppression)] == [("sms", "refused")]


def test_twilio_busy_defers_the_sms_and_it_goes_out_later(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    twilio.post(TWILIO, json={"code": 20429, "message": "Too Many Requests", "status": 429}, status=429)
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store)

    busy = run_worker(sms_store, TEXTING)
    assert busy.journeys.deferred == 1
    assert db.one(Message).status == "deferred"

    later = run_worker(sms_store, TEXTING + timedelta(minutes=6))
    assert later.journeys.sent == 1
    assert [m.status for m in db.all(Message)] == ["sent"]
    assert len(twilio.calls) == 2


def test_an_sms_too_long_for_the_step_gives_way_to_the_next_channel(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    sms_first(sms_store, db)
    # The catalogue's current title is what a message names: this one makes the SMS four segments long.
    long_title = "Handmade brass desk lamp with a linen shade, " * 10
    deliver(sms_store, "products/update", payloads.product(title=long_title, updated_at="2026-11-20T09:30:00Z"))
    abandon_by_sms(sms_store, buyer_accepts_marketing=True)

    summary = run_worker(sms_store, TEXTING)

    assert summary.journeys.sent == 1
    assert len(twilio.calls) == 0
    assert len(smtp.sink.received) == 1
    by_status = sorted((m.channel, m.status) for m in db.all(Message))
    assert by_status == [("email", "sent"), ("sms", "cancelled")]
    cancelled = next(m for m in db.all(Message) if m.channel == "sms")
    assert cancelled.error is not None
    assert "segments, at most 2" in cancelled.error
    [sending] = [d for d in db.all(Decision) if d.outcome == "sending"]
    assert sending.detail["channel"] == "email"
    assert sending.detail["channels"][0] == {"channel": "sms", "outcome": "too_long"}


def test_without_an_account_sms_is_not_configured_and_nothing_is_texted(
    store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    abandon_by_sms(store)

    run_worker(store, AFTER_DUE)

    assert len(twilio.calls) == 0
    assert db.all(Message) == []


def test_a_step_may_allow_a_longer_sms(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db, tmp_path: Path
) -> None:
    shipped = (Path(flows_package.__file__).parent / "definitions" / "abandoned_checkout.toml").read_text()
    longer = shipped.replace('content = "abandoned_checkout.reminder"\n',
                             'content = "abandoned_checkout.reminder"\nsms_segments = 6\n', 1)  # fmt: skip
    assert longer != shipped
    (tmp_path / "abandoned_checkout.toml").write_text(longer)
    runtime = Runtime(replace(sms_store.settings, flows_dir=str(tmp_path)), sms_store.engine, sms_store.secret_box,
                      sms_store.clock)  # fmt: skip
    sms_first(runtime, db)
    long_title = "Handmade brass desk lamp with a linen shade, " * 10
    deliver(runtime, "products/update", payloads.product(title=long_title, updated_at="2026-11-20T09:30:00Z"))
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(runtime, buyer_accepts_marketing=True)

    assert run_worker(runtime, TEXTING).journeys.sent == 1

    assert smtp.sink.received == []
    message = db.one(Message)
    assert message.channel == "sms"
    assert 2 < message.payload["segments"] <= 6


def test_below_its_growth_threshold_the_shop_texts_nobody_and_emails_instead(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    sms_first(sms_store, db)
    with sms_store.session() as session, session.begin():
        shop = session.get(Shop, db.one(Shop).id, with_for_update=True)
        assert shop is not None
        shop.policy = shop.policy | {"growth_threshold": 2}
    # One customer ordered in the last 30 days (a cancelled order, or one older, does not count).
    for order_id, customer_id, placed, cancelled in ((1, 11, "2026-11-10", None), (2, 12, "2026-11-12", "2026-11-13"),
                                                     (3, 13, "2026-10-01", None)):  # fmt: skip
        deliver(sms_store, "orders/create", payloads.order(
            order_id, customer={"id": customer_id, "email": f"c{customer_id}@example.com"},
            email=f"c{customer_id}@example.com", created_at=f"{placed}T10:00:00Z", updated_at=f"{placed}T10:00:00Z",
            cancelled_at=f"{cancelled}T10:00:00Z" if cancelled else None,
        ))  # fmt: skip
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store, buyer_accepts_marketing=True)

    assert run_worker(sms_store, TEXTING).journeys.sent == 1

    assert len(twilio.calls) == 0
    assert len(smtp.sink.received) == 1
    [sending] = [d for d in db.all(Decision) if d.outcome == "sending"]
    assert sending.detail["candidates"][0] == {"channel": "sms", "ok": False, "reason": "growth_stage"}


def test_a_number_the_provider_refuses_gives_the_step_to_its_next_allowed_channel_as_a_new_attempt(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    sms_first(sms_store, db)
    twilio.post(TWILIO, json={"code": 21614, "message": "'To' number is not a valid mobile number", "status": 400},
                status=400)  # fmt: skip
    abandon_by_sms(sms_store, buyer_accepts_marketing=True)

    run_worker(sms_store, TEXTING)
    assert run_worker(sms_store, TEXTING + timedelta(seconds=5)).journeys.sent == 1  # the worker's next pass

    assert len(twilio.calls) == 1
    assert len(smtp.sink.received) == 1
    assert sorted((m.channel, m.status) for m in db.all(Message)) == [("email", "sent"), ("sms", "failed")]
    [sending] = [d for d in db.all(Decision) if d.outcome == "sending" and d.detail["channel"] == "email"]
    assert sending.detail["candidates"][0] == {"channel": "sms", "ok": False, "reason": "address_refused"}
