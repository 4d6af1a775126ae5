"""A merchant's own provider accounts (they pay for them): one per channel and shop."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import Amount, BigId, UTCDateTime


class ChannelAccount(SQLModel, table=True):
    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("shop_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    channel: str = Field(max_length=20)  # "sms", "whatsapp", "email"
    provider: str = Field(max_length=20)  # "twilio", "meta", "sendgrid"
    # What may be shown: account SID, sender, phone number id, public key...
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # The secrets (auth token, access token, app secret, API key...) as one JSON object, encrypted.
    secrets_ciphertext: str = Field(repr=False)
    connected_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WhatsAppWindow(SQLModel, table=True):
    """When a number last wrote to the shop on WhatsApp: free text may answer it for 24 hours after."""

    __tablename__ = "whatsapp_windows"
    __table_args__ = (UniqueConstraint("shop_id", "phone"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    phone: str = Field(max_length=20)  # E.164
    last_inbound_at: datetime = Field(sa_type=UTCDateTime)
    # When the number asked for the shop's marketing on WhatsApp (START); None once it said STOP.
    opted_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WhatsAppTemplate(SQLModel, table=True):
    """The approved template a flow's send step goes out as on WhatsApp, for one shop."""

    __tablename__ = "whatsapp_templates"
    __table_args__ = (UniqueConstraint("shop_id", "flow", "step"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    step: str = Field(max_length=50)
    name: str = Field(max_length=512)
    language: str = Field(max_length=20)
    # The body's {{1}}, {{2}}... in order: sandboxed templates over the message's content ("{{ first_name }}").
    params: list[str] = Field(default_factory=list, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # Meta prices a template by its category: marketing, utility or authentication.
    category: str = Field(default="marketing", max_length=20, sa_column_kwargs={"server_default": "marketing"})


class ChannelRate(SQLModel, table=True):
    """A shop's own price for one message on a paid channel in one country (its provider contract), in place of
    the shipped estimate. `country` "*" is the shop's rate for every country it lists no rate for; `category`
    is WhatsApp's (marketing, utility, authentication), empty for SMS (a rate per segment)."""

    __tablename__ = "channel_rates"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "country", "category"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    channel: str = Field(max_length=20)
    country: str = Field(max_length=2)
    category: str = Field(default="", max_length=20)
    amount: Decimal = Field(sa_type=Amount)
    currency: str = Field(max_length=3)
    updated_at: datetime = Field(sa_type=UTCDateTime)
