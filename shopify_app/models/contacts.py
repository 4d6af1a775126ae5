"""One person per shop, and every identity they are known by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class Contact(SQLModel, table=True):
    """A person a shop may write to: at most one Shopify customer, any number of addresses (the identities).
    Journeys and messages refer to it; decisions through their journey."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("shop_id", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    customer_id: int | None = Field(default=None, sa_type=BigInteger)  # never two: contacts of two customers stay two
    country: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2, from their address
    province: str | None = Field(default=None, max_length=10)  # its subdivision code (a US state: "FL")
    timezone: str | None = Field(default=None, max_length=64)  # IANA; None: the shop's
    language: str | None = Field(default=None, max_length=20)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ContactIdentity(SQLModel, table=True):
    """An identity one contact is known by in its shop: its Shopify customer id, a lower-cased email, an E.164
    phone number (later a storefront browser id). Each belongs to one contact."""

    __tablename__ = "contact_identities"
    __table_args__ = (
        UniqueConstraint("shop_id", "kind", "value"),
        Index("ix_contact_identities_contact", "contact_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contacts.id", sa_type=BigId, ondelete="CASCADE")
    kind: str = Field(max_length=20)  # "customer", "email", "phone"
    value: str = Field(max_length=320)
    seen_at: datetime = Field(sa_type=UTCDateTime)  # first seen


class ConsentConfirmation(SQLModel, table=True):
    """An opt-in collected by Chorus that awaits confirmation through an emailed link (double opt-in). Only the
    token's digest is kept: the link is the only place the token is."""

    __tablename__ = "consent_confirmations"
    __table_args__ = (
        UniqueConstraint("token_digest"),
        Index("ix_consent_confirmations_shop_address", "shop_id", "address"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    token_digest: str = Field(max_length=64)  # SHA-256, hex
    address: str = Field(max_length=320)  # the email the link goes to
    # The opt-ins it confirms: {"email": "a@b.c", "sms": "+15551234567"}; and the proof collected with them.
    opt_ins: dict[str, Any] = Field(sa_type=JSON)
    evidence: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    sending_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the email's hand-over began
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
