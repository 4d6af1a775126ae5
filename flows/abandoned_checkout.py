"""The abandoned checkout flow: one reminder, some time after the customer stopped, if still true.

Enrolment happens whenever the checkout changes; the decision to send is taken again just before
sending, from the storefront's state at that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flows.consent import email_marketing_refusal
from flows.facts import CheckoutFacts, CheckoutLine, EmailConsent, OrderFacts, ShopFacts, VariantNow
from flows.reasons import Reason

NAME = "abandoned_checkout"
STEP = "reminder"


@dataclass(frozen=True)
class Policy:
    """What a merchant may tune."""

    enabled: bool = True
    delay: timedelta = timedelta(hours=1)
    cutoff: timedelta = timedelta(days=7)  # older checkouts are not recovered


@dataclass(frozen=True)
class Enrolment:
    reason: Reason  # ENROLLED, or why the checkout does not qualify (yet)
    due_at: datetime | None = None

    @property
    def enrolled(self) -> bool:
        return self.reason is Reason.ENROLLED


@dataclass(frozen=True)
class ReminderItem:
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal | None  # None when the current price cannot be stated in the checkout's currency
    currency: str | None
    image_url: str | None
    url: str | None


@dataclass(frozen=True)
class Reminder:
    """The content of the reminder, one model for every channel that will render it."""

    shop_name: str
    first_name: str | None
    items: tuple[ReminderItem, ...]
    recovery_url: str
    postal_address: str
    dropped_items: int  # lines left out because they can no longer be bought


@dataclass(frozen=True)
class Decision:
    reason: Reason
    reminder: Reminder | None = None

    @property
    def send(self) -> bool:
        return self.reminder is not None


def enrol(checkout: CheckoutFacts, consent: EmailConsent, policy: Policy) -> Enrolment:
    """Whether the checkout qualifies for a reminder, and when it would be due.

    The reminder is due `delay` after the checkout's latest update, so every update pushes it back.
    """
    if not checkout.email:
        return Enrolment(Reason.NO_EMAIL)
    if not checkout.lines:
        return Enrolment(Reason.NO_ITEMS)
    refusal = email_marketing_refusal(consent, checkout.accepts_marketing, checkout.updated_at)
    if refusal is not None:
        return Enrolment(refusal)
    started = checkout.updated_at or checkout.created_at
    if started is None:
        return Enrolment(Reason.NO_ITEMS)
    return Enrolment(Reason.ENROLLED, due_at=started + policy.delay)


def decide(
    checkout: CheckoutFacts,
    *,
    policy: Policy,
    shop: ShopFacts,
    consent: EmailConsent,
    orders: Iterable[OrderFacts],
    variants: Mapping[int, VariantNow],
    now: datetime,
) -> Decision:
    """Send or skip, just before sending, from the storefront's state at `now`."""
    if not shop.installed:
        return Decision(Reason.SHOP_UNINSTALLED)
    if not policy.enabled:
        return Decision(Reason.FLOW_DISABLED)
    if not shop.postal_address:
        return Decision(Reason.NO_POSTAL_ADDRESS)
    if checkout.completed_at is not None:
        return Decision(Reason.CHECKOUT_COMPLETED)
    started = checkout.created_at or checkout.updated_at
    if started is not None and now - started > policy.cutoff:
        return Decision(Reason.TOO_OLD)
    ordered = _ordered(checkout, orders)
    if ordered is not None:
        return Decision(ordered)
    refusal = email_marketing_refusal(consent, checkout.accepts_marketing, checkout.updated_at)
    if refusal is not None:
        return Decision(refusal)
    items = tuple(item for item in (_current_item(line, checkout, variants) for line in checkout.lines) if item)
    if not items or not checkout.recovery_url:
        return Decision(Reason.NOTHING_LEFT)
    return Decision(
        Reason.SEND,
        Reminder(
            shop_name=shop.name or "our shop",
            first_name=checkout.first_name,
            items=items,
            recovery_url=checkout.recovery_url,
            postal_address=shop.postal_address,
            dropped_items=len(checkout.lines) - len(items),
        ),
    )


def _ordered(checkout: CheckoutFacts, orders: Iterable[OrderFacts]) -> Reason | None:
    """An order from this checkout, or any later order by the same customer, from any sales channel."""
    started = checkout.created_at or checkout.updated_at
    for order in orders:
        if order.checkout_token == checkout.token or (
            checkout.cart_token is not None and order.cart_token == checkout.cart_token
        ):
            return Reason.ORDER_PLACED
        same_customer = (checkout.customer_id is not None and order.customer_id == checkout.customer_id) or (
            checkout.email is not None and order.email == checkout.email
        )
        if same_customer and (started is None or order.created_at is None or order.created_at >= started):
            return Reason.ORDERED_SINCE
    return None


def _current_item(
    line: CheckoutLine, checkout: CheckoutFacts, variants: Mapping[int, VariantNow]
) -> ReminderItem | None:
    """The line as the storefront shows it now; None if it can no longer be bought."""
    variant = variants.get(line.variant_id) if line.variant_id is not None else None
    if variant is None:
        # Not in the mirror (yet): show what the checkout said, without a price we cannot vouch for.
        return ReminderItem(
            title=line.title or "Your item",
            variant_title=line.variant_title,
            quantity=line.quantity,
            unit_price=None,
            currency=None,
            image_url=None,
            url=None,
        )
    if variant.deleted or not variant.in_stock:
        return None
    # Prices in the mirror are in the shop's currency; state one only when it is the checkout's.
    same_currency = variant.currency is None or checkout.currency is None or variant.currency == checkout.currency
    return ReminderItem(
        title=variant.product_title or line.title or "Your item",
        variant_title=_meaningful_variant_title(variant.variant_title or line.variant_title),
        quantity=line.quantity,
        unit_price=variant.price if same_currency else None,
        currency=(checkout.currency or variant.currency) if same_currency else None,
        image_url=variant.image_url,
        url=variant.url,
    )


def _meaningful_variant_title(title: str | None) -> str | None:
    return None if title in (None, "", "Default Title") else title
