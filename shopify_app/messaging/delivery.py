"""The send protocol: at most once, for every flow and channel.

1. `prepare`, in the transaction that decided the send: the message row is committed as SENDING, with a
   lease, rendered for its channel.
2. `hand_over`, outside any transaction: the lease is checked against the batch's instant plus the time
   elapsed since (a long batch must not outlive it), then the channel takes the message.
3. `record`, in a new transaction: SENT; or, when the message certainly did not leave, DEFERRED and tried
   again with backoff (FAILED after the last attempt); or FAILED and the address suppressed when refused;
   or UNKNOWN. A message already marked UNKNOWN (its lease ran out meanwhile) is never overwritten.
A worker that dies between 1 and 3 leaves the message SENDING; once the lease has passed, `expire`
marks it UNKNOWN for the operator. Nothing is ever sent again on a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from connectors.delivery import DeliveryError, Failure
from flows.journey import Performed, SendIntent
from flows.reasons import Reason
from shopify_app.messaging.channels import Envelope, OutboundChannel, envelope_for
from shopify_app.models import Journey, Message, MessageStatus, Shop
from shopify_app.suppressions import suppress

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=5)
MAX_ERROR = 2000


class BatchClock:
    """A frozen instant that still moves: the batch's `now` plus the monotonic time elapsed since.

    `chorus worker --once --now T` freezes the clock for a whole run; a lease must still be judged by how
    long the hand-over really took.
    """

    def __init__(self, at: datetime) -> None:
        self._at = at
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._started)


@dataclass(frozen=True)
class Prepared:
    message_id: int
    journey_id: int
    step: str
    channel: str
    envelope: Envelope
    payload: Mapping[str, object]
    lease_until: datetime
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What the hand-over came to, for the message and for its journey."""

    status: MessageStatus
    reason: Reason
    at: datetime
    performed: Performed | None = None  # None: the journey waits for `retry_at` (or the message was lost)
    retry_at: datetime | None = None
    error: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None


class AlreadyHandled(Exception):
    """The step already has a message that went out (or may have): it is never sent again."""


class SendProtocol:
    def __init__(
        self,
        channels: Mapping[str, OutboundChannel],
        *,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = MAX_ATTEMPTS,
        retry_base: timedelta = RETRY_BASE,
    ) -> None:
        self.channels = channels
        self._lease = lease
        self._max_attempts = max_attempts
        self._retry_base = retry_base

    @property
    def configured(self) -> frozenset[str]:
        return frozenset(self.channels)

    def prepare(
        self, session: Session, journey: Journey, shop: Shop, intent: SendIntent, now: datetime, *, leased_at: datetime
    ) -> Prepared:
        """Commit-to-be: the message as SENDING, leased from `leased_at` (the real instant, which a frozen `now`
        may be behind), rendered. Raises AlreadyHandled for a step that has a live message other than a deferred
        one for the same channel and address."""
        assert journey.id is not None
        message = self._message_for(session, journey, intent, now)
        assert message.id is not None
        envelope = envelope_for(shop, message.id, message.address)
        message.payload = self.channels[intent.channel].render(intent.content_id, intent.content, envelope)
        message.status = MessageStatus.SENDING
        message.lease_until = leased_at + self._lease
        message.attempts += 1
        message.error = None
        return Prepared(
            message_id=message.id,
            journey_id=journey.id,
            step=intent.step,
            channel=intent.channel,
            envelope=envelope,
            payload=message.payload,
            lease_until=message.lease_until,
            attempts=message.attempts,
        )

    def hand_over(self, prepared: Prepared, clock: BatchClock) -> Outcome:
        """Give the message to its channel, unless its lease ran out first. No database access."""
        if clock.now() >= prepared.lease_until:
            # Another worker may already call it unknown; it certainly did not leave from here.
            return self._not_sent(prepared, "the lease ran out before the hand-over", clock.now())
        try:
            handover = self.channels[prepared.channel].send(prepared.payload, prepared.envelope, clock.now())
        except DeliveryError as exc:
            at = clock.now()
            detail = exc.detail[:MAX_ERROR]
            if exc.failure is Failure.UNKNOWN:
                return Outcome(MessageStatus.UNKNOWN, Reason.SEND_INTERRUPTED, at, Performed.UNKNOWN, error=detail)
            if exc.failure is Failure.REFUSED:
                return Outcome(MessageStatus.FAILED, Reason.SEND_REFUSED, at, Performed.FAILED, error=detail)
            return self._not_sent(prepared, detail, at)
        return Outcome(
            MessageStatus.SENT,
            Reason.SENT,
            clock.now(),
            Performed.SENT,
            provider=handover.provider,
            provider_message_id=handover.provider_message_id,
        )

    def record(self, session: Session, prepared: Prepared, outcome: Outcome) -> MessageStatus:
        """Store the outcome on the message; returns the status it now has (UNKNOWN stays UNKNOWN)."""
        message = session.get(Message, prepared.message_id, with_for_update=True)
        assert message is not None
        message.provider = outcome.provider or message.provider
        message.provider_message_id = outcome.provider_message_id or message.provider_message_id
        if message.status != MessageStatus.SENDING:
            log.warning("message %s: outcome %s arrived after it became %s", message.id, outcome.status, message.status)
            return MessageStatus(message.status)
        message.status = outcome.status
        message.lease_until = None
        message.error = outcome.error
        if outcome.status is MessageStatus.SENT:
            message.sent_at = outcome.at
        if outcome.reason is Reason.SEND_REFUSED:
            suppress(
                session, shop_id=message.shop_id, channel=message.channel, address=message.address,
                reason="refused", message_id=message.id, now=outcome.at,
            )  # fmt: skip
        return outcome.status

    def expire(self, session: Session, now: datetime) -> list[Message]:
        """Messages left SENDING past their lease belong to a worker that died mid-hand-over: UNKNOWN."""
        stale = list(
            session.exec(
                select(Message)
                .where(Message.status == MessageStatus.SENDING, col(Message.lease_until) < now)
                .with_for_update(skip_locked=True)
            )
        )
        for message in stale:
            message.status = MessageStatus.UNKNOWN
            message.lease_until = None
            message.error = "the worker stopped while handing the message over"
            log.warning("message %s: outcome unknown (interrupted hand-over); not retried", message.id)
        return stale

    def _not_sent(self, prepared: Prepared, detail: str, at: datetime) -> Outcome:
        if prepared.attempts >= self._max_attempts:
            return Outcome(MessageStatus.FAILED, Reason.SEND_GAVE_UP, at, Performed.FAILED, error=detail)
        retry_at = at + self._retry_base * (1 << (prepared.attempts - 1))
        return Outcome(MessageStatus.DEFERRED, Reason.SEND_DEFERRED, at, retry_at=retry_at, error=detail)

    def _message_for(self, session: Session, journey: Journey, intent: SendIntent, now: datetime) -> Message:
        """A deferred message of this step for the same channel and address is tried again; any other live
        message of the step means it was handled; a deferred one for another address is cancelled."""
        live = session.exec(
            select(Message)
            .where(Message.journey_id == journey.id, Message.step == intent.step)
            .where(col(Message.status).in_([MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DEFERRED,
                                            MessageStatus.UNKNOWN]))
            .with_for_update()
        ).first()  # fmt: skip
        if live is not None:
            if live.status != MessageStatus.DEFERRED:
                raise AlreadyHandled(f"message {live.id} of step {intent.step} is {live.status}")
            if (live.channel, live.address) == (intent.channel, intent.address):
                return live
            live.status = MessageStatus.CANCELLED
            session.flush()
        assert journey.id is not None
        message = Message(
            shop_id=journey.shop_id,
            journey_id=journey.id,
            flow=journey.flow,
            step=intent.step,
            channel=intent.channel,
            address=intent.address,
            status=MessageStatus.SENDING,
            created_at=now,
        )
        session.add(message)
        session.flush()  # the id goes into the unsubscribe link
        return message
