"""Sending the reminders that are due, at most once each.

For every due journey the flow decides again from the storefront's current state. A message that is
to go out is committed as SENDING (with a lease) before it is handed to the channel, and marked SENT
after. If the process dies in between, the lease runs out and the message becomes UNKNOWN for the
operator: it is never sent again on a guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from connectors.delivery import DeliveryError, Failure
from connectors.email.message import OutgoingEmail
from flows import abandoned_checkout
from flows.reasons import Reason
from shopify_app.journeys import facts
from shopify_app.journeys.decisions import transition
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.messaging.render import EmailTemplate, render_email
from shopify_app.models import (
    Checkout,
    Journey,
    JourneyState,
    Message,
    MessageStatus,
    Shop,
)
from shopify_app.suppressions import suppress
from shopify_app.tally import Tally

log = logging.getLogger(__name__)

EMAIL = "email"
MAX_SEND_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=5)


class EmailChannel(Protocol):
    def send(self, email: OutgoingEmail, now: datetime) -> str: ...


@dataclass(frozen=True)
class ReminderReport(Tally):
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    refused: int = 0
    unknown: int = 0


@dataclass(frozen=True)
class _Prepared:
    message_id: int
    email: OutgoingEmail


class ReminderSender:
    def __init__(
        self,
        engine: Engine,
        channel: EmailChannel,
        links: UnsubscribeLinks,
        *,
        sender_address: str,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 20,
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._links = links
        self._sender_address = sender_address
        self._lease = lease
        self._batch_size = batch_size
        self._template = EmailTemplate.packaged(abandoned_checkout.NAME)

    def run(self, now: datetime) -> ReminderReport:
        """Everything due at `now`, batch after batch, until nothing more is due."""
        report = ReminderReport(unknown=self.expire_interrupted_sends(now))
        while True:
            claimed, decided, prepared = self._decide_batch(now)
            if not claimed:
                return report
            report += decided
            for item in prepared:
                report += self._hand_over(item, now)

    def expire_interrupted_sends(self, now: datetime) -> int:
        """Messages left SENDING past their lease belong to a worker that died mid-hand-over."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            stale = session.exec(
                select(Message)
                .where(Message.status == MessageStatus.SENDING, col(Message.lease_until) < now)
                .with_for_update(skip_locked=True)
            ).all()
            for message in stale:
                message.status = MessageStatus.UNKNOWN
                message.error = "the worker stopped while handing the message over"
                journey = session.get(Journey, message.journey_id, with_for_update=True)
                if journey is not None:
                    transition(
                        session, journey, JourneyState.UNKNOWN, Reason.SEND_INTERRUPTED, step=message.step, now=now
                    )
                log.warning("message %s: outcome unknown (interrupted hand-over); not retried", message.id)
        return len(stale)

    def _decide_batch(self, now: datetime) -> tuple[int, ReminderReport, list[_Prepared]]:
        prepared: list[_Prepared] = []
        skipped = 0
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            journeys = session.exec(
                select(Journey)
                .where(Journey.flow == abandoned_checkout.NAME, Journey.state == JourneyState.WAITING)
                .where(col(Journey.due_at) <= now)
                .order_by(col(Journey.due_at), col(Journey.id))
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            for journey in journeys:
                item = self._decide(session, journey, now)
                if item is None:
                    skipped += 1
                else:
                    prepared.append(item)
        return len(journeys), ReminderReport(skipped=skipped), prepared

    def _decide(self, session: Session, journey: Journey, now: datetime) -> _Prepared | None:
        shop = session.get(Shop, journey.shop_id)
        checkout = session.exec(
            select(Checkout).where(Checkout.shop_id == journey.shop_id, Checkout.token == journey.subject)
        ).first()
        if shop is None or checkout is None:
            transition(
                session, journey, JourneyState.SKIPPED, Reason.NOTHING_LEFT, step=abandoned_checkout.STEP, now=now
            )
            return None
        customer = facts.customer_of(session, checkout)
        decision = abandoned_checkout.decide(
            facts.checkout_facts(checkout, customer),
            policy=facts.policy(session, journey.shop_id),
            shop=facts.shop_facts(shop),
            consent=facts.email_consent(session, journey.shop_id, checkout.email, customer),
            orders=facts.orders_that_may_convert(session, checkout),
            variants=facts.current_variants(session, checkout),
            now=now,
        )
        if decision.reminder is None or checkout.email is None:
            transition(session, journey, JourneyState.SKIPPED, decision.reason, step=abandoned_checkout.STEP, now=now)
            return None
        message = self._message_for(session, journey, checkout.email, now)
        rendered = render_email(
            self._template,
            {"reminder": decision.reminder, "unsubscribe_url": self._links.url(_id(message))},
        )
        message.subject, message.body_html, message.body_text = rendered.subject, rendered.html, rendered.text
        message.status = MessageStatus.SENDING
        message.lease_until = now + self._lease
        message.attempts += 1
        message.error = None
        transition(
            session,
            journey,
            JourneyState.SENDING,
            Reason.SEND,
            step=abandoned_checkout.STEP,
            now=now,
            detail={
                "message_id": message.id,
                "items": [
                    {
                        "title": i.title,
                        "quantity": i.quantity,
                        "unit_price": _text(i.unit_price),
                        "currency": i.currency,
                    }
                    for i in decision.reminder.items
                ],
                "dropped_items": decision.reminder.dropped_items,
            },
        )
        return _Prepared(
            message_id=_id(message),
            email=OutgoingEmail(
                sender_name=decision.reminder.shop_name,
                sender_address=self._sender_address,
                recipient=checkout.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                reply_to=shop.email,
                unsubscribe_url=self._links.url(_id(message)),
            ),
        )

    def _message_for(self, session: Session, journey: Journey, recipient: str, now: datetime) -> Message:
        message = session.exec(
            select(Message).where(
                Message.journey_id == journey.id, Message.step == abandoned_checkout.STEP, Message.channel == EMAIL
            )
        ).first()
        if message is None:
            message = Message(
                shop_id=journey.shop_id,
                journey_id=_id(journey),
                flow=journey.flow,
                step=abandoned_checkout.STEP,
                channel=EMAIL,
                recipient=recipient,
                body_text="",
                status=MessageStatus.SENDING,
                created_at=now,
            )
            session.add(message)
            session.flush()  # the id goes into the unsubscribe link
        return message

    def _hand_over(self, item: _Prepared, now: datetime) -> ReminderReport:
        try:
            provider_id = self._channel.send(item.email, now)
        except DeliveryError as exc:
            return self._record_failure(item.message_id, exc, now)
        with Session(self._engine) as session, session.begin():
            message, journey = self._locked(session, item.message_id)
            message.status = MessageStatus.SENT
            message.provider_message_id = provider_id
            message.sent_at = now
            message.lease_until = None
            transition(session, journey, JourneyState.SENT, Reason.SENT, step=message.step, now=now)
        return ReminderReport(sent=1)

    def _record_failure(self, message_id: int, error: DeliveryError, now: datetime) -> ReminderReport:
        with Session(self._engine) as session, session.begin():
            message, journey = self._locked(session, message_id)
            message.error = error.detail[:2000]
            message.lease_until = None
            if error.failure is Failure.UNKNOWN:
                message.status = MessageStatus.UNKNOWN
                transition(session, journey, JourneyState.UNKNOWN, Reason.SEND_INTERRUPTED, step=message.step, now=now)
                return ReminderReport(unknown=1)
            message.status = MessageStatus.FAILED
            if error.failure is Failure.NOT_SENT and message.attempts < MAX_SEND_ATTEMPTS:
                retry_at = now + RETRY_BASE * (1 << (message.attempts - 1))
                transition(
                    session, journey, JourneyState.WAITING, Reason.SEND_DEFERRED,
                    step=message.step, now=now, due_at=retry_at, detail={"error": message.error},
                )  # fmt: skip
                return ReminderReport(deferred=1)
            transition(
                session, journey, JourneyState.FAILED, Reason.SEND_REFUSED,
                step=message.step, now=now, detail={"error": message.error},
            )  # fmt: skip
            if error.failure is Failure.REFUSED:
                suppress(
                    session, shop_id=message.shop_id, channel=message.channel, address=message.recipient,
                    reason="refused", message_id=message.id, now=now,
                )  # fmt: skip
            return ReminderReport(refused=1)

    @staticmethod
    def _locked(session: Session, message_id: int) -> tuple[Message, Journey]:
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        journey = session.get(Journey, message.journey_id, with_for_update=True)
        assert journey is not None
        return message, journey


def _id(row: Message | Journey) -> int:
    assert row.id is not None
    return row.id


def _text(value: object) -> str | None:
    return None if value is None else str(value)
