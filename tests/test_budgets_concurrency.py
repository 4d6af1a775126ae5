"""Four workers deciding one shop's reminders at once, on PostgreSQL, never take the month's spend on SMS over the
shop's budget: the spend each reads and the texts it allows are its own until it commits."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
import responses
from requests import PreparedRequest

from shopify_app.clock import FrozenClock
from shopify_app.journeys.runner import JourneyReport, JourneyRunner
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.messaging.delivery import SendProtocol
from shopify_app.messaging.directory import directory_for
from shopify_app.models import Decision, Journey, Message
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import ALL_DAY, RECEIVED_AT, make_settings
from tests.support.database import empty_all_tables
from tests.support.db import Db
from tests.support.pipeline import process
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import describe_store
from tests.test_budgets_runner import shopper
from tests.test_sms_flow import SENDER, SID, TEXTING, TOKEN, TWILIO, sms_first

SHOPPERS = 24
BUDGET = Decimal("0.05")  # room for a few texts (0.0166 each, priced at two segments; fewer once costed)
MAIL = {"EMAIL_FROM": "reminders@mail.chorus.example"}


@pytest.fixture
def shoppers_due(postgres_url: str) -> Iterator[tuple[Runtime, SmtpServer]]:
    """A shop with an SMS budget whose reminders try SMS first, and SHOPPERS reminders due at TEXTING."""
    with smtp_server() as smtp:
        runtime = Runtime.build(make_settings(postgres_url, SMTP_URL=smtp.url, **MAIL), clock=FrozenClock(RECEIVED_AT))
        try:
            with runtime.session() as session, session.begin():
                shop = register_shop(session, runtime.secret_box, SHOP, access_token="t", webhook_secret=None,
                                     now=RECEIVED_AT)  # fmt: skip
                shop.policy = ALL_DAY | {"budgets": {"sms": str(BUDGET)}}
                session.flush()
                form = parse_account("sms", {"account_sid": SID, "auth_token": TOKEN, "from": SENDER})
                connect(session, runtime.secret_box, shop, form, RECEIVED_AT)
            describe_store(runtime)
            sms_first(runtime, Db(runtime))
            for n in range(SHOPPERS):
                shopper(runtime, n)
            process(runtime, RECEIVED_AT)
            yield runtime, smtp
        finally:
            runtime.close()
            empty_all_tables(postgres_url)


@pytest.fixture
def twilio() -> Iterator[responses.RequestsMock]:
    """Twilio's Messages API, each text its own id; shared by every thread (it patches the process)."""
    ids = itertools.count(1)
    lock = threading.Lock()

    def created(_request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            sid = f"SM{next(ids):032d}"
        return 201, {"Content-Type": "application/json"}, f'{{"sid": "{sid}", "status": "queued", "price": null}}'

    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add_callback(responses.POST, TWILIO, callback=created)
        yield fake


@pytest.mark.postgres_only
def test_four_workers_at_once_never_take_the_months_sms_spend_over_the_budget(
    shoppers_due: tuple[Runtime, SmtpServer], twilio: responses.RequestsMock
) -> None:
    runtime, smtp = shoppers_due
    db = Db(runtime)
    assert len(db.all(Journey)) == SHOPPERS
    start = threading.Barrier(4, timeout=30)
    reports: list[JourneyReport] = []
    failures: list[BaseException] = []

    def work() -> None:
        # Small batches: the shop's journeys are shared out among the four, as four worker processes would.
        protocol = SendProtocol(directory_for(runtime.settings, runtime.secret_box))
        runner = JourneyRunner(runtime.engine, runtime.flows, protocol, batch_size=3)
        try:
            start.wait()
            reports.append(runner.run(TEXTING))
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not failures, failures
    assert sum(1 for r in reports if r.sent) >= 2  # the work was shared: they ran side by side

    messages = db.all(Message)
    texts = [m for m in messages if m.channel == "sms"]
    assert Counter(m.journey_id for m in messages) == {j.id: 1 for j in db.all(Journey)}  # one each, never two
    assert texts, "some texts fit the budget"
    assert len(texts) < SHOPPERS, "and not all of them"
    assert all(m.status == "sent" and m.cost is not None and m.estimate is not None for m in texts)
    assert sum(m.cost or 0 for m in texts) <= BUDGET
    assert len(twilio.calls) == len(texts)
    assert len(smtp.sink.received) == SHOPPERS - len(texts)
    over = [d for d in db.all(Decision) if d.outcome == "sending" and d.detail["channel"] == "email"]
    assert {d.detail["candidates"][0]["reason"] for d in over} == {"over_budget"}
