"""The send protocol's failure paths, end to end: a real SMTP server on loopback that is down, answers 4xx or
refuses the recipient; leases judged by the batch's instant plus the time really elapsed; no SMTP at all."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import select

from connectors.channel import Handover
from flows.journey import SendIntent
from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.journeys.store import JourneyRows
from shopify_app.messaging import delivery
from shopify_app.messaging.channels import Envelope, OutboundChannel, configured_channels
from shopify_app.messaging.delivery import BatchClock, Prepared, SendProtocol
from shopify_app.messaging.directory import ChannelDirectory
from shopify_app.models import Decision, Job, Journey, Message, Shop, Suppression
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings
from shopify_app.worker import Worker
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads
from tests.support.db import Db
from tests.support.net import free_port
from tests.support.pipeline import deliver
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.support.webhooks import SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, describe_store, reasons, run_worker

# The abandoned checkout tests' fixtures: a loopback SMTP server, the runtime sending to it, the shop described.
mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

TRY_LATER = "451 4.3.0 mailbox busy, try again later"
NO_SUCH_USER = "550 5.1.1 no such user"
MAIL_ENV = {"EMAIL_FROM": "reminders@mail.chorus.example"}


def with_settings(runtime: Runtime, **changes: Any) -> Runtime:
    return Runtime(replace(runtime.settings, **changes), runtime.engine, runtime.secret_box, runtime.clock)


def outage(store: Runtime, smtp: SmtpServer, how: str) -> Runtime:
    """A runtime whose worker certainly cannot hand a message over: nothing listens, or the server says 4xx."""
    if how == "unreachable":
        return with_settings(store, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    smtp.sink.refuse_with = TRY_LATER
    return store


def back_up(smtp: SmtpServer) -> None:
    smtp.sink.refuse_with = None


def minutes(delta: timedelta) -> int:
    return int(delta // timedelta(minutes=1))


@pytest.mark.parametrize("how", ["unreachable", "answers 4xx"])
def test_a_message_that_certainly_did_not_leave_is_deferred_with_backoff_then_sent(
    store: Runtime, smtp: SmtpServer, db: Db, how: str
) -> None:
    down = outage(store, smtp, how)
    abandon(store)

    first = run_worker(down, AFTER_DUE)

    assert (first.journeys.sent, first.journeys.deferred, first.journeys.refused) == (0, 1, 0)
    [message] = db.all(Message)
    assert (message.status, message.attempts, message.lease_until) == ("deferred", 1, None)
    journey = db.one(Journey)
    assert (journey.state, journey.step, journey.reason) == ("waiting", "reminder", "send_deferred")
    assert journey.due_at is not None
    assert minutes(journey.due_at - AFTER_DUE) == 5  # retried in five minutes

    early = run_worker(down, journey.due_at - timedelta(seconds=30))
    assert early.journeys.deferred == 0
    assert db.one(Message).attempts == 1  # not tried before its time

    run_worker(down, journey.due_at)
    retried = db.one(Journey)
    assert retried.due_at is not None
    assert minutes(retried.due_at - journey.due_at) == 10  # then in ten
    assert (db.one(Message).status, db.one(Message).attempts) == ("deferred", 2)
    assert smtp.sink.received == []

    back_up(smtp)
    assert run_worker(store, retried.due_at - timedelta(seconds=30)).journeys.sent == 0
    sent = run_worker(store, retried.due_at)

    assert sent.journeys.sent == 1
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    [again] = db.all(Message)
    assert (again.id, again.status, again.attempts, again.error) == (message.id, "sent", 3, None)
    assert reasons(db) == [
        ("entered", "enrolled"),  # already due when the worker first hears of it
        ("sending", "send"),
        ("deferred", "send_deferred"),
        ("sending", "send"),
        ("deferred", "send_deferred"),
        ("sending", "send"),
        ("sent", "sent"),
        ("waiting", "wait"),  # for the second reminder
    ]


def test_after_five_attempts_the_message_fails_and_is_never_tried_again(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    smtp.sink.refuse_with = TRY_LATER
    abandon(store)
    at, gaps = AFTER_DUE, []
    for attempt in range(1, 6):
        run_worker(store, at)
        message, journey = db.one(Message), db.one(Journey)
        assert message.attempts == attempt
        if attempt < 5:
            assert (message.status, journey.reason) == ("deferred", "send_deferred")
            assert journey.due_at is not None
            gaps.append(minutes(journey.due_at - at))
            at = journey.due_at

    assert gaps == [5, 10, 20, 40]
    message, journey = db.one(Message), db.one(Journey)
    assert message.status == "failed"
    assert message.error is not None
    assert "451" in message.error
    assert ("failed", "send_gave_up") in reasons(db)
    # The reminder counts as failed; the journey goes on without it.
    assert (journey.state, journey.step, journey.performed) == ("waiting", "second_reminder", {"reminder": "failed"})
    assert db.all(Suppression) == []  # the address did nothing wrong

    back_up(smtp)
    for later in (timedelta(minutes=5), timedelta(hours=3)):
        assert run_worker(store, at + later).journeys.sent == 0
    assert smtp.sink.received == []
    assert (db.one(Message).status, db.one(Message).attempts) == ("failed", 5)


def test_a_refused_address_is_suppressed_and_never_mailed_again_but_is_no_unsubscribe(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    customer = {"id": 777, "email": "ada@example.com", "first_name": "Ada", "updated_at": "2026-11-20T10:00:00Z"}
    smtp.sink.refuse_with = NO_SUCH_USER
    abandon(store, customer=customer)

    refused = run_worker(store, AFTER_DUE)

    assert (refused.journeys.refused, refused.journeys.deferred, refused.journeys.sent) == (1, 0, 0)
    [message] = db.all(Message)
    assert (message.status, message.attempts, message.error) == ("failed", 1, NO_SUCH_USER)
    [suppression] = db.all(Suppression)
    assert (suppression.shop_id, suppression.channel, suppression.address, suppression.reason) == (
        message.shop_id, "email", "ada@example.com", "refused",
    )  # fmt: skip
    assert suppression.message_id == message.id
    assert ("failed", "send_refused") in reasons(db)

    # The server would take it now; Chorus must not try that address again: not the later step...
    back_up(smtp)
    later = run_worker(store, AFTER_DUE + timedelta(hours=25))
    # The refused reminder was decided again without its address (no other channel: skipped), then the next.
    assert later.journeys.skipped == 2
    decided = [(d.step, d.outcome, d.reason) for d in db.all(Decision)]
    assert ("reminder", "skipped", "address_refused") in decided
    assert ("second_reminder", "skipped", "address_refused") in decided
    # ...nor a later checkout of the same address, which still enters the flow (the customer did not unsubscribe).
    abandon(store, "ck-2", customer=customer, updated_at="2026-11-21T12:00:00Z")
    run_worker(store, datetime(2026, 11, 21, 13, 5, tzinfo=UTC))

    assert smtp.sink.received == []
    second = db.one(Journey, Journey.subject == "ck-2")
    trail = [(d.outcome, d.reason) for d in db.all(Decision, Decision.journey_id == second.id)]
    assert trail[0] == ("entered", "enrolled")
    assert ("skipped", "address_refused") in trail
    assert [m.status for m in db.all(Message)] == ["failed"]
    # A refusal is not an unsubscribe: nothing is told to Shopify, no journey ends as unsubscribed.
    assert db.all(Job, Job.kind == "email_unsubscribe") == []
    assert "unsubscribed" not in [reason for _outcome, reason in reasons(db)]
    assert [s.reason for s in db.all(Suppression)] == ["refused"]


def test_a_deferred_message_shows_as_deferred_to_the_merchant(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    smtp.sink.refuse_with = TRY_LATER
    abandon(store)
    run_worker(store, AFTER_DUE)

    body = create_app(store).test_client().get("/api/messages", headers=bearer(session_token(SHOP))).json

    assert body is not None
    [shown] = body["messages"]
    assert (shown["status"], shown["attempts"], shown["recipient"]) == ("deferred", 1, "ada@example.com")
    assert TRY_LATER in shown["error"]


def test_a_retry_after_the_address_changed_cancels_the_old_message_and_writes_to_the_new_address(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    smtp.sink.refuse_with = TRY_LATER
    abandon(store, customer=None)
    run_worker(store, AFTER_DUE)
    retry_at = db.one(Journey).due_at
    assert retry_at is not None

    abandon(store, customer=None, email="grace@example.com", updated_at="2026-11-20T10:02:00Z")
    meanwhile = run_worker(store, AFTER_DUE + timedelta(minutes=2))
    assert (meanwhile.journeys.sent, meanwhile.journeys.deferred) == (0, 0)
    assert db.one(Journey).due_at == retry_at  # the deferral keeps its retry time
    back_up(smtp)
    run_worker(store, retry_at)

    [received] = smtp.sink.received
    assert received.recipients == ["grace@example.com"]
    old, new = db.all(Message)
    assert (old.address, old.status, old.attempts) == ("ada@example.com", "cancelled", 1)
    assert (new.address, new.status, new.attempts) == ("grace@example.com", "sent", 1)


def test_a_journey_that_ends_while_its_message_is_deferred_cancels_the_message(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    smtp.sink.refuse_with = TRY_LATER
    abandon(store)
    run_worker(store, AFTER_DUE)
    assert db.one(Message).status == "deferred"

    placed = payloads.order(
        1001,
        checkout_token="ck-1",
        cancelled_at=None,
        created_at="2026-11-20T11:06:00Z",
        updated_at="2026-11-20T11:06:00Z",
    )
    deliver(store, "orders/create", placed)
    back_up(smtp)
    run_worker(store, AFTER_DUE + timedelta(minutes=2))
    run_worker(store, AFTER_DUE + timedelta(minutes=30))  # long after the retry was due

    assert smtp.sink.received == []
    assert db.one(Message).status == "cancelled"
    journey = db.one(Journey)
    assert (journey.state, journey.reason) == ("done", "order_placed")


class Monotonic:
    """The monotonic time the send protocol reads: it moves only when a test says so."""

    def __init__(self) -> None:
        self.seconds = 5000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, delta: timedelta) -> None:
        self.seconds += delta.total_seconds()


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    fake = Monotonic()
    monkeypatch.setattr(delivery, "time", SimpleNamespace(monotonic=fake))
    return fake


class SlowChannel:
    """The real email channel, whose hand-over takes `takes` of monotonic time; `meanwhile` runs during it."""

    name = "email"

    def __init__(self, inner: OutboundChannel, clock: Monotonic, takes: timedelta) -> None:
        self._inner = inner
        self._clock = clock
        self._takes = takes
        self.meanwhile: Callable[[], object] | None = None

    def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
        return self._inner.render(content_id, content, envelope)

    def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover:
        self._clock.advance(self._takes)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return self._inner.send(payload, envelope, now)

    def sessions(self) -> AbstractContextManager[None]:
        return self._inner.sessions()


def slow_email(monkeypatch: pytest.MonkeyPatch, clock: Monotonic, takes: timedelta) -> list[SlowChannel]:
    """Every worker built from now on hands email over slowly; returns their channels."""
    built: list[SlowChannel] = []

    def channels(settings: Settings) -> dict[str, OutboundChannel]:
        real = configured_channels(settings)
        slow = SlowChannel(real["email"], clock, takes)
        built.append(slow)
        return {"email": slow}

    monkeypatch.setattr("shopify_app.messaging.directory.configured_channels", channels)
    return built


def test_a_hand_over_is_refused_once_the_lease_has_passed_by_the_time_really_elapsed(monotonic: Monotonic) -> None:
    class Recording:
        name = "email"

        def __init__(self) -> None:
            self.sent: list[Envelope] = []

        def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
            return {}

        def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover:
            self.sent.append(envelope)
            return Handover("test", None)

        def sessions(self) -> AbstractContextManager[None]:
            return nullcontext()

    channel = Recording()
    protocol = SendProtocol(ChannelDirectory({"email": channel}), lease=timedelta(seconds=60))
    envelope = Envelope(1, "ada@example.com", "Lumen Lamps", None)
    prepared = Prepared(1, 1, "reminder", "email", envelope, {}, AFTER_DUE + timedelta(seconds=60), attempts=1,
                        via=channel)  # fmt: skip
    clock = BatchClock(AFTER_DUE)  # frozen at one instant, as `chorus worker --once --now` is

    monotonic.advance(timedelta(seconds=59))
    assert clock.now() == AFTER_DUE + timedelta(seconds=59)
    assert protocol.hand_over(prepared, clock).status == "sent"
    monotonic.advance(timedelta(seconds=1))
    late = protocol.hand_over(prepared, clock)

    assert (late.status, late.error) == ("deferred", "the lease ran out before the hand-over")
    assert late.retry_at == AFTER_DUE + timedelta(seconds=60) + timedelta(minutes=5)
    assert len(channel.sent) == 1


def test_a_long_hand_over_in_a_frozen_run_does_not_let_the_next_message_outlive_its_lease(
    store: Runtime, smtp: SmtpServer, db: Db, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_email(monkeypatch, monotonic, takes=timedelta(minutes=2))
    short_lease = with_settings(store, message_lease_seconds=60)
    abandon(store, "ck-1", customer=None, email="ada@example.com")
    abandon(store, "ck-2", customer=None, email="grace@example.com")

    first = run_worker(short_lease, AFTER_DUE)  # both are prepared in one batch, leased for a minute

    assert (first.journeys.sent, first.journeys.deferred) == (1, 1)
    assert [r.recipients for r in smtp.sink.received] == [["ada@example.com"]]
    ada, grace = db.all(Message)
    assert (ada.status, grace.status) == ("sent", "deferred")
    assert grace.error == "the lease ran out before the hand-over"
    journey = db.one(Journey, Journey.subject == "ck-2")
    assert journey.due_at is not None

    run_worker(short_lease, journey.due_at)
    assert [r.recipients for r in smtp.sink.received] == [["ada@example.com"], ["grace@example.com"]]
    assert (db.one(Message, Message.id == grace.id).status, db.one(Message, Message.id == grace.id).attempts) == (
        "sent", 2,
    )  # fmt: skip


def test_an_outcome_arriving_after_the_message_became_unknown_never_overwrites_it(
    store: Runtime, smtp: SmtpServer, db: Db, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = slow_email(monkeypatch, monotonic, takes=timedelta(minutes=10))
    abandon(store)
    seen_meanwhile: list[tuple[int, str]] = []

    def another_worker_meanwhile() -> None:
        # The first worker is still handing over when another runs, past the lease: it calls the message unknown.
        other = run_worker(store, AFTER_DUE + timedelta(minutes=6))
        seen_meanwhile.append((other.journeys.unknown, db.one(Message).status))

    first = Worker(Runtime(store.settings, store.engine, store.secret_box, FrozenClock(AFTER_DUE)))
    channels[0].meanwhile = another_worker_meanwhile
    summary = first.run_once()  # its hand-over takes ten minutes, twice its lease, then the server says 250

    assert seen_meanwhile == [(1, "unknown")]
    assert (summary.journeys.sent, summary.journeys.unknown) == (0, 1)
    assert len(smtp.sink.received) == 1  # it did go out, late: nobody could know
    message, journey = db.one(Message), db.one(Journey)
    assert (message.status, message.sent_at) == ("unknown", None)
    assert (journey.step, journey.performed) == ("second_reminder", {"reminder": "unknown"})
    assert ("sent", "sent") not in reasons(db)
    assert reasons(db).count(("unknown", "send_interrupted")) == 1


def test_without_smtp_due_steps_wait_with_one_decision_then_go_out_once_a_worker_can_send(
    db_url: str, shop: Shop, db: Db, smtp: SmtpServer
) -> None:
    bare = Runtime.build(make_settings(db_url), clock=FrozenClock(RECEIVED_AT))
    try:
        describe_store(bare)
        abandon(bare)
        runs = [AFTER_DUE + timedelta(minutes=m) for m in (0, 5, 10, 16, 30)]
        for at in runs:
            assert run_worker(bare, at).journeys.sent == 0
        journey = db.one(Journey)
        assert (journey.state, journey.step, journey.reason) == ("waiting", "reminder", "no_channel")
        assert journey.due_at is not None
        assert minutes(journey.due_at - runs[-1]) == 5  # looked at again in five minutes
        assert db.all(Message) == []
        deferred = [(d.step, d.reason) for d in db.all(Decision) if d.outcome == "deferred"]
        assert deferred == [("reminder", "no_channel")]  # one decision, not one per look

        mailing = Runtime(make_settings(db_url, SMTP_URL=smtp.url, **MAIL_ENV), bare.engine, bare.secret_box)
        sent = run_worker(mailing, journey.due_at)
        again = run_worker(mailing, journey.due_at + timedelta(hours=1))
    finally:
        bare.close()

    assert (sent.journeys.sent, again.journeys.sent) == (1, 0)
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    [message] = db.all(Message)
    assert (message.status, message.attempts) == ("sent", 1)


def test_preparing_a_step_whose_message_went_out_raises_already_handled(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    """The one live message per step: a sent message is never reused, whatever the recipient."""
    abandon(store)
    run_worker(store, AFTER_DUE)
    [message] = db.all(Message)
    protocol = SendProtocol(ChannelDirectory(configured_channels(store.settings)))
    shop_row = db.one(Shop)
    intent = SendIntent("reminder", "email", "ada@example.com", "abandoned_checkout.reminder", None)

    with db.write() as session:
        [journey] = JourneyRows(session).by_id([db.one(Journey).id or 0]).values()
        with pytest.raises(delivery.AlreadyHandled):
            protocol.prepare(session, journey, session.merge(shop_row), intent, AFTER_DUE, leased_at=AFTER_DUE)
    assert [(m.id, m.status) for m in db.all(Message)] == [(message.id, "sent")]


class WorkerDied(BaseException):
    """The worker process ends at this point (what a SIGKILL does, without killing the test)."""


def test_a_worker_that_dies_before_any_hand_over_began_leaves_its_messages_to_be_sent_once_later(
    store: Runtime, smtp: SmtpServer, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    abandon(store)

    def dies(self: Any, message_ids: Any, at: datetime) -> set[int]:
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr("shopify_app.journeys.runner.JourneyRunner._begin_hand_overs", dies)
        with pytest.raises(WorkerDied):
            run_worker(store, AFTER_DUE)
    assert (db.one(Message).status, db.one(Message).handed_at) == ("sending", None)  # committed, never begun
    assert smtp.sink.received == []

    run_worker(store, AFTER_DUE + timedelta(minutes=6))  # past the lease: it certainly never left

    message = db.one(Message)
    assert [r.recipients for r in smtp.sink.received] == [["ada@example.com"]]
    assert (message.status, message.attempts) == ("sent", 2)
    assert ("deferred", "send_deferred") in reasons(db)
    assert ("unknown", "send_interrupted") not in reasons(db)


def test_a_worker_that_dies_during_a_group_of_hand_overs_never_sends_that_group_again(
    store: Runtime, smtp: SmtpServer, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    abandon(store)
    begun = SendProtocol.begin_hand_overs

    def begins_then_dies(self: SendProtocol, session: Any, message_ids: Any, at: datetime) -> set[int]:
        begun(self, session, message_ids, at)
        session.commit()  # the group's start is on record; the worker dies before the server is reached
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(SendProtocol, "begin_hand_overs", begins_then_dies)
        with pytest.raises(WorkerDied):
            run_worker(store, AFTER_DUE)
    assert db.one(Message).handed_at is not None

    run_worker(store, AFTER_DUE + timedelta(minutes=6))

    assert smtp.sink.received == []  # it might have left: never sent on a guess
    assert db.one(Message).status == "unknown"
    assert ("unknown", "send_interrupted") in reasons(db)


def test_a_message_another_worker_took_back_meanwhile_is_not_handed_over(
    store: Runtime, smtp: SmtpServer, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    abandon(store)
    begun = SendProtocol.begin_hand_overs

    def taken_back_first(self: SendProtocol, session: Any, message_ids: Any, at: datetime) -> set[int]:
        # Just before this worker begins, another finds the lease run out and takes the message back.
        with db.write() as other:
            [message] = other.exec(select(Message)).all()
            message.status, message.lease_until = "deferred", None
        return begun(self, session, message_ids, at)

    with monkeypatch.context() as patched:
        patched.setattr(SendProtocol, "begin_hand_overs", taken_back_first)
        run_worker(store, AFTER_DUE)
    assert smtp.sink.received == []
    assert db.one(Message).status == "deferred"  # the other worker's, not overwritten

    run_worker(store, AFTER_DUE + timedelta(minutes=6))
    assert [r.recipients for r in smtp.sink.received] == [["ada@example.com"]]
    assert db.one(Message).status == "sent"
