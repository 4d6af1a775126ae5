"""The local mirror of storefront state, kept fresh by webhooks.

Every row belongs to one shop; Shopify's own ids are unique only within it. Each row keeps the
Shopify `updated_at` it was written from, so that an older delivery never overwrites newer data.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.preassigned import preassign_ids
from shopify_app.db.types import Amount, BigId, UTCDateTime
from shopify_app.models.rewritten import Rewritten


def _shop_fk() -> Any:
    return Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")


class Product(Rewritten, table=True):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("shop_id", "product_id"),
        Index("ix_products_shop_type", "shop_id", "product_type"),
        Index("ix_products_shop_vendor", "shop_id", "vendor"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    product_id: int = Field(sa_type=BigInteger)
    title: str | None = None
    handle: str | None = None
    status: str | None = Field(default=None, max_length=20)
    product_type: str | None = None
    vendor: str | None = None
    image_url: str | None = None
    url: str | None = None
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Variant(Rewritten, table=True):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("shop_id", "variant_id"),
        Index("ix_variants_shop_product", "shop_id", "product_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    variant_id: int = Field(sa_type=BigInteger)
    product_id: int | None = Field(default=None, sa_type=BigInteger)
    title: str | None = None
    sku: str | None = None
    price: Decimal | None = Field(default=None, sa_type=Amount)
    compare_at_price: Decimal | None = Field(default=None, sa_type=Amount)
    currency: str | None = Field(default=None, max_length=3)
    inventory_quantity: int | None = None
    # "deny": cannot be bought when out of stock; "continue": oversells.
    inventory_policy: str | None = Field(default=None, max_length=20)
    image_url: str | None = None
    url: str | None = None
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def in_stock(self) -> bool:
        return in_stock(self.inventory_policy, self.inventory_quantity)


def in_stock(inventory_policy: str | None, inventory_quantity: int | None) -> bool:
    """Whether a variant can be bought: it oversells, is not tracked, or has some left."""
    if inventory_policy == "continue" or inventory_quantity is None:
        return True
    return inventory_quantity > 0


class Customer(Rewritten, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("shop_id", "customer_id"),
        Index("ix_customers_shop_email", "shop_id", "email"),
        # The lapse sweep reads the customers whose last order crossed a threshold since its last run.
        Index("ix_customers_shop_last_order", "shop_id", "last_order_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    customer_id: int = Field(sa_type=BigInteger)
    email: str | None = None  # lower-cased
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country_code: str | None = Field(default=None, max_length=2)
    province_code: str | None = Field(default=None, max_length=10)  # of their default address
    locale: str | None = Field(default=None, max_length=20)
    state: str | None = Field(default=None, max_length=20)
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    email_consent_state: str | None = Field(default=None, max_length=20)
    email_consent_opt_in_level: str | None = Field(default=None, max_length=30)
    email_consent_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sms_consent_state: str | None = Field(default=None, max_length=20)
    sms_consent_opt_in_level: str | None = Field(default=None, max_length=30)
    sms_consent_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sms_consent_collected_from: str | None = Field(default=None, max_length=30)
    last_order_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # their latest uncancelled order


@preassign_ids
class ConsentRecord(SQLModel, table=True):
    """Every consent signal Chorus observed or collected, kept as proof: append-only, exported with the person's
    data. Whom it is about: the Shopify customer where known, and the address (email, E.164 phone) it is for."""

    __tablename__ = "consent_records"
    __table_args__ = (
        UniqueConstraint("webhook_event_id", "channel"),
        Index("ix_consent_records_shop_customer", "shop_id", "customer_id"),
        Index("ix_consent_records_shop_address", "shop_id", "address"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    customer_id: int | None = Field(default=None, sa_type=BigInteger)
    address: str | None = Field(default=None, max_length=320)  # lower-cased email or E.164 number
    channel: str = Field(max_length=10)  # "email" | "sms" | "whatsapp" | "push" | "inbox"
    state: str | None = Field(default=None, max_length=20)
    opt_in_level: str | None = Field(default=None, max_length=30)
    collected_from: str | None = Field(default=None, max_length=30)
    consent_updated_at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=100)  # a `flows.consent.Source`
    # What proves it, where known: the webhook topic, the keyword, the form's wording version and its digest,
    # the IP address and user agent of the browser that sent it.
    evidence: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    webhook_event_id: int | None = Field(
        default=None, foreign_key="webhook_events.id", sa_type=BigId, ondelete="SET NULL"
    )
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class Checkout(Rewritten, table=True):
    __tablename__ = "checkouts"
    __table_args__ = (
        UniqueConstraint("shop_id", "token"),
        Index("ix_checkouts_shop_cart_token", "shop_id", "cart_token"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    token: str = Field(max_length=255)
    cart_token: str | None = Field(default=None, max_length=255)
    checkout_id: int | None = Field(default=None, sa_type=BigInteger)
    customer_id: int | None = Field(default=None, sa_type=BigInteger)
    email: str | None = None  # lower-cased
    phone: str | None = None
    buyer_accepts_marketing: bool | None = None
    buyer_accepts_sms_marketing: bool | None = None
    sms_marketing_phone: str | None = None
    currency: str | None = Field(default=None, max_length=3)
    abandoned_checkout_url: str | None = None
    line_items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    subtotal_price: Decimal | None = Field(default=None, sa_type=Amount)
    total_price: Decimal | None = Field(default=None, sa_type=Amount)
    customer_locale: str | None = Field(default=None, max_length=20)
    country_code: str | None = Field(default=None, max_length=2)
    province_code: str | None = Field(default=None, max_length=10)
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Order(Rewritten, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id"),
        Index("ix_orders_shop_checkout_token", "shop_id", "checkout_token"),
        Index("ix_orders_shop_cart_token", "shop_id", "cart_token"),
        Index("ix_orders_shop_customer", "shop_id", "customer_id"),
        Index("ix_orders_shop_email", "shop_id", "email"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = _shop_fk()
    order_id: int = Field(sa_type=BigInteger)
    name: str | None = None
    checkout_token: str | None = Field(default=None, max_length=255)
    cart_token: str | None = Field(default=None, max_length=255)
    customer_id: int | None = Field(default=None, sa_type=BigInteger)
    email: str | None = None  # lower-cased
    phone: str | None = None
    source_name: str | None = None  # "web", "pos", an app's name...
    financial_status: str | None = Field(default=None, max_length=30)
    fulfillment_status: str | None = Field(default=None, max_length=30)
    buyer_accepts_marketing: bool | None = None
    currency: str | None = Field(default=None, max_length=3)
    total_price: Decimal | None = Field(default=None, sa_type=Amount)
    line_items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fulfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # when it was all shipped
