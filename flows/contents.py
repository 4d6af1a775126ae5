"""What each message says, built from the storefront's current state: one content model per message,
rendered by every channel that carries it. A builder returns the content, or why there is nothing to say.

Prices are only stated in the currency the customer saw; a product that can no longer be bought is left
out; a message with nothing left to show is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from decimal import Decimal
from typing import Any

from flows.facts import PRICE_DROP_WINDOW, CartItem, CheckoutLine, Facts, OrderLine, ProductNow
from flows.journey import Journey
from flows.reasons import Reason

MAX_RECOMMENDATIONS = 3


@dataclass(frozen=True)
class Sender:
    """Who the message is from, and what marketing must say about them."""

    shop_name: str
    shop_url: str | None
    postal_address: str
    currency: str | None = None  # the shop's, which `money_format` writes
    money_format: str | None = None


@dataclass(frozen=True)
class Item:
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal | None  # None when the current price cannot be stated in the customer's currency
    currency: str | None
    image_url: str | None
    url: str | None


@dataclass(frozen=True)
class CartReminder:
    sender: Sender
    first_name: str | None
    items: tuple[Item, ...]
    recovery_url: str
    dropped_items: int  # lines left out because they can no longer be bought


@dataclass(frozen=True)
class ProductReminder:
    """A product the customer looked at, as the storefront sells it now: its price today, in stock."""

    sender: Sender
    first_name: str | None
    item: Item


@dataclass(frozen=True)
class PriceDropNote:
    """A product the customer looked at is cheaper now: the price they saw, and today's."""

    sender: Sender
    first_name: str | None
    item: Item  # at today's price
    was: Decimal


@dataclass(frozen=True)
class Greeting:
    """A welcome, or a we-miss-you: the shop, and a way back to it."""

    sender: Sender
    first_name: str | None
    part: int  # which message of the series


@dataclass(frozen=True)
class OrderNote:
    """About an order the customer placed: thanks, or asking what they think of it."""

    sender: Sender
    first_name: str | None
    order_name: str | None
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Recommendation:
    sender: Sender
    first_name: str | None
    order_name: str | None
    products: tuple[Item, ...]


Content = CartReminder | ProductReminder | PriceDropNote | Greeting | OrderNote | Recommendation
Builder = Callable[[Facts, Journey], Content | Reason]


@dataclass(frozen=True)
class ContentSpec:
    build: Builder
    needs_related: bool = False  # the caller must gather `Facts.related`


def sender(facts: Facts) -> Sender:
    return Sender(
        shop_name=facts.shop.name or "our shop",
        shop_url=facts.shop.url,
        postal_address=facts.shop.postal_address or "",
        currency=facts.shop.currency,
        money_format=facts.shop.money_format,
    )


def cart_reminder(facts: Facts, _journey: Journey) -> Content | Reason:
    checkout = facts.checkout
    if checkout is None:
        return Reason.SUBJECT_GONE
    items = tuple(item for item in (_checkout_item(line, facts) for line in checkout.lines) if item)
    if not items or not checkout.recovery_url:
        return Reason.NOTHING_LEFT
    return CartReminder(
        sender=sender(facts),
        first_name=facts.first_name,
        items=items,
        recovery_url=checkout.recovery_url,
        dropped_items=len(checkout.lines) - len(items),
    )


def storefront_cart(facts: Facts, _journey: Journey) -> Content | Reason:
    """The cart a contact's browser filled, at today's price, only what can still be bought; the link refills the
    cart with it (Shopify's cart permalink)."""
    browsing = facts.browsing
    if browsing is None:
        return Reason.SUBJECT_GONE
    kept = [(entry, item) for entry in browsing.cart if (item := _cart_item(entry, facts)) is not None]
    if not kept or not facts.shop.url:
        return Reason.NOTHING_LEFT
    lines = ",".join(f"{entry.variant_id}:{entry.quantity}" for entry, _item in kept)
    return CartReminder(
        sender=sender(facts),
        first_name=facts.first_name,
        items=tuple(item for _entry, item in kept),
        recovery_url=f"{facts.shop.url.rstrip('/')}/cart/{lines}",
        dropped_items=len(browsing.cart) - len(kept),
    )


def browsed_product(facts: Facts, journey: Journey) -> Content | Reason:
    """The product whose view entered the journey (the latest viewed with interest by then), at today's price;
    nothing when it is gone, sold out, or has no price the mirror knows (the pixel's is not repeated)."""
    browsing = facts.browsing
    if browsing is None:
        return Reason.SUBJECT_GONE
    entered = journey.entered_at
    view = next((b for b in browsing.browsed if entered is None or b.viewed_at <= entered), None)
    variant = facts.variants.get(view.variant_id) if view is not None and view.variant_id is not None else None
    if variant is None or variant.deleted or not variant.in_stock or variant.price is None:
        return Reason.NOTHING_LEFT
    item = Item(
        title=variant.product_title or "The product you looked at",
        variant_title=_variant_title(variant.variant_title),
        quantity=1,
        unit_price=variant.price,
        currency=variant.currency or facts.shop.currency,
        image_url=variant.image_url,
        url=variant.url,
    )
    return ProductReminder(sender=sender(facts), first_name=facts.first_name, item=item)


def price_drop(facts: Facts, journey: Journey) -> Content | Reason:
    """The variant whose price fell the most, of those the contact viewed or carted within `PRICE_DROP_WINDOW`
    before the journey began, that can still be bought: the mirror's price then, and now. Nothing when the price
    went back up, or it is gone or sold out."""
    browsing = facts.browsing
    if browsing is None:
        return Reason.SUBJECT_GONE
    entered = journey.entered_at
    best: tuple[Decimal, Item, Decimal] | None = None
    for drop in browsing.price_drops:
        if entered is not None and not entered - PRICE_DROP_WINDOW <= drop.seen_at <= entered:
            continue
        variant = facts.variants.get(drop.variant_id)
        if variant is None or variant.deleted or not variant.in_stock or variant.price is None:
            continue
        fall = drop.fall(variant.price)
        if best is None or fall > best[0]:
            item = Item(
                title=variant.product_title or "The product you looked at",
                variant_title=_variant_title(variant.variant_title),
                quantity=1,
                unit_price=variant.price,
                currency=variant.currency or facts.shop.currency,
                image_url=variant.image_url,
                url=variant.url,
            )
            best = (fall, item, drop.was)
    if best is None:
        return Reason.NOTHING_LEFT
    return PriceDropNote(sender=sender(facts), first_name=facts.first_name, item=best[1], was=best[2])


def greeting(part: int) -> Builder:
    def build(facts: Facts, _journey: Journey) -> Content | Reason:
        return Greeting(sender=sender(facts), first_name=facts.first_name, part=part)

    return build


def order_note(*, current_only: bool) -> Builder:
    """The order's lines; with `current_only`, only those still on sale (a review needs a product page)."""

    def build(facts: Facts, _journey: Journey) -> Content | Reason:
        order = facts.order
        if order is None:
            return Reason.SUBJECT_GONE
        items = tuple(i for i in (_order_item(line, facts, current_only) for line in order.lines) if i)
        if not items:
            return Reason.NOTHING_LEFT
        return OrderNote(sender=sender(facts), first_name=facts.first_name, order_name=order.name, items=items)

    return build


def cross_sell(facts: Facts, _journey: Journey) -> Content | Reason:
    """Up to three products related to what was bought (same type, else same vendor), in stock, not already
    bought by the customer."""
    order = facts.order
    if order is None:
        return Reason.SUBJECT_GONE
    bought = {line.product_id for o in (order, *facts.orders) for line in o.lines if line.product_id is not None}
    bought_products = [p for p in facts.related if p.product_id in bought]
    types = {p.product_type for p in bought_products if p.product_type}
    vendors = {p.vendor for p in bought_products if p.vendor}

    def rank(product: ProductNow) -> tuple[int, str, int]:
        return (0 if product.product_type in types else 1, product.title or "", product.product_id)

    candidates = sorted(
        (
            p
            for p in facts.related
            if p.product_id not in bought
            and p.active
            and p.in_stock
            and (p.product_type in types or p.vendor in vendors)
        ),
        key=rank,
    )[:MAX_RECOMMENDATIONS]
    if not candidates:
        return Reason.NOTHING_TO_OFFER
    return Recommendation(
        sender=sender(facts),
        first_name=facts.first_name,
        order_name=order.name,
        products=tuple(Item(p.title or "", None, 1, p.price, p.currency, p.image_url, p.url) for p in candidates),
    )


def summary(content: Content) -> dict[str, object]:
    """What a decision records of a message's content: the items and prices it promised."""
    items: tuple[Item, ...] = ()
    if isinstance(content, CartReminder | OrderNote):
        items = content.items
    elif isinstance(content, Recommendation):
        items = content.products
    elif isinstance(content, ProductReminder | PriceDropNote):
        items = (content.item,)
    detail: dict[str, object] = {
        "items": [
            {
                "title": i.title,
                "quantity": i.quantity,
                "unit_price": str(i.unit_price) if i.unit_price is not None else None,
                "currency": i.currency,
            }
            for i in items
        ]
    }
    if isinstance(content, CartReminder):
        detail["dropped_items"] = content.dropped_items
    if isinstance(content, PriceDropNote):
        detail["was"] = str(content.was)
    return detail


CONTENTS: Mapping[str, ContentSpec] = {
    "abandoned_checkout.reminder": ContentSpec(cart_reminder),
    "abandoned_checkout.second_reminder": ContentSpec(cart_reminder),
    "welcome.welcome_1": ContentSpec(greeting(1)),
    "welcome.welcome_2": ContentSpec(greeting(2)),
    "welcome.welcome_3": ContentSpec(greeting(3)),
    "post_purchase.thank_you": ContentSpec(order_note(current_only=False)),
    "post_purchase.review_request": ContentSpec(order_note(current_only=True)),
    "post_purchase.cross_sell": ContentSpec(cross_sell, needs_related=True),
    "winback.winback": ContentSpec(greeting(1)),
    "winback.winback_followup": ContentSpec(greeting(2)),
    "abandoned_cart.cart_reminder": ContentSpec(storefront_cart),
    "browse_abandonment.browse_reminder": ContentSpec(browsed_product),
    "price_drop.price_drop_alert": ContentSpec(price_drop),
}


def _checkout_item(line: CheckoutLine, facts: Facts) -> Item | None:
    """The line as the storefront shows it now; None if it can no longer be bought."""
    currency = facts.checkout.currency if facts.checkout else None
    variant = facts.variants.get(line.variant_id) if line.variant_id is not None else None
    if variant is None:
        # Not in the mirror (yet): show what the checkout said, without a price we cannot vouch for.
        return Item(
            line.title or "Your item", _variant_title(line.variant_title), line.quantity, None, None, None, None
        )
    if variant.deleted or not variant.in_stock:
        return None
    # Prices in the mirror are in the shop's currency; state one only when it is the checkout's.
    same_currency = variant.currency is None or currency is None or variant.currency == currency
    return Item(
        title=variant.product_title or line.title or "Your item",
        variant_title=_variant_title(variant.variant_title or line.variant_title),
        quantity=line.quantity,
        unit_price=variant.price if same_currency else None,
        currency=(currency or variant.currency) if same_currency else None,
        image_url=variant.image_url,
        url=variant.url,
    )


def _cart_item(entry: CartItem, facts: Facts) -> Item | None:
    """The variant as the storefront shows it now; None if it is gone, sold out, or unknown to the mirror (the
    browser's word for it is not repeated)."""
    variant = facts.variants.get(entry.variant_id)
    if variant is None or variant.deleted or not variant.in_stock:
        return None
    return Item(
        title=variant.product_title or "Your item",
        variant_title=_variant_title(variant.variant_title),
        quantity=entry.quantity,
        unit_price=variant.price,
        currency=variant.currency or facts.shop.currency,
        image_url=variant.image_url,
        url=variant.url,
    )


def _order_item(line: OrderLine, facts: Facts, current_only: bool) -> Item | None:
    variant = facts.variants.get(line.variant_id) if line.variant_id is not None else None
    if variant is None or variant.deleted:
        if current_only:
            return None
        return Item(line.title or "Your item", None, line.quantity, line.price, _order_currency(facts), None, None)
    return Item(
        title=variant.product_title or line.title or "Your item",
        variant_title=_variant_title(variant.variant_title),
        quantity=line.quantity,
        unit_price=line.price,  # what was paid, not today's price
        currency=_order_currency(facts),
        image_url=variant.image_url,
        url=variant.url,
    )


def _order_currency(facts: Facts) -> str | None:
    return facts.order.currency if facts.order else None


def _variant_title(title: str | None) -> str | None:
    return None if title in (None, "", "Default Title") else title


def with_links(content: Content, link: Callable[[str], str]) -> Content:
    """The content with every link it carries (a field named `url` or `*_url`, images aside) replaced by
    `link(url)`: every channel then renders the same links."""
    relinked: Content = _relinked(content, link)
    return relinked


def _relinked(value: Any, link: Callable[[str], str]) -> Any:
    if isinstance(value, tuple):
        return tuple(_relinked(item, link) for item in value)
    if not is_dataclass(value) or isinstance(value, type):
        return value
    changes: dict[str, Any] = {}
    for spec in fields(value):
        current = getattr(value, spec.name)
        if isinstance(current, str) and _is_link(spec.name):
            changes[spec.name] = link(current)
        elif is_dataclass(current) or isinstance(current, tuple):
            changes[spec.name] = _relinked(current, link)
    return replace(value, **changes) if changes else value


def _is_link(name: str) -> bool:
    return (name == "url" or name.endswith("_url")) and name != "image_url"
