"""The one interface every channel connector implements, and what it reports back.

A connector gets its configuration and HTTP session in its constructor and knows no database and no
flows. `send` either returns a `Handover` (the provider took the message) or raises `DeliveryError`
saying what is known: certainly not sent, refused for good, or unknown. Inside `sessions()`, the connector
may keep its connections open from one message to the next (and closes them when the block ends); `send`
may then be called from several threads at once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

M_contra = TypeVar("M_contra", contravariant=True)


@dataclass(frozen=True)
class Handover:
    provider: str  # "smtp", "twilio", ...
    provider_message_id: str | None
    cost: Decimal | None = None  # what the provider charges, when it says so at hand-over
    cost_currency: str | None = None


class Channel(Protocol[M_contra]):
    def send(self, message: M_contra, now: datetime) -> Handover: ...

    def sessions(self) -> AbstractContextManager[None]: ...
