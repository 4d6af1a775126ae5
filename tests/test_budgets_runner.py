"""Budgets and a step's cap on its price, end to end: the worker passes a paid channel over for the step's next
one once the month's spend on it would go over the shop's budget (or the message costs more than its step
pays), says so in the decision, and stores each paid message's estimate as it creates it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import update

from flows.budgets import Spend
from shopify_app.clock import FrozenClock
from shopify_app.journeys.budgets import month_spend
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.models import Decision, Journey, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests import test_sms_flow as sms_flow
from tests.conftest import ALL_DAY, RECEIVED_AT, make_settings
from tests.support.db import Db
from tests.support.smtp import SmtpServer
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import abandon, describe_store, run_worker
from tests.test_shop_policy import chorus
from tests.test_sms_flow import SENDER, SID, TEXTING, TOKEN, TWILIO, sms_first

mail_runtime, smtp, store, sms_store, twilio = (
    sms_flow.mail_runtime, sms_flow.smtp, sms_flow.store, sms_flow.sms_store, sms_flow.twilio,
)  # fmt: skip  # fixtures

# A US text priced at the two segments the reminder allows: 2 x 0.0083 USD.
PRICE = Decimal("0.0166")
ONE_TEXT = "0.02"  # room for one such text, not two


def shopper(runtime: Runtime, n: int, **changes: Any) -> str:
    """Someone who left a checkout and agreed to both email and texts (a guest: one person per checkout)."""
    phone = f"+141555501{n:02d}"
    abandon(runtime, f"ck-{n}", customer=None, email=f"shopper{n}@example.com", buyer_accepts_marketing=True,
            buyer_accepts_sms_marketing=True, sms_marketing_phone=phone, **changes)  # fmt: skip
    return phone


def budget(runtime: Runtime, db: Db, **budgets: str) -> None:
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, db.one(Shop).id, with_for_update=True)
        assert shop is not None
        shop.policy = {**shop.policy, "budgets": budgets}


def sending(db: Db, subject: str) -> Decision:
    journey = next(j for j in db.all(Journey) if j.subject == subject)
    [found] = [d for d in db.all(Decision) if d.journey_id == journey.id and d.outcome == "sending"]
    return found


def test_once_the_months_spend_reaches_the_sms_budget_the_reminder_goes_by_email_saying_why(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    sms_first(sms_store, db)
    budget(sms_store, db, sms=ONE_TEXT)
    twilio.post(TWILIO, json=sms_flow._created(), status=201)
    phone = shopper(sms_store, 0)

    assert run_worker(sms_store, TEXTING).journeys.sent == 1

    [text] = db.all(Message)
    assert (text.channel, text.address) == ("sms", phone)
    assert (text.estimate, text.estimate_currency) == (PRICE, "USD")  # stored as it was created
    assert sending(db, "ck-0").detail["candidates"][0] == {"channel": "sms", "ok": True,
                                                          "reason": "chosen: the first usable"}  # fmt: skip

    # The next day another shopper's reminder would take the month over the budget: it goes by email.
    shopper(sms_store, 1, updated_at="2026-11-21T12:00:00Z")
    run_worker(sms_store, datetime(2026, 11, 21, 13, 4, tzinfo=UTC))  # before the first one's second reminder

    assert len(twilio.calls) == 1
    later = sending(db, "ck-1")
    assert later.detail["channel"] == "email"
    assert later.detail["candidates"] == [
        {"channel": "sms", "ok": False, "reason": "over_budget"},
        {"channel": "email", "ok": True, "reason": "chosen: the first usable"},
    ]
    assert later.detail["channels"][0] == {"channel": "sms", "outcome": "over_budget", "price": "0.0166 USD"}
    assert [r.recipients for r in smtp.sink.received] == [["shopper1@example.com"]]


def test_the_budget_counts_the_messages_a_batch_decides_before_it_stores_them(
    sms_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer, db: Db
) -> None:
    sms_first(sms_store, db)
    budget(sms_store, db, sms=ONE_TEXT)
    twilio.post(TWILIO, json=sms_flow._created(), status=201)
    shopper(sms_store, 0)
    shopper(sms_store, 1)

    assert run_worker(sms_store, TEXTING).journeys.sent == 2  # in one batch

    assert sorted(m.channel for m in db.all(Message)) == ["email", "sms"]
    assert len(twilio.calls) == 1
    assert sending(db, "ck-1").detail["candidates"][0] == {"channel": "sms", "ok": False, "reason": "over_budget"}


def test_last_months_messages_and_those_that_never_went_do_not_count(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    sms_first(sms_store, db)
    twilio.post(TWILIO, json=sms_flow._created(), status=201)
    shopper(sms_store, 0)
    run_worker(sms_store, TEXTING)
    [text] = db.all(Message)
    assert text.cost is not None
    shop_id = db.one(Shop).id or 0

    def spent(at: datetime) -> dict[str, Spend]:
        with sms_store.session() as session:
            return month_spend(session, shop_id, ["sms", "whatsapp"], at, None)

    assert spent(TEXTING) == {"sms": Spend({"USD": text.cost}, {"USD": 1}, 1), "whatsapp": Spend()}
    assert spent(datetime(2026, 12, 1, tzinfo=UTC))["sms"] == Spend()  # a new month
    with sms_store.session() as session, session.begin():
        session.execute(update(Message).values(status="failed"))
    assert spent(TEXTING)["sms"] == Spend()


# A step's cap on its price, from an operator's own definition of the abandoned checkout flow

CAPPED_REMINDER = """
name = "abandoned_checkout"
description = "One reminder, by text where a text costs at most {max_price}, else by email."
subject = "checkout"
max_age = "7d"
goals = ["order_placed", "ordered_since", "checkout_completed", "unsubscribed"]

[trigger]
event = "checkout_changed"

[[steps]]
id = "reminder"
kind = "send"
content = "abandoned_checkout.reminder"
channels = ["sms", "email"]
max_price = "{max_price}"
wait = {{ anchor = "fact", fact = "checkout.updated_at", delay = "1h", max = "7d" }}
"""


@pytest.fixture(params=["0.01", "0.0166"])
def capped_store(request: pytest.FixtureRequest, db_url: str, smtp: SmtpServer, tmp_path: Path) -> Iterator[Runtime]:
    """The lamp shop with its Twilio account, whose reminder pays at most `request.param` for a text."""
    (tmp_path / "abandoned_checkout.toml").write_text(CAPPED_REMINDER.format(max_price=request.param))
    settings = make_settings(db_url, SMTP_URL=smtp.url, EMAIL_FROM="reminders@mail.chorus.example",
                             FLOWS_DIR=str(tmp_path))  # fmt: skip
    runtime = Runtime.build(settings, clock=FrozenClock(RECEIVED_AT))
    with runtime.session() as session, session.begin():
        shop = register_shop(session, runtime.secret_box, SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT)
        shop.policy = dict(ALL_DAY)
        session.flush()
        connect(session, runtime.secret_box, shop, parse_account("sms", {"account_sid": SID, "auth_token": TOKEN,
                                                                         "from": SENDER}), RECEIVED_AT)  # fmt: skip
    describe_store(runtime)
    yield runtime
    runtime.close()


def test_a_step_pays_at_most_its_cap_for_a_text_and_goes_by_email_above_it(
    capped_store: Runtime, twilio: responses.RequestsMock, smtp: SmtpServer
) -> None:
    db = Db(capped_store)
    cap = capped_store.flows["abandoned_checkout"].send_steps[0].max_price
    twilio.post(TWILIO, json=sms_flow._created(), status=201)
    shopper(capped_store, 0)

    assert run_worker(capped_store, TEXTING).journeys.sent == 1

    [message] = db.all(Message)
    first = sending(db, "ck-0").detail["candidates"][0]
    if cap == Decimal("0.01"):  # below the price
        assert message.channel == "email"
        assert first == {"channel": "sms", "ok": False, "reason": "over_price"}
        assert len(twilio.calls) == 0
    else:  # at it
        assert (message.channel, message.estimate) == ("sms", PRICE)
        assert first == {"channel": "sms", "ok": True, "reason": "chosen: the first usable"}
        assert len(twilio.calls) == 1


def test_shops_without_budgets_or_caps_store_no_estimates(
    sms_store: Runtime, twilio: responses.RequestsMock, db: Db
) -> None:
    sms_first(sms_store, db)
    twilio.post(TWILIO, json=sms_flow._created(), status=201)
    shopper(sms_store, 0)
    run_worker(sms_store, TEXTING)
    [text] = db.all(Message)
    assert (text.channel, text.estimate, text.estimate_currency) == ("sms", None, None)
    assert "price" not in sending(db, "ck-0").detail["channels"][0]


def test_the_shop_shows_its_months_spend_on_each_budgeted_channel(shop: Shop, db_url: str) -> None:
    assert chorus(db_url, "shops", "set", SHOP, "--budget", "sms=50")[0] == 0

    code, shown = chorus(db_url, "shops", "show", SHOP, "--json")
    assert code == 0, shown
    assert json.loads(shown)["spent"] == {"sms": {"amounts": {}, "messages": 0}}
    assert "spent this month: sms=0 (0 messages)" in chorus(db_url, "shops", "show", SHOP)[1]
