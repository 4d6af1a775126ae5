"""A journey: one subject's way through one flow, as plain data, and what the engine says about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from flows.budgets import Price
from flows.reasons import Reason


class Status(StrEnum):
    INELIGIBLE = "ineligible"  # seen, not entered (yet): a later change of its subject may enter it
    WAITING = "waiting"  # at `step`, due at `due_at`
    SENDING = "sending"  # a message of `step` is being handed to a channel
    DONE = "done"  # finished; `reason` says how


OPEN = frozenset({Status.INELIGIBLE, Status.WAITING, Status.SENDING})
ACTIVE = frozenset({Status.WAITING, Status.SENDING})


class Performed(StrEnum):
    """What became of a step the journey went past."""

    SENT = "sent"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"  # its hand-over was interrupted: it may have gone out
    FAILED = "failed"
    WAITED = "waited"
    BRANCHED = "branched"


@dataclass(frozen=True)
class Journey:
    flow: str
    subject: str
    status: Status
    reason: Reason
    step: str | None = None  # the step it is at (None before entry and once done)
    entered_at: datetime | None = None
    arrived_at: datetime | None = None  # when it reached `step`: a wait's maximum counts from here
    previous_at: datetime | None = None  # when the step before was performed (sent, or due if skipped)
    due_at: datetime | None = None  # when it must be looked at next (None: only an event can move it)
    performed: Mapping[str, Performed] = field(default_factory=dict)
    # The channels a provider would not let carry the current step, and why: it is decided again without them.
    unusable: Mapping[str, Reason] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class Decision:
    """One thing the engine decided, with its reason: stored, shown on the customer's timeline."""

    step: str | None
    outcome: str  # entered, ineligible, waiting, branched, skipped, deferred, sending, exited, ended, completed...
    reason: Reason
    detail: Mapping[str, Any] = field(default_factory=dict)  # JSON-safe


@dataclass(frozen=True)
class SendIntent:
    """A message that is due and may go out now, on `channel` to `address`, built from current data."""

    step: str
    channel: str
    address: str
    content_id: str
    content: Any  # the content model of `content_id`, one for every channel that renders it
    checks: tuple[Mapping[str, str], ...] = ()  # how each of the step's channels was judged
    sms_segments: int = 2  # the longest SMS the step may send
    price: Price | None = None  # its estimated price on `channel`, where judged: stored with the message


@dataclass(frozen=True)
class Advance:
    journey: Journey
    decisions: tuple[Decision, ...] = ()
    send: SendIntent | None = None  # the journey waits, due now, for this to be handed over
    ended: tuple[str, ...] = ()  # other subjects of this flow whose journeys end (superseded)
