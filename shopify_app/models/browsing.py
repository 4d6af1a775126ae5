"""What shoppers do on the storefront, as its web pixel reports it: untrusted, kept apart from the webhook
queue, and erased after `PIXEL_RETENTION_DAYS`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import Amount, BigId, UTCDateTime


class PixelEvent(SQLModel, table=True):
    """One storefront event, as validated: the fields Chorus uses, nothing else the browser sent."""

    __tablename__ = "pixel_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "event_id"),  # a replayed or resent event is one event
        Index("ix_pixel_events_shop_client", "shop_id", "client_id"),
        Index("ix_pixel_events_shop_checkout", "shop_id", "checkout_token"),
        Index("ix_pixel_events_received", "received_at"),
        Index("ix_pixel_events_shop_contact", "shop_id", "contact_id"),  # a contact's story, a browse flow's facts
        Index("ix_pixel_events_shop_variant", "shop_id", "variant_id"),  # who looked at a variant now cheaper
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    event_id: str = Field(max_length=100)  # the pixel's id of the event
    name: str = Field(max_length=40)  # "page_viewed", "product_viewed", ...
    client_id: str = Field(max_length=100)  # the browser's, as the pixel reports it
    occurred_at: datetime = Field(sa_type=UTCDateTime)  # as the browser said, kept within a sane range
    received_at: datetime = Field(sa_type=UTCDateTime)
    product_id: int | None = Field(default=None, sa_type=BigInteger)
    variant_id: int | None = Field(default=None, sa_type=BigInteger)
    # The mirror's price of the variant when the event came (the pixel's own price is not believed): what a
    # later price drop is measured against.
    mirror_price: Decimal | None = Field(default=None, sa_type=Amount)
    checkout_token: str | None = Field(default=None, max_length=100)  # joins a signed checkout webhook's
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the rest, validated (the url's path...)
    contact_id: int | None = Field(default=None, sa_type=BigId)  # once the browser is linked to a contact
