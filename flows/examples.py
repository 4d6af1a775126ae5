"""A customer who could receive any message: the facts a merchant's wording is tried on before it is saved.

Every content is built from these facts by its own builder, as a real message would be, so a template that
names a field the content does not have fails here, not on a customer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from flows.contents import CONTENTS, Content
from flows.facts import (
    BrowsedProduct,
    BrowsingFacts,
    CartItem,
    CheckoutFacts,
    CheckoutLine,
    CustomerFacts,
    Facts,
    OrderFacts,
    OrderLine,
    PriceDrop,
    ProductNow,
    ShopFacts,
    VariantNow,
)
from flows.journey import Journey, Status
from flows.reasons import Reason

_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def example_facts(shop: ShopFacts) -> Facts:
    """A customer with a left checkout of two products, the same in a cart their browser filled (after a look at
    the first, since cheaper), and an order of one, in the shop's currency."""
    currency = shop.currency or "USD"
    base = shop.url or "https://example.com"
    variants = {
        11: VariantNow(11, "Linen shirt", "Blue / M", Decimal("79.00"), currency, True, False,
                       f"{base}/cdn/linen-shirt.jpg", f"{base}/products/linen-shirt", 1),
        12: VariantNow(12, "Canvas tote", None, Decimal("24.50"), currency, True, False,
                       f"{base}/cdn/canvas-tote.jpg", f"{base}/products/canvas-tote", 2),
    }  # fmt: skip
    checkout = CheckoutFacts(
        token="example", cart_token=None,  # noqa: S106  # a checkout token, no secret
        email="ada@example.com", customer_id=1, first_name="Ada",
        accepts_marketing=True, currency=currency, recovery_url=f"{base}/checkouts/example/recover",
        lines=(CheckoutLine(11, 1, "Linen shirt", "Blue / M", 1, Decimal("79.00")),
               CheckoutLine(12, 2, "Canvas tote", None, 2, Decimal("24.50"))),
        created_at=_AT, updated_at=_AT, completed_at=None,
    )  # fmt: skip
    order = OrderFacts(
        order_id=1, checkout_token=None, cart_token=None, customer_id=1, email="ada@example.com", created_at=_AT,
        source_name="web", name="#1001", currency=currency, total_price=Decimal("79.00"),
        lines=(OrderLine(11, 1, "Linen shirt", 1, Decimal("79.00")),),
    )  # fmt: skip
    related = (  # what was bought, and what may be recommended with it
        ProductNow(1, "Linen shirt", "Clothing", "Chorus Goods", f"{base}/products/linen-shirt", None,
                   Decimal("79.00"), currency, True, True),
        ProductNow(3, "Linen trousers", "Clothing", "Chorus Goods", f"{base}/products/linen-trousers",
                   f"{base}/cdn/linen-trousers.jpg", Decimal("95.00"), currency, True, True),
    )  # fmt: skip
    cart = BrowsingFacts(
        cart=(CartItem(11, 1, 1, _AT), CartItem(12, 2, 2, _AT)),
        cart_updated_at=_AT,
        browsed=(BrowsedProduct(1, 11, _AT),),
        price_drops=(PriceDrop(11, 1, Decimal("99.00"), _AT),),
    )
    return Facts(
        shop=shop if shop.url else replace(shop, url=base),  # a cart's link is the storefront's
        customer=CustomerFacts(1, "ada@example.com", "+14155550100", "Ada", _AT, _AT),
        browsing=cart,
        checkout=checkout,
        order=order,
        orders=(order,),
        variants=variants,
        related=related,
    )


def example_content(content_id: str, shop: ShopFacts) -> Content:
    """What `content_id` says to the example customer; KeyError for an unknown content."""
    spec = CONTENTS[content_id]
    journey = Journey(flow=content_id.partition(".")[0], subject="example", status=Status.WAITING,
                      reason=Reason.SEND, step=content_id.partition(".")[2])  # fmt: skip
    content = spec.build(example_facts(shop), journey)
    assert not isinstance(content, Reason), f"the example facts say nothing for {content_id}: {content}"
    return content
