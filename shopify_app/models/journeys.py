"""Flow settings per shop, journeys through a flow, and every decision taken on the way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime

# Journey states in which a subject (or, for some flows, a customer) may hold only one journey per flow.
_OPEN = text("state IN ('ineligible', 'waiting', 'sending')")
_ACTIVE = text("state IN ('waiting', 'sending') AND exclusive_key IS NOT NULL")


class ShopFlow(SQLModel, table=True):
    """A shop's settings for one flow. A flow the shop has no row for arrived after it installed: it is off."""

    __tablename__ = "shop_flows"
    __table_args__ = (UniqueConstraint("shop_id", "flow"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    enabled: bool = True
    # Per step, what the merchant changed: {"reminder": {"delay_seconds": 1800, "enabled": true, "channels": [...]}}
    steps: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Time-triggered flows: every crossing up to this instant has been looked at (a lapse: over last orders; an
    # abandoned cart: over when the storefront events arrived).
    swept_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Journey(SQLModel, table=True):
    """One subject's way through one flow (the pure model is `flows.journey.Journey`). The worker reads and
    writes journeys as plain rows (`journeys.store.JourneyRows`); this model defines the table and serves
    readers."""

    __tablename__ = "journeys"
    __table_args__ = (
        Index(
            "uq_journeys_open_subject", "shop_id", "flow", "subject", unique=True,
            sqlite_where=_OPEN, postgresql_where=_OPEN,
        ),
        Index(
            "uq_journeys_active_customer", "shop_id", "flow", "exclusive_key", unique=True,
            sqlite_where=_ACTIVE, postgresql_where=_ACTIVE,
        ),
        Index("ix_journeys_due", "state", "due_at"),
        Index("ix_journeys_shop_subject", "shop_id", "subject"),
        Index("ix_journeys_shop_customer", "shop_id", "customer_id"),
        Index("ix_journeys_shop_email", "shop_id", "email"),
        Index("ix_journeys_contact", "contact_id"),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    subject: str = Field(max_length=255)  # a checkout token, an order id, a customer id
    # Who it is about, until contacts exist: the Shopify customer id, else the lower-cased email.
    customer_id: int | None = Field(default=None, sa_type=BigId)
    email: str | None = None
    # Set while active in a flow that allows one journey per customer: the customer's key.
    exclusive_key: str | None = Field(default=None, max_length=320)
    state: str = Field(max_length=20)
    step: str | None = Field(default=None, max_length=50)
    reason: str = Field(max_length=40)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    entered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    arrived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    previous_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    performed: dict[str, str] = Field(default_factory=dict, sa_type=JSON)  # step -> sent, skipped, ...
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # The channels the provider would not let carry the current step (a WhatsApp template it refused): channel
    # -> reason. The step is decided again without them; emptied when the journey moves on.
    unusable: dict[str, str] = Field(default_factory=dict, sa_type=JSON, sa_column_kwargs={"server_default": "{}"})
    # The person it is about (None until known: a journey of before contacts, whose subject has not been seen
    # since). No foreign key: merging and erasing contacts rewrite these rows themselves (see `contacts`).
    contact_id: int | None = Field(default=None, sa_type=BigId)


class Decision(SQLModel, table=True):
    """Every decision a flow took: entered or not, waited, branched, sent or skipped, ended, and why.
    Append-only."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_shop_decided", "shop_id", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    journey_id: int = Field(foreign_key="journeys.id", sa_type=BigId, ondelete="CASCADE", index=True)
    flow: str = Field(max_length=50)
    step: str | None = Field(default=None, max_length=50)
    outcome: str = Field(max_length=20)
    reason: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    decided_at: datetime = Field(sa_type=UTCDateTime)
