"""What the flows know of the world: plain, immutable facts, gathered by the caller from the mirror.

A journey is decided on `Facts`: its subject (a checkout, an order or a customer), the customer, their
orders, what they did on the storefront (for a browse flow), the storefront's current products, and which
channels the shop has set up. Every instant a wait may be anchored at has a name in `INSTANTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from flows.budgets import Price, Spend
from flows.policy import ShopPolicy
from flows.reasons import Reason

SubjectKind = Literal["checkout", "order", "customer"]


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
    accepts_sms_marketing: bool | None = None  # the checkout's SMS consent box, for `sms_marketing_phone`
    sms_marketing_phone: str | None = None


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
    product_id: int | None = None


@dataclass(frozen=True)
class ProductNow:
    """A product as the storefront shows it now, priced at its cheapest variant that can be bought."""

    product_id: int
    title: str | None
    product_type: str | None
    vendor: str | None
    url: str | None
    image_url: str | None
    price: Decimal | None
    currency: str | None
    in_stock: bool
    active: bool


@dataclass(frozen=True)
class OrderLine:
    variant_id: int | None
    product_id: int | None
    title: str | None
    quantity: int
    price: Decimal | None


@dataclass(frozen=True)
class OrderFacts:
    order_id: int
    checkout_token: str | None
    cart_token: str | None
    customer_id: int | None
    email: str | None
    created_at: datetime | None
    source_name: str | None
    name: str | None = None
    financial_status: str | None = None
    cancelled_at: datetime | None = None
    fulfilled_at: datetime | None = None
    accepts_marketing: bool | None = None  # the box ticked at checkout
    currency: str | None = None
    total_price: Decimal | None = None
    lines: tuple[OrderLine, ...] = ()


@dataclass(frozen=True)
class Consent:
    """The customer's consent on one channel as Shopify last reported it, and Chorus's own opt-out list."""

    state: str | None  # Shopify's emailMarketingConsent or smsMarketingConsent state, if the customer is known
    changed_at: datetime | None
    unsubscribed_here: bool  # opted out through Chorus: an unsubscribe link, a STOP reply


NO_RECORDED_CONSENT = Consent(state=None, changed_at=None, unsubscribed_here=False)


@dataclass(frozen=True)
class CustomerFacts:
    customer_id: int | None
    email: str | None
    phone: str | None
    first_name: str | None
    created_at: datetime | None = None
    last_order_at: datetime | None = None


@dataclass(frozen=True)
class CartItem:
    """A variant a contact's browser added to the cart (all its additions since their last checkout)."""

    variant_id: int
    product_id: int | None
    quantity: int
    added_at: datetime  # the latest addition


@dataclass(frozen=True)
class BrowsedProduct:
    """A product a contact looked at with interest (viewed twice, or stayed on it), not added to the cart since."""

    product_id: int
    variant_id: int | None  # the variant the page showed
    viewed_at: datetime


@dataclass(frozen=True)
class PriceDrop:
    """A variant a contact viewed or carted whose price in the mirror fell since (`MIN_PRICE_DROP` or more
    below the mirror's price when their latest such event came; the pixel's price is never believed)."""

    variant_id: int
    product_id: int | None
    was: Decimal  # the mirror's price at their latest view or addition to cart
    seen_at: datetime  # that view or addition

    def fall(self, now: Decimal) -> Decimal:
        return (self.was - now) / self.was if self.was > 0 else Decimal(0)


# A price drop is worth a message from this fall on, for views and additions to cart this recent.
MIN_PRICE_DROP = Decimal("0.10")
PRICE_DROP_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class BrowsingFacts:
    """What a known contact did on the storefront, as their browsers' events say (a browser becomes a
    contact's only by proof: `shopify_app.browsing.stitching`)."""

    cart: tuple[CartItem, ...] = ()  # added since their latest checkout, latest first
    cart_updated_at: datetime | None = None  # the latest addition to that cart
    # Their latest checkout: a checkout event of their browser, or a checkout a signed webhook names them in.
    checkout_started_at: datetime | None = None
    # Products viewed with interest and not added to the cart or checked out since, latest view first.
    browsed: tuple[BrowsedProduct, ...] = ()
    added_to_cart_at: datetime | None = None  # their browsers' latest addition to the cart, whatever came after
    # Variants they viewed or carted whose mirror price fell by `MIN_PRICE_DROP` since, latest event first.
    price_drops: tuple[PriceDrop, ...] = ()


@dataclass(frozen=True)
class ContactFacts:
    """The person a journey is about, as Chorus knows them across every record that named them."""

    contact_id: int
    timezone: str | None = None  # IANA, from their address or number; None: the shop's
    country: str | None = None
    province: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class ShopFacts:
    installed: bool
    name: str | None
    postal_address: str | None
    url: str | None = None
    timezone: str | None = None  # IANA, e.g. "America/New_York"
    currency: str | None = None  # the shop's: the mirror's prices are in it
    money_format: str | None = None  # Shopify's, e.g. "${{amount}}"
    policy: ShopPolicy = field(default_factory=ShopPolicy)  # caps, quiet hours, budgets, regions...
    # Distinct contacts with an order (later: a storefront visit) in the last 30 days: the growth stage.
    monthly_active: int = 0
    # The month's spend on each paid channel the shop set a budget for (see flows.budgets).
    spend: Mapping[str, Spend] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """Everything one decision about one journey may look at, as of one instant."""

    shop: ShopFacts
    contact: ContactFacts | None = None  # None: nobody Chorus knows yet
    customer: CustomerFacts | None = None
    checkout: CheckoutFacts | None = None
    order: OrderFacts | None = None
    orders: tuple[OrderFacts, ...] = ()  # the customer's orders (and those tied to the checkout)
    browsing: BrowsingFacts | None = None  # a browse flow's: the contact's storefront activity
    email_consent: Consent = NO_RECORDED_CONSENT
    sms_consent: Consent = NO_RECORDED_CONSENT
    whatsapp_consent: Consent = NO_RECORDED_CONSENT  # an opt-in texted to the shop's WhatsApp number
    variants: Mapping[int, VariantNow] = field(default_factory=dict)  # those the subject names
    related: tuple[ProductNow, ...] = ()  # candidates for a recommendation, when the content asks for them
    configured_channels: frozenset[str] = frozenset()
    refused_addresses: frozenset[str] = frozenset()  # a provider refused them for good: never tried again
    # Channels that cannot carry this message (it rendered too long for an SMS, say), and why.
    unusable: Mapping[str, Reason] = field(default_factory=dict)
    # The contact's marketing messages within the longest cap's window: when each went out, on which channel.
    recent_messages: tuple[tuple[datetime, str], ...] = ()
    # The priorities and due times of the contact's other journeys due within the hour (lower: more important).
    due_soon: tuple[tuple[int, datetime], ...] = ()
    # What this message would cost on each paid channel, estimated from the shop's rates for the number's country;
    # only where the shop set a budget or the step caps its price (a channel without one is not judged on cost).
    prices: Mapping[str, Price] = field(default_factory=dict)

    @property
    def email(self) -> str | None:
        """Where email about this subject goes: the checkout's or order's address, else the customer's."""
        for candidate in (
            self.checkout.email if self.checkout else None,
            self.order.email if self.order else None,
            self.customer.email if self.customer else None,
        ):
            if candidate:
                return candidate
        return None

    @property
    def phone(self) -> str | None:
        """Where SMS about this subject goes, in E.164 (the caller normalises): the number given with the
        checkout's SMS box, else the customer's own. Consent belongs to a number: a checkout's contact phone
        without the box is not one to market to."""
        if self.checkout is not None and self.checkout.sms_marketing_phone:
            return self.checkout.sms_marketing_phone
        return self.customer.phone if self.customer else None

    @property
    def sms_box(self) -> tuple[bool | None, datetime | None]:
        """The SMS marketing box ticked with the checkout, and when it was."""
        if self.checkout is not None and self.checkout.sms_marketing_phone:
            return self.checkout.accepts_sms_marketing, self.checkout.updated_at
        return None, None

    @property
    def customer_id(self) -> int | None:
        for candidate in (
            self.checkout.customer_id if self.checkout else None,
            self.order.customer_id if self.order else None,
            self.customer.customer_id if self.customer else None,
        ):
            if candidate is not None:
                return candidate
        return None

    @property
    def first_name(self) -> str | None:
        if self.checkout and self.checkout.first_name:
            return self.checkout.first_name
        return self.customer.first_name if self.customer else None

    @property
    def consent_box(self) -> tuple[bool | None, datetime | None]:
        """The marketing box ticked with the subject itself (checkout or order), and when it was."""
        if self.checkout is not None:
            return self.checkout.accepts_marketing, self.checkout.updated_at
        if self.order is not None:
            return self.order.accepts_marketing, self.order.created_at
        return None, None

    @property
    def started_at(self) -> datetime | None:
        """When the subject began: a journey's age is measured from here (else from its entry)."""
        if self.checkout is not None:
            return self.checkout.created_at or self.checkout.updated_at
        if self.order is not None:
            return self.order.created_at
        return None


# The instants a wait may be anchored at, by the name definitions use.
INSTANTS: Mapping[str, Callable[[Facts], datetime | None]] = {
    "checkout.created_at": lambda f: f.checkout.created_at if f.checkout else None,
    "checkout.updated_at": lambda f: (f.checkout.updated_at or f.checkout.created_at) if f.checkout else None,
    "order.created_at": lambda f: f.order.created_at if f.order else None,
    "order.fulfilled_at": lambda f: f.order.fulfilled_at if f.order else None,
    "customer.created_at": lambda f: f.customer.created_at if f.customer else None,
    "customer.last_order_at": lambda f: f.customer.last_order_at if f.customer else None,
    "customer.cart_updated_at": lambda f: f.browsing.cart_updated_at if f.browsing else None,
}

# Which subject each instant belongs to (a definition may only wait on its own subject's facts, or the customer's).
INSTANT_SUBJECTS: Mapping[str, str] = {name: name.partition(".")[0] for name in INSTANTS}
