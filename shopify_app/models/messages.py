"""Messages handed to a channel, and addresses that must not be contacted again."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class MessageStatus(StrEnum):
    SENDING = "sending"  # committed before the hand-over; if it stays so, the outcome is unknown
    SENT = "sent"  # the provider accepted it
    UNKNOWN = "unknown"  # interrupted during the hand-over: may or may not have gone out
    FAILED = "failed"  # the provider refused it


class Message(SQLModel, table=True):
    """One message to one recipient on one channel, as rendered. At most one per journey step and channel."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("journey_id", "step", "channel"),
        Index("ix_messages_status_lease", "status", "lease_until"),
        Index("ix_messages_shop_created", "shop_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    journey_id: int = Field(foreign_key="journeys.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    step: str = Field(max_length=50)
    channel: str = Field(max_length=20)
    recipient: str
    subject: str | None = None
    body_html: str | None = None
    body_text: str
    status: str = Field(max_length=20)
    attempts: int = 0
    # Until when the worker that committed SENDING may still be handing it over.
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_message_id: str | None = None
    error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Suppression(SQLModel, table=True):
    """An address that asked (through Chorus) not to be contacted on a channel."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    channel: str = Field(max_length=20)
    address: str  # lower-cased email, or E.164 phone
    reason: str = Field(max_length=40)  # "unsubscribed", "bounced"...
    message_id: int | None = Field(default=None, foreign_key="messages.id", sa_type=BigId, ondelete="SET NULL")
    created_at: datetime = Field(sa_type=UTCDateTime)
