"""What a topic handler receives, and how it says a delivery can never succeed."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from shopify_app.models import Shop, WebhookEvent


class Journeys(Protocol):
    """What a handler tells the journeys: the store did something that starts flows, or changed something
    that journeys may depend on. Carried out at once (`JourneyHooks`) or with the worker's batch."""

    def trigger(
        self, session: Session, shop: Shop, event: str, subject: str, now: datetime, *, at: datetime | None = None
    ) -> int: ...

    def touch(
        self,
        session: Session,
        shop: Shop,
        now: datetime,
        *,
        subjects: Collection[str] = (),
        customer_id: int | None = None,
        email: str | None = None,
    ) -> int: ...


class PermanentEventError(Exception):
    """The delivery cannot be handled however often it is retried (e.g. a required field is missing)."""


@dataclass(frozen=True)
class MirrorWrite:
    """Where and how a write to the mirror happens, whether a webhook or the store sync brought the data."""

    session: Session
    shop: Shop
    now: datetime
    observed_at: datetime  # when the change happened, as far as is known
    source: str  # the webhook topic, or "sync"
    event_id: int | None = None  # the webhook event, if one brought it

    @property
    def shop_id(self) -> int:
        assert self.shop.id is not None
        return self.shop.id


@dataclass(frozen=True)
class WebhookContext:
    session: Session  # inside the worker's transaction: commit and rollback are not the handler's
    shop: Shop
    event: WebhookEvent
    payload: dict[str, Any]
    now: datetime
    journeys: Journeys | None = None  # None: only the mirror is kept (tests of the mirror alone)

    @property
    def observed_at(self) -> datetime:
        """When Shopify says the change happened, else when we learnt of it."""
        return self.event.triggered_at or self.event.received_at

    @property
    def mirror(self) -> MirrorWrite:
        return MirrorWrite(self.session, self.shop, self.now, self.observed_at, self.event.topic, self.event.id)


Handler = Callable[[WebhookContext], None]
