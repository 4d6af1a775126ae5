"""Shopify's mandatory privacy requests, and what Chorus did about each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class PrivacyRequest(SQLModel, table=True):
    """A data request (with its export, until the customer is redacted), a customer or a shop redaction.

    A shop redaction deletes every other row of the shop; this record of it stays (shop_id becomes NULL).
    """

    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_shop", "shop_domain", "kind"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int | None = Field(default=None, foreign_key="shops.id", sa_type=BigId, ondelete="SET NULL")
    shop_domain: str = Field(max_length=255)
    kind: str = Field(max_length=30)  # "data_request" | "customers_redact" | "shop_redact"
    shopify_request_id: int | None = Field(default=None, sa_type=BigInteger)
    customer_id: int | None = Field(default=None, sa_type=BigInteger)
    received_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    export: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    export_erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
