"""Flow settings per shop, journeys through a flow, and every decision taken on the way."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class ShopFlow(SQLModel, table=True):
    """A shop's settings for one flow. No row means the flow's defaults (enabled)."""

    __tablename__ = "shop_flows"
    __table_args__ = (UniqueConstraint("shop_id", "flow"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    enabled: bool = True
    delay_seconds: int | None = None  # None: the flow's default
    updated_at: datetime = Field(sa_type=UTCDateTime)


class JourneyState(StrEnum):
    INELIGIBLE = "ineligible"  # seen, does not qualify (yet): a later update may enrol it
    WAITING = "waiting"  # enrolled, due at `due_at`
    SENDING = "sending"  # a message is being handed to the provider
    SENT = "sent"
    SKIPPED = "skipped"  # re-validation said no, with the reason
    UNKNOWN = "unknown"  # interrupted while sending: the operator decides; never retried blindly
    FAILED = "failed"  # the provider refused the message


FINISHED_STATES = frozenset({JourneyState.SENT, JourneyState.SKIPPED, JourneyState.UNKNOWN, JourneyState.FAILED})


class Journey(SQLModel, table=True):
    """One customer's way through one flow, keyed by what started it (a checkout token)."""

    __tablename__ = "journeys"
    __table_args__ = (
        UniqueConstraint("shop_id", "flow", "subject"),
        Index("ix_journeys_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    subject: str = Field(max_length=255)
    state: str = Field(max_length=20)
    reason: str = Field(max_length=40)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Decision(SQLModel, table=True):
    """Every decision a flow took: enrolled or not, sent or skipped, and why. Append-only."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_shop_decided", "shop_id", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    journey_id: int = Field(foreign_key="journeys.id", sa_type=BigId, ondelete="CASCADE", index=True)
    flow: str = Field(max_length=50)
    step: str = Field(max_length=50)
    outcome: str = Field(max_length=20)  # the journey state it led to
    reason: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    decided_at: datetime = Field(sa_type=UTCDateTime)
