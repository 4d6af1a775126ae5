"""The send protocol: at most once, for every flow and channel.

1. `prepare`, in the transaction that decided the send: the message row is committed as SENDING, with a
   lease, rendered for its channel.
2. `hand_over`, outside any transaction: the lease is checked against the batch's instant plus the time
   elapsed since (a long batch must not outlive it), then the channel takes the message. Before each group
   of hand-overs `begin_hand_overs` commits when they began (`handed_at`), for the messages still this
   worker's to send.
3. `record`, in a new transaction: SENT; or, when the message certainly did not leave, DEFERRED and tried
   again with backoff (FAILED after the last attempt); or FAILED and the address suppressed when refused;
   or UNKNOWN. A message already marked UNKNOWN (its lease ran out meanwhile) is never overwritten.
A worker that dies between 1 and 3 leaves the message SENDING; once the lease has passed, `expire` marks
it UNKNOWN for the operator if its hand-over had begun, else DEFERRED: it certainly never left, and is tried
again. Nothing is ever sent again on a guess, and a crash costs at most one group's messages.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Table, insert, update
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from connectors.delivery import AddressProblem, DeliveryError, Failure
from connectors.whatsapp.cloud import OUTSIDE_WINDOW
from flows.contents import with_links
from flows.journey import Performed, SendIntent
from flows.reasons import Reason
from shopify_app.db.statements import among, insert_rows, update_rows
from shopify_app.journeys.store import JourneyRow
from shopify_app.messaging.channels import Envelope, OutboundChannel, Unrenderable, envelope_for
from shopify_app.messaging.directory import ChannelDirectory
from shopify_app.messaging.feedback import apply_receipts
from shopify_app.messaging.links import ShortLinks
from shopify_app.messaging.wording import wordings_for
from shopify_app.models import LIVE_STATUSES, Link, Message, MessageStatus, Shop
from shopify_app.suppressions import REFUSED, UNSUBSCRIBED, suppress

log = logging.getLogger(__name__)

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]  # set-based reads and writes, no ORM objects
_LINKS: Table = Link.__table__  # type: ignore[attr-defined]
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=5)
MAX_ERROR = 2000
# Messages whose hand-over begins together: what a worker killed mid-hand-over may leave unknown.
HAND_OVER_GROUP = 25

# Commits that these messages' hand-overs begin now; returns those still this worker's to hand over.
BeginHandOvers = Callable[[Sequence[int], datetime], set[int]]


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
    via: OutboundChannel = field(compare=False, repr=False)  # the shop's channel that rendered it, and sends it


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
    problem: AddressProblem | None = None  # what a refusal says of the address itself
    cost: Decimal | None = None
    cost_currency: str | None = None
    unusable: tuple[str, Reason] | None = None  # this channel will not carry the step, and why: another may


class AlreadyHandled(Exception):
    """The step already has a message that went out (or may have): it is never sent again."""


@dataclass(frozen=True)
class Unsendable:
    """The message cannot go out on its channel (too long for it, say): cancelled before any hand-over, so
    that another of the step's channels may carry the step."""

    channel: str
    reason: Reason
    detail: str


class SendProtocol:
    def __init__(
        self,
        channels: ChannelDirectory,
        *,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = MAX_ATTEMPTS,
        retry_base: timedelta = RETRY_BASE,
        concurrency: int = 4,
        links: ShortLinks | None = None,
    ) -> None:
        self.channels = channels
        self._links = links  # None: links are left as they are (tests of the protocol alone)
        self._concurrency = concurrency  # hand-overs in flight per channel
        self._lease = lease
        self._max_attempts = max_attempts
        self._retry_base = retry_base

    def prepare(
        self,
        session: Session,
        journey: JourneyRow,
        shop: Shop,
        intent: SendIntent,
        now: datetime,
        *,
        leased_at: datetime,
    ) -> Prepared | Unsendable:
        """One message; raises AlreadyHandled (see `prepare_many`)."""
        [prepared] = self.prepare_many(session, [(journey, shop, intent)], now, leased_at=leased_at)
        if isinstance(prepared, AlreadyHandled):
            raise prepared
        return prepared

    def prepare_many(
        self,
        session: Session,
        sends: Sequence[tuple[JourneyRow, Shop, SendIntent]],
        now: datetime,
        *,
        leased_at: datetime,
    ) -> list[Prepared | AlreadyHandled | Unsendable]:
        """Commit-to-be, for each send: the message as SENDING, leased from `leased_at` (the real instant, which
        a frozen `now` may be behind), rendered by the shop's channel. A step with a live message other than a
        deferred one for the same channel and address gets AlreadyHandled instead: it is never sent twice. A
        message its channel cannot carry is cancelled (Unsendable). Set-based: a few statements for the whole
        batch."""
        slots = self._slots_for(session, [(journey, intent) for journey, _shop, intent in sends], now)
        wordings = wordings_for(session, {shop.id for _journey, shop, _intent in sends if shop.id is not None})
        lease_until = leased_at + self._lease
        prepared: list[Prepared | AlreadyHandled | Unsendable] = []
        updates: list[dict[str, Any]] = []
        for (journey, shop, intent), slot in zip(sends, slots, strict=True):
            if isinstance(slot, AlreadyHandled):
                prepared.append(slot)
                continue
            message_id, attempts = slot
            assert journey.id is not None
            assert shop.id is not None
            wording = wordings.get((shop.id, journey.flow, intent.step, intent.channel))
            envelope = envelope_for(
                shop, message_id, intent.address, journey.flow, intent.step, intent.sms_segments, wording
            )
            via = self.channels.channel(shop.id, intent.channel)
            content = intent.content
            if self._links is not None:
                content = with_links(content, self._links.maker(shop.id, message_id, now))
            try:
                if via is None:
                    raise Unrenderable(Reason.NOT_CONFIGURED, f"{intent.channel} is no longer set up")
                payload = _rendered(via, intent.content_id, content, envelope)
            except Unrenderable as exc:
                cancelled = {"id": message_id, "payload": {}, "lease_until": None, "handed_at": None,
                             "status": MessageStatus.CANCELLED, "attempts": attempts, "error": str(exc)}  # fmt: skip
                updates.append(cancelled)
                prepared.append(Unsendable(intent.channel, exc.reason, exc.detail))
                continue
            updates.append(
                {"id": message_id, "payload": payload, "lease_until": lease_until, "status": MessageStatus.SENDING,
                 "attempts": attempts + 1, "error": None, "handed_at": None}
            )  # fmt: skip
            prepared.append(
                Prepared(
                    message_id, journey.id, intent.step, intent.channel, envelope, payload, lease_until, attempts + 1,
                    via,
                )
            )  # fmt: skip
        update_rows(session, _MESSAGES, updates)  # the rows are locked: `attempts` is exact
        links = self._links.take() if self._links is not None else []
        if links:
            session.execute(insert(_LINKS), links)
        return prepared

    def hand_over_many(
        self, prepared: Sequence[Prepared], clock: BatchClock, begin: BeginHandOvers | None = None
    ) -> list[Outcome]:
        """Every message to its channel, at most `concurrency` hand-overs in flight per channel, over sessions
        kept open for the batch. In groups of HAND_OVER_GROUP, each begun with `begin` (see the module) while
        the group before it is still in flight, never further ahead. In the order given."""
        outcomes: dict[int, Outcome] = {}
        by_channel: dict[int, list[Prepared]] = {}
        for p in prepared:
            by_channel.setdefault(id(p.via), []).append(p)
        for batch in by_channel.values():
            with batch[0].via.sessions(), ThreadPoolExecutor(self._concurrency, "hand-over") as pool:
                ahead: deque[dict[int, Future[Outcome]]] = deque()
                for start in range(0, len(batch), HAND_OVER_GROUP):
                    if len(ahead) == 2:
                        outcomes.update(_results(ahead.popleft()))
                    group = batch[start : start + HAND_OVER_GROUP]
                    held, refused = self._begin(group, clock, begin)
                    outcomes.update(refused)
                    ahead.append(
                        {p.message_id: pool.submit(self.hand_over, p, clock) for p in group if p.message_id in held}
                    )
                for in_flight in ahead:
                    outcomes.update(_results(in_flight))
        return [outcomes[p.message_id] for p in prepared]

    def _begin(
        self, group: Sequence[Prepared], clock: BatchClock, begin: BeginHandOvers | None
    ) -> tuple[set[int], dict[int, Outcome]]:
        """Which of the group to hand over, and the outcome of the others."""
        ids = {p.message_id for p in group}
        if begin is None:
            return ids, {}
        try:
            held = begin(sorted(ids), clock.now())
        except Exception as exc:
            log.warning("hand-overs not begun: %s", exc)
            return set(), {p.message_id: self._not_sent(p, f"hand-over not begun: {exc}", clock.now()) for p in group}
        # What another worker took back meanwhile (the lease ran out) is that worker's to record.
        gone = "no longer this worker's to hand over"
        return held, {p.message_id: self._not_sent(p, gone, clock.now()) for p in group if p.message_id not in held}

    def begin_hand_overs(self, session: Session, message_ids: Sequence[int], at: datetime) -> set[int]:
        """Note that these messages' hand-overs begin `at`, for those still SENDING within their lease (not
        expired by another worker meanwhile); returns their ids."""
        table = _MESSAGES
        return set(
            session.execute(
                update(table)
                .where(among(session, table.c.id, message_ids), table.c.status == MessageStatus.SENDING)
                .where(table.c.lease_until > at)
                .values(handed_at=at)
                .returning(table.c.id)
            ).scalars()
        )

    def hand_over(self, prepared: Prepared, clock: BatchClock) -> Outcome:
        """Give the message to its channel, unless its lease ran out first. No database access."""
        if clock.now() >= prepared.lease_until:
            # Another worker may already call it unknown; it certainly did not leave from here.
            return self._not_sent(prepared, "the lease ran out before the hand-over", clock.now())
        try:
            handover = prepared.via.send(prepared.payload, prepared.envelope, clock.now())
        except DeliveryError as exc:
            at = clock.now()
            detail = exc.detail[:MAX_ERROR]
            if exc.failure is Failure.UNKNOWN:
                return Outcome(MessageStatus.UNKNOWN, Reason.SEND_INTERRUPTED, at, Performed.UNKNOWN, error=detail)
            if exc.failure is Failure.NOT_CARRIED:
                # Not sent, and never on this channel for this step: the journey decides it again without it.
                why = Reason.OUTSIDE_WINDOW if exc.code == str(OUTSIDE_WINDOW) else Reason.CHANNEL_REFUSED
                return Outcome(MessageStatus.FAILED, why, at, error=detail, unusable=(prepared.channel, why))
            if exc.failure is Failure.REFUSED and exc.problem is not None:
                # The address itself is refused (invalid, opted out at the provider): it is suppressed, and the
                # step is decided again at once, on its next allowed channel as a new attempt.
                why = Reason.UNSUBSCRIBED if exc.problem is AddressProblem.OPTED_OUT else Reason.ADDRESS_REFUSED
                return Outcome(MessageStatus.FAILED, Reason.SEND_REFUSED, at, error=detail, problem=exc.problem,
                               unusable=(prepared.channel, why))  # fmt: skip
            if exc.failure is Failure.REFUSED:
                return Outcome(MessageStatus.FAILED, Reason.SEND_REFUSED, at, Performed.FAILED, error=detail)
            return self._not_sent(prepared, detail, at, not_before=exc.retry_after)
        return Outcome(
            MessageStatus.SENT,
            Reason.SENT,
            clock.now(),
            Performed.SENT,
            provider=handover.provider,
            provider_message_id=handover.provider_message_id,
            cost=handover.cost,
            cost_currency=handover.cost_currency,
        )

    def record(self, session: Session, prepared: Prepared, outcome: Outcome) -> MessageStatus:
        [status] = self.record_many(session, [(prepared, outcome)])
        return status

    def record_many(self, session: Session, results: Sequence[tuple[Prepared, Outcome]]) -> list[MessageStatus]:
        """Store each outcome on its message; returns the status each now has (UNKNOWN stays UNKNOWN)."""
        table = _MESSAGES
        ids = sorted(p.message_id for p, _outcome in results)
        held = {
            row.id: row
            for row in session.execute(
                rows_of(table.c.id, table.c.status, table.c.shop_id, table.c.channel, table.c.address,
                        table.c.provider, table.c.provider_message_id)
                .where(among(session, table.c.id, ids))
                .order_by(table.c.id)
                .with_for_update()
            )
        }  # fmt: skip
        statuses: list[MessageStatus] = []
        taken: list[dict[str, Any]] = []
        late: list[dict[str, Any]] = []
        for prepared, outcome in results:
            row = held[prepared.message_id]
            # What the provider said of it is kept, whatever else became of it.
            provider = {
                "id": row.id,
                "provider": outcome.provider or row.provider,
                "provider_message_id": outcome.provider_message_id or row.provider_message_id,
            }
            if row.status != MessageStatus.SENDING:
                log.warning("message %s: outcome %s came after it became %s", row.id, outcome.status, row.status)
                statuses.append(MessageStatus(row.status))
                late.append(provider)
                continue
            sent_at = outcome.at if outcome.status is MessageStatus.SENT else None
            taken.append(
                provider | {"status": outcome.status, "lease_until": None, "error": outcome.error, "sent_at": sent_at,
                            "cost": outcome.cost, "cost_currency": outcome.cost_currency}
            )  # fmt: skip
            if outcome.problem is not None:
                # Opted out at the provider (a STOP to the sender) is an unsubscribe; anything else, unreachable.
                why = UNSUBSCRIBED if outcome.problem is AddressProblem.OPTED_OUT else REFUSED
                suppress(
                    session, shop_id=row.shop_id, channel=row.channel, address=row.address,
                    reason=why, message_id=row.id, now=outcome.at,
                )  # fmt: skip
            statuses.append(outcome.status)
        update_rows(session, table, taken)
        update_rows(session, table, late)  # an UNKNOWN message keeps its status
        # The provider may have called back before this commit: what it said is applied now.
        apply_receipts(
            session,
            [(row["id"], held[row["id"]].shop_id, row["provider"], row["provider_message_id"])
             for row in taken if row["status"] is MessageStatus.SENT and row["provider_message_id"]],
        )  # fmt: skip
        return statuses

    def expire(self, session: Session, now: datetime) -> list[tuple[Message, Outcome]]:
        """Messages left SENDING past their lease belong to a worker that died: UNKNOWN if their hand-over had
        begun (they may have left), else DEFERRED and due again at once (they certainly did not), or FAILED
        after the last attempt. Each with the outcome its journey takes."""
        stale = list(
            session.exec(
                select(Message)
                .where(Message.status == MessageStatus.SENDING, col(Message.lease_until) < now)
                .with_for_update(skip_locked=True)
            )
        )
        expired: list[tuple[Message, Outcome]] = []
        for message in stale:
            message.lease_until = None
            if message.handed_at is not None:
                message.status = MessageStatus.UNKNOWN
                message.error = "the worker stopped while handing the message over"
                log.warning("message %s: outcome unknown (interrupted hand-over); not retried", message.id)
                outcome = Outcome(MessageStatus.UNKNOWN, Reason.SEND_INTERRUPTED, now, Performed.UNKNOWN)
            elif message.attempts >= self._max_attempts:
                message.status, message.error = MessageStatus.FAILED, "the worker stopped before every attempt"
                outcome = Outcome(MessageStatus.FAILED, Reason.SEND_GAVE_UP, now, Performed.FAILED, error=message.error)
            else:
                message.status = MessageStatus.DEFERRED
                message.error = "the worker stopped before handing the message over; it is tried again"
                outcome = Outcome(MessageStatus.DEFERRED, Reason.SEND_DEFERRED, now, retry_at=now, error=message.error)
            expired.append((message, outcome))
        return expired

    def _not_sent(
        self, prepared: Prepared, detail: str, at: datetime, *, not_before: timedelta | None = None
    ) -> Outcome:
        """Deferred with backoff, or later still when the provider said when (Retry-After, WhatsApp's 24 hours
        after its per-user marketing limit); failed after the last attempt."""
        if prepared.attempts >= self._max_attempts:
            return Outcome(MessageStatus.FAILED, Reason.SEND_GAVE_UP, at, Performed.FAILED, error=detail)
        retry_at = at + max(self._retry_base * (1 << (prepared.attempts - 1)), not_before or timedelta(0))
        return Outcome(MessageStatus.DEFERRED, Reason.SEND_DEFERRED, at, retry_at=retry_at, error=detail)

    def _slots_for(
        self, session: Session, sends: Sequence[tuple[JourneyRow, SendIntent]], now: datetime
    ) -> list[tuple[int, int] | AlreadyHandled]:
        """For each send, its message's (id, attempts so far): a deferred message of its step for the same
        channel and address is tried again; any other live message of the step means it was handled; a deferred
        one for another address is cancelled. New messages are inserted together, ids returned in order."""
        table = _MESSAGES
        journey_ids = sorted({journey.id for journey, _intent in sends if journey.id is not None})
        live = {
            (row.journey_id, row.step): row
            for row in session.execute(
                rows_of(table.c.id, table.c.journey_id, table.c.step, table.c.status, table.c.channel,
                       table.c.address, table.c.attempts)
                .where(among(session, table.c.journey_id, journey_ids))
                .where(table.c.status.in_([str(s) for s in LIVE_STATUSES]))
                .order_by(table.c.id)
                .with_for_update()
            )
        }  # fmt: skip
        slots: list[tuple[int, int] | AlreadyHandled | None] = []
        cancelled: list[int] = []
        new: list[dict[str, Any]] = []
        for journey, intent in sends:
            assert journey.id is not None
            existing = live.get((journey.id, intent.step))
            if existing is not None and existing.status != MessageStatus.DEFERRED:
                slots.append(AlreadyHandled(f"message {existing.id} of step {intent.step} is {existing.status}"))
                continue
            if existing is not None and (existing.channel, existing.address) == (intent.channel, intent.address):
                slots.append((existing.id, existing.attempts))
                continue
            if existing is not None:
                cancelled.append(existing.id)  # one live message per step: the old one stops being live first
            slots.append(None)
            # Its estimate from the start: a budget counts it while it is in flight (a retry keeps it).
            price = intent.price
            new.append(
                {"shop_id": journey.shop_id, "journey_id": journey.id, "flow": journey.flow, "step": intent.step,
                 "channel": intent.channel, "address": intent.address, "payload": {},
                 "status": MessageStatus.SENDING, "attempts": 0, "created_at": now, "contact_id": journey.contact_id,
                 "estimate": price.amount if price else None, "estimate_currency": price.currency if price else None}
            )  # fmt: skip
        if cancelled:
            session.execute(update(table).where(table.c.id.in_(cancelled)).values(status=MessageStatus.CANCELLED))
        ids = iter(insert_rows(session, table, new))
        return [slot if slot is not None else (next(ids), 0) for slot in slots]


def _rendered(via: OutboundChannel, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
    """The message as its channel carries it; a template that fails (a merchant's wording, above all) makes the
    channel unusable for it, never a broken message. Logged without the message's values."""
    try:
        return via.render(content_id, content, envelope)
    except Unrenderable:
        raise
    except Exception as exc:
        whose = "the shop's wording" if envelope.wording is not None else "the template"
        log.warning("message %s: %s of %s on %s failed: %s", envelope.message_id, whose, content_id, via.name,
                    type(exc).__name__)  # fmt: skip
        detail = str(exc) if isinstance(exc, TemplateError) else type(exc).__name__
        raise Unrenderable(Reason.RENDER_FAILED, f"{whose} failed to render: {detail}"[:MAX_ERROR]) from None


def _results(in_flight: Mapping[int, Future[Outcome]]) -> dict[int, Outcome]:
    return {message_id: future.result() for message_id, future in in_flight.items()}
