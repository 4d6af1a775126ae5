"""What each message says: built from the storefront as it is now, with prices only where they are true."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from flows.contents import (
    CONTENTS,
    MAX_RECOMMENDATIONS,
    CartReminder,
    Greeting,
    Item,
    OrderNote,
    Recommendation,
    cart_reminder,
    cross_sell,
    order_note,
    summary,
)
from flows.facts import (
    CheckoutFacts,
    CheckoutLine,
    CustomerFacts,
    Facts,
    OrderFacts,
    OrderLine,
    ProductNow,
    ShopFacts,
    VariantNow,
)
from flows.journey import Journey, Status
from flows.reasons import Reason

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
SHOP = ShopFacts(installed=True, name="Lumen Lamps", postal_address="1 Main St", url="https://lumen.example")
JOURNEY = Journey("demo", "subject-1", Status.WAITING, Reason.WAIT, step="a")
LAMP, SHADE, BULB = 101, 102, 103


def variant(variant_id: int, **changes: Any) -> VariantNow:
    base = VariantNow(
        variant_id=variant_id,
        product_title=f"Product {variant_id}",
        variant_title="Default Title",
        price=Decimal("18.00"),
        currency="EUR",
        in_stock=True,
        deleted=False,
        image_url=f"https://cdn.example/{variant_id}.png",
        url=f"https://lumen.example/products/{variant_id}",
    )
    return replace(base, **changes)


def checkout_line(variant_id: int | None, title: str = "Desk lamp", variant_title: str | None = "Red") -> CheckoutLine:
    return CheckoutLine(variant_id, None, title, variant_title, 2, Decimal("25.00"))


def left_checkout(*lines: CheckoutLine, variants: dict[int, VariantNow], **changes: Any) -> Facts:
    checkout = CheckoutFacts(
        token="ck-1",
        cart_token=None,
        email="ada@example.com",
        customer_id=7,
        first_name="Ada",
        accepts_marketing=True,
        currency="EUR",
        recovery_url="https://lumen.example/recover/ck-1",
        lines=lines,
        created_at=T0,
        updated_at=T0,
        completed_at=None,
    )
    return Facts(shop=SHOP, checkout=replace(checkout, **changes), variants=variants)


def reminder(facts: Facts) -> CartReminder:
    content = cart_reminder(facts, JOURNEY)
    assert isinstance(content, CartReminder), content
    return content


# Cart reminder


def test_the_reminder_states_todays_price_in_the_checkouts_currency() -> None:
    facts = left_checkout(checkout_line(LAMP), variants={LAMP: variant(LAMP, price=Decimal("18.00"))})

    content = reminder(facts)

    [item] = content.items
    assert (item.title, item.quantity, item.unit_price, item.currency) == ("Product 101", 2, Decimal("18.00"), "EUR")
    assert (item.image_url, item.url) == ("https://cdn.example/101.png", "https://lumen.example/products/101")
    assert content.recovery_url == "https://lumen.example/recover/ck-1"
    assert (content.first_name, content.sender.shop_name, content.sender.postal_address) == (
        "Ada",
        "Lumen Lamps",
        "1 Main St",
    )


def test_the_reminder_states_no_price_when_the_shop_prices_in_another_currency() -> None:
    facts = left_checkout(checkout_line(LAMP), variants={LAMP: variant(LAMP, currency="USD")}, currency="CAD")

    [item] = reminder(facts).items

    assert (item.unit_price, item.currency) == (None, None)
    assert item.title == "Product 101"  # still shown: it can be bought, only its price is not ours to state


def test_an_item_not_in_the_mirror_is_shown_as_the_checkout_named_it_without_a_price() -> None:
    facts = left_checkout(
        checkout_line(None, "Gift card", "Default Title"), checkout_line(999, "Old lamp"), variants={}
    )

    content = reminder(facts)

    assert [(i.title, i.variant_title, i.unit_price, i.url) for i in content.items] == [
        ("Gift card", None, None, None),
        ("Old lamp", "Red", None, None),
    ]
    assert content.dropped_items == 0


def test_items_that_can_no_longer_be_bought_are_left_out_and_counted() -> None:
    facts = left_checkout(
        checkout_line(LAMP),
        checkout_line(SHADE, "Shade"),
        checkout_line(BULB, "Bulb"),
        variants={LAMP: variant(LAMP), SHADE: variant(SHADE, in_stock=False), BULB: variant(BULB, deleted=True)},
    )

    content = reminder(facts)

    assert [i.title for i in content.items] == ["Product 101"]
    assert content.dropped_items == 2


def test_the_variant_title_is_the_storefronts_and_shows_only_when_it_says_something() -> None:
    facts = left_checkout(
        checkout_line(LAMP),
        checkout_line(SHADE),
        checkout_line(BULB),
        variants={
            LAMP: variant(LAMP),  # "Default Title": a product without options
            SHADE: variant(SHADE, variant_title="Blue"),
            BULB: variant(BULB, variant_title=None),
        },
    )

    assert [i.variant_title for i in reminder(facts).items] == [None, "Blue", "Red"]  # unknown: the checkout's


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        pytest.param(
            left_checkout(checkout_line(LAMP), variants={LAMP: variant(LAMP, in_stock=False)}),
            Reason.NOTHING_LEFT,
            id="everything sold out",
        ),
        pytest.param(
            left_checkout(checkout_line(LAMP), variants={LAMP: variant(LAMP)}, recovery_url=None),
            Reason.NOTHING_LEFT,
            id="no way back to the checkout",
        ),
        pytest.param(Facts(shop=SHOP), Reason.SUBJECT_GONE, id="the checkout is gone"),
    ],
)
def test_a_reminder_with_nothing_to_show_is_not_built(facts: Facts, reason: Reason) -> None:
    assert cart_reminder(facts, JOURNEY) is reason


# Order notes


def placed_order(*lines: OrderLine, variants: dict[int, VariantNow], **changes: Any) -> Facts:
    order = OrderFacts(
        order_id=5001,
        checkout_token=None,
        cart_token=None,
        customer_id=7,
        email="ada@example.com",
        created_at=T0,
        source_name="web",
        name="#1001",
        currency="EUR",
        lines=lines,
    )
    subject = replace(order, **changes)
    customer = CustomerFacts(7, "ada@example.com", None, "Ada")
    return Facts(shop=SHOP, customer=customer, order=subject, orders=(subject,), variants=variants)


def order_line(variant_id: int, title: str, price: str = "20.00") -> OrderLine:
    return OrderLine(variant_id, variant_id * 10, title, 1, Decimal(price))


def note(facts: Facts, *, current_only: bool) -> OrderNote:
    content = order_note(current_only=current_only)(facts, JOURNEY)
    assert isinstance(content, OrderNote), content
    return content


def test_the_thank_you_lists_every_line_at_the_price_paid() -> None:
    facts = placed_order(
        order_line(LAMP, "Desk lamp", "20.00"),
        order_line(SHADE, "Shade", "9.00"),
        variants={LAMP: variant(LAMP, price=Decimal("15.00"))},  # the shade is no longer sold
    )

    content = note(facts, current_only=False)

    assert content.order_name == "#1001"
    assert [(i.title, i.unit_price, i.currency, i.url) for i in content.items] == [
        ("Product 101", Decimal("20.00"), "EUR", "https://lumen.example/products/101"),  # paid, not today's
        ("Shade", Decimal("9.00"), "EUR", None),
    ]


def test_a_review_request_only_asks_about_products_still_on_sale() -> None:
    facts = placed_order(
        order_line(LAMP, "Desk lamp"),
        order_line(SHADE, "Shade"),
        order_line(BULB, "Bulb"),
        variants={LAMP: variant(LAMP, in_stock=False), BULB: variant(BULB, deleted=True)},
    )

    content = note(facts, current_only=True)

    assert [i.title for i in content.items] == ["Product 101"]  # sold out still has a page to review on


def test_a_review_request_with_no_product_left_is_not_built() -> None:
    facts = placed_order(order_line(SHADE, "Shade"), variants={})

    assert order_note(current_only=True)(facts, JOURNEY) is Reason.NOTHING_LEFT
    assert order_note(current_only=False)(Facts(shop=SHOP), JOURNEY) is Reason.SUBJECT_GONE


# Cross-sell


def product(
    product_id: int, product_type: str | None = "Lamp", vendor: str | None = "Lumen", **changes: Any
) -> ProductNow:
    base = ProductNow(
        product_id=product_id,
        title=f"P{product_id}",
        product_type=product_type,
        vendor=vendor,
        url=f"https://lumen.example/products/p{product_id}",
        image_url=None,
        price=Decimal("30.00"),
        currency="EUR",
        in_stock=True,
        active=True,
    )
    return replace(base, **changes)


BOUGHT = product(LAMP * 10, "Lamp", "Lumen", title="Desk lamp")


def offer(*related: ProductNow, earlier: tuple[OrderFacts, ...] = ()) -> Recommendation | Reason:
    facts = placed_order(order_line(LAMP, "Desk lamp"), variants={})
    facts = replace(facts, related=(BOUGHT, *related), orders=(*facts.orders, *earlier))
    content = cross_sell(facts, JOURNEY)
    assert isinstance(content, Recommendation | Reason)
    return content


def titles(content: Recommendation | Reason) -> list[str]:
    assert isinstance(content, Recommendation), content
    return [p.title for p in content.products]


def test_cross_sell_offers_the_same_kind_of_product_first_then_the_same_makers() -> None:
    content = offer(
        product(1, "Shade", "Lumen", title="A shade by Lumen"),
        product(2, "Lamp", "Other", title="Floor lamp"),
        product(3, "Lamp", "Lumen", title="Bedside lamp"),
    )

    assert titles(content) == ["Bedside lamp", "Floor lamp", "A shade by Lumen"]
    assert isinstance(content, Recommendation)
    assert content.products[0] == Item(
        "Bedside lamp", None, 1, Decimal("30.00"), "EUR", None, "https://lumen.example/products/p3"
    )
    assert content.order_name == "#1001"


def test_cross_sell_offers_at_most_three_products() -> None:
    content = offer(*(product(n, "Lamp", title=f"Lamp {n}") for n in range(1, 7)))

    assert titles(content) == ["Lamp 1", "Lamp 2", "Lamp 3"]
    assert MAX_RECOMMENDATIONS == 3


def test_cross_sell_offers_only_what_can_be_bought_and_is_related() -> None:
    content = offer(
        product(1, title="Sold out", in_stock=False),
        product(2, title="Archived", active=False),
        product(3, "Rug", "Weaver", title="Unrelated rug"),
        product(4, None, None, title="Unclassified"),
        product(5, title="On sale"),
    )

    assert titles(content) == ["On sale"]


def test_cross_sell_never_offers_what_the_customer_already_bought() -> None:
    earlier = OrderFacts(
        order_id=4000,
        checkout_token=None,
        cart_token=None,
        customer_id=7,
        email="ada@example.com",
        created_at=T0,
        source_name="pos",
        lines=(OrderLine(None, 2, "Floor lamp", 1, Decimal("50.00")),),
    )

    content = offer(product(2, title="Floor lamp"), product(3, title="Bedside lamp"), earlier=(earlier,))

    assert titles(content) == ["Bedside lamp"]


def test_cross_sell_with_nothing_to_offer_is_not_built() -> None:
    assert offer(product(1, in_stock=False), product(3, "Rug", "Weaver")) is Reason.NOTHING_TO_OFFER
    assert offer() is Reason.NOTHING_TO_OFFER
    assert cross_sell(Facts(shop=SHOP), JOURNEY) is Reason.SUBJECT_GONE


def test_the_recommendation_is_the_content_that_asks_for_related_products() -> None:
    asking = sorted(name for name, spec in CONTENTS.items() if spec.needs_related)

    assert asking == ["post_purchase.cross_sell"]


# Summary: what a decision records of a message


def test_the_summary_records_the_items_and_prices_promised_and_what_was_left_out() -> None:
    facts = left_checkout(
        checkout_line(LAMP),
        checkout_line(SHADE, "Shade"),
        checkout_line(None, "Gift card"),
        variants={LAMP: variant(LAMP, price=Decimal("18.50")), SHADE: variant(SHADE, in_stock=False)},
    )

    assert summary(reminder(facts)) == {
        "items": [
            {"title": "Product 101", "quantity": 2, "unit_price": "18.50", "currency": "EUR"},
            {"title": "Gift card", "quantity": 2, "unit_price": None, "currency": None},
        ],
        "dropped_items": 1,
    }


def test_the_summary_of_a_recommendation_lists_its_products_and_of_a_greeting_nothing() -> None:
    recommendation = offer(product(3, title="Bedside lamp"))
    assert isinstance(recommendation, Recommendation)
    greeting = CONTENTS["welcome.welcome_2"].build(Facts(shop=SHOP), JOURNEY)
    assert isinstance(greeting, Greeting)

    assert summary(recommendation) == {
        "items": [{"title": "Bedside lamp", "quantity": 1, "unit_price": "30.00", "currency": "EUR"}]
    }
    assert summary(greeting) == {"items": []}
    assert (greeting.part, greeting.sender.shop_name) == (2, "Lumen Lamps")
