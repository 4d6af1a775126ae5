"""Messages handed to a channel, and addresses that must not be contacted again."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from shopify_app.db.types import Amount, BigId, UTCDateTime


class MessageStatus(StrEnum):
    SENDING = "sending"  # committed before the hand-over; if it stays so, the outcome is unknown
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider says it reached the phone or mailbox
    READ = "read"  # and that it was read (where the channel says so)
    UNDELIVERED = "undelivered"  # the provider accepted it, then gave up (unlike FAILED: a refused hand-over)
    DEFERRED = "deferred"  # certainly not sent yet; tried again later
    UNKNOWN = "unknown"  # interrupted during the hand-over: may or may not have gone out; never retried
    FAILED = "failed"  # refused by the provider, or never sent after every attempt
    CANCELLED = "cancelled"  # deferred, then no longer due (the journey ended)


# A journey step holds at most one message that went out, may have, or still may.
LIVE_STATUSES = (
    MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DEFERRED, MessageStatus.UNKNOWN,
    MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.UNDELIVERED,
)  # fmt: skip
_LIVE = text("status IN ('sending', 'sent', 'deferred', 'unknown', 'delivered', 'read', 'undelivered')")
# Messages that went out, or may have: what frequency caps count.
SENT_STATUSES = (
    MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.UNKNOWN, MessageStatus.DELIVERED, MessageStatus.READ,
    MessageStatus.UNDELIVERED,
)  # fmt: skip
# What a provider's callbacks may say of a message it accepted, in the only order it may move.
DELIVERY_ORDER = {MessageStatus.SENT: 0, MessageStatus.DELIVERED: 1, MessageStatus.READ: 2}


class Message(SQLModel, table=True):
    """One message to one address on one channel, as rendered for that channel."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("uq_messages_live_step", "journey_id", "step", unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE),
        Index("ix_messages_status_lease", "status", "lease_until"),
        Index("ix_messages_shop_created", "shop_id", "created_at"),
        Index("ix_messages_shop_address", "shop_id", "address"),
        Index("ix_messages_contact_sent", "contact_id", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    journey_id: int = Field(foreign_key="journeys.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    step: str = Field(max_length=50)
    channel: str = Field(max_length=20)
    address: str  # lower-cased email, E.164 phone, push endpoint...
    # What the channel carries, as rendered: email {"subject", "html", "text", "unsubscribe_url"}; others their own.
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(max_length=20)
    attempts: int = 0
    # Until when the worker that committed SENDING may still be handing it over.
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When its hand-over began: from then on it may have left (unknown if the worker dies), before it not.
    handed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider: str | None = Field(default=None, max_length=40)
    provider_message_id: str | None = None
    cost: Decimal | None = Field(default=None, sa_type=Amount)
    cost_currency: str | None = Field(default=None, max_length=3)
    # What it was priced at when decided, in its rates' currency: what a budget counts until a cost in that
    # currency is recorded (see flows.budgets). None: no budget or step cap priced it.
    estimate: Decimal | None = Field(default=None, sa_type=Amount)
    estimate_currency: str | None = Field(default=None, max_length=3)
    error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    contact_id: int | None = Field(default=None, sa_type=BigId)  # as the journey's (no foreign key: see there)

    @property
    def subject(self) -> str | None:
        value = self.payload.get("subject")
        return value if isinstance(value, str) else None


class Suppression(SQLModel, table=True):
    """An address that asked (through Chorus) not to be contacted on a channel, or that a provider refused."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    channel: str = Field(max_length=20)
    address: str  # lower-cased email, or E.164 phone
    reason: str = Field(max_length=40)  # "unsubscribed", "refused"...
    message_id: int | None = Field(default=None, foreign_key="messages.id", sa_type=BigId, ondelete="SET NULL")
    created_at: datetime = Field(sa_type=UTCDateTime)


class DeliveryReceipt(SQLModel, table=True):
    """What a provider's callback said about one of its messages, as received (append-only). A callback may
    come before the hand-over's own outcome is recorded: the message then takes it when it is."""

    __tablename__ = "delivery_receipts"
    __table_args__ = (Index("ix_delivery_receipts_provider_message", "shop_id", "provider", "provider_message_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    provider: str = Field(max_length=40)
    provider_message_id: str = Field(max_length=100)
    status: str = Field(max_length=20)  # delivered, read, undelivered; or opened (kept, never applied)
    error_code: str | None = Field(default=None, max_length=20)
    received_at: datetime = Field(sa_type=UTCDateTime)


class Link(SQLModel, table=True):
    """A link in a message, by its short id (`/l/<id>`): where it leads, and which message carried it."""

    __tablename__ = "links"

    id: str = Field(primary_key=True, max_length=10)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    message_id: int = Field(foreign_key="messages.id", sa_type=BigId, ondelete="CASCADE", index=True)
    target: str
    created_at: datetime = Field(sa_type=UTCDateTime)


class Click(SQLModel, table=True):
    """One visit of a message's link (append-only), for the measurement of what a message caused."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_shop_clicked", "shop_id", "clicked_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    link_id: str = Field(foreign_key="links.id", max_length=10, ondelete="CASCADE")
    message_id: int = Field(foreign_key="messages.id", sa_type=BigId, ondelete="CASCADE", index=True)
    channel: str = Field(max_length=20)
    clicked_at: datetime = Field(sa_type=UTCDateTime)
    user_agent: str | None = Field(default=None, max_length=512)
