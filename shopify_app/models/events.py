from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class EventStatus(StrEnum):
    PENDING = "pending"  # waiting for the worker (again, after a failed attempt)
    DONE = "done"
    PARKED = "parked"  # gave up after retries or on a permanent error; `chorus events replay`
    MALFORMED = "malformed"  # correctly signed but not JSON: kept for inspection, never processed
    UNHANDLED = "unhandled"  # a topic Chorus has no handler for


_PENDING = text("status = 'pending'")
_LEASED = text("status = 'pending' AND claimed_until IS NOT NULL")
_ABOUT_CUSTOMER = text("customer_id IS NOT NULL")
_ABOUT_EMAIL = text("email IS NOT NULL")


class WebhookEvent(SQLModel, table=True):
    """One Shopify webhook delivery, stored verbatim before anything else happens to it."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # A doubled subscription delivers one action twice with distinct webhook ids.
        UniqueConstraint("shop_domain", "topic", "event_id", name="uq_webhook_events_shop_topic_event"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_webhook_events_received_at", "received_at"),
        # Partial where a new delivery has NULL (every insert pays for each index it enters): whom it is
        # about is known once it is handled, a lease once it is claimed.
        Index("ix_webhook_events_about_customer", "shop_id", "customer_id",
              sqlite_where=_ABOUT_CUSTOMER, postgresql_where=_ABOUT_CUSTOMER),
        Index("ix_webhook_events_about_email", "shop_id", "email", sqlite_where=_ABOUT_EMAIL,
              postgresql_where=_ABOUT_EMAIL),
        # The claim's two reads: each shop's oldest pending events, and the claims whose lease ran out.
        Index("ix_webhook_events_pending_shop", "shop_id", "id", sqlite_where=_PENDING, postgresql_where=_PENDING),
        Index("ix_webhook_events_leased", "claimed_until", sqlite_where=_LEASED, postgresql_where=_LEASED),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_domain: str = Field(max_length=255)  # indexed first in the unique (domain, topic, event id) key
    shop_id: int | None = Field(default=None, foreign_key="shops.id", sa_type=BigId, ondelete="SET NULL")
    topic: str = Field(max_length=100)
    webhook_id: str = Field(max_length=255, unique=True)
    event_id: str | None = Field(default=None, max_length=255)
    triggered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    api_version: str | None = Field(default=None, max_length=20)
    received_at: datetime = Field(sa_type=UTCDateTime)
    body: bytes | None = Field(default=None, sa_type=LargeBinary, repr=False)
    body_purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default=EventStatus.PENDING, max_length=20)
    attempts: int = 0
    # NULL means "as soon as possible"; set only when a failed attempt is retried later.
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    # The claim: until when the worker `claimed_by` holds it, and how often it was claimed without finishing.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    claims: int = 0
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Whom the delivery is about, noted when it is handled (for the customer's timeline).
    customer_id: int | None = Field(default=None, sa_type=BigInteger)
    email: str | None = None


class EventAttempt(SQLModel, table=True):
    """One handling of one event, written in the same transaction as the handling's effects.

    A handling that was rolled back (a crash, a kill) leaves no row; so exactly one `done` row per
    event is the proof that its effects were applied exactly once.
    """

    __tablename__ = "event_attempts"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    event_id: int = Field(foreign_key="webhook_events.id", sa_type=BigId, ondelete="CASCADE", index=True)
    number: int
    outcome: str = Field(max_length=10)  # "done" | "retry" | "parked"
    error: str | None = None
    worker: str = Field(max_length=100)
    at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: float
