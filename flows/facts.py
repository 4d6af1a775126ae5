"""What the flows know of the world: plain, immutable facts, gathered by the caller from the mirror."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class CheckoutLine:
    variant_id: int | None
    product_id: int | None
    title: str | None
    variant_title: str | None
    quantity: int
    price_at_checkout: Decimal | None


@dataclass(frozen=True)
class CheckoutFacts:
    token: str
    cart_token: str | None
    email: str | None
    customer_id: int | None
    first_name: str | None
    accepts_marketing: bool | None  # the checkout's own consent box
    currency: str | None
    recovery_url: str | None
    lines: tuple[CheckoutLine, ...]
    created_at: datetime | None
    updated_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class VariantNow:
    """A variant as the storefront shows it now."""

    variant_id: int
    product_title: str | None
    variant_title: str | None
    price: Decimal | None
    currency: str | None
    in_stock: bool
    deleted: bool
    image_url: str | None
    url: str | None


@dataclass(frozen=True)
class OrderFacts:
    order_id: int
    checkout_token: str | None
    cart_token: str | None
    customer_id: int | None
    email: str | None
    created_at: datetime | None
    source_name: str | None


@dataclass(frozen=True)
class EmailConsent:
    """The customer's email consent as Shopify last reported it, and Chorus's own unsubscribe list."""

    state: str | None  # Shopify's emailMarketingConsent state, if the customer is known
    changed_at: datetime | None
    unsubscribed_here: bool  # the address used a Chorus unsubscribe link


@dataclass(frozen=True)
class ShopFacts:
    installed: bool
    name: str | None
    postal_address: str | None
