from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from flows import abandoned_checkout as flow
from flows.facts import CheckoutFacts, CheckoutLine, EmailConsent, OrderFacts, ShopFacts, VariantNow
from flows.reasons import Reason

STARTED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LAST_UPDATE = STARTED + timedelta(minutes=12)
DUE = LAST_UPDATE + timedelta(hours=1)

CHECKOUT = CheckoutFacts(
    token="ck-1",
    cart_token="cart-1",
    email="ada@example.com",
    customer_id=42,
    first_name="Ada",
    accepts_marketing=True,
    currency="EUR",
    recovery_url="https://shop.example/recover/ck-1",
    lines=(
        CheckoutLine(1, 10, "Lamp", "Brass", 1, Decimal("80.00")),
        CheckoutLine(2, 20, "Shade", "Default Title", 2, Decimal("15.00")),
    ),
    created_at=STARTED,
    updated_at=LAST_UPDATE,
    completed_at=None,
)
VARIANTS = {
    1: VariantNow(
        1, "Lamp", "Brass", Decimal("72.00"), "EUR", True, False, "https://cdn/lamp.png", "https://shop/lamp"
    ),
    2: VariantNow(2, "Shade", "Default Title", Decimal("15.00"), "EUR", True, False, None, "https://shop/shade"),
}
SHOP = ShopFacts(installed=True, name="Lumen", postal_address="1 Rue de la Paix, Paris")
NO_SIGNAL = EmailConsent(state=None, changed_at=None, unsubscribed_here=False)
POLICY = flow.Policy()


def decide(checkout: CheckoutFacts = CHECKOUT, **changes: object) -> flow.Decision:
    arguments: dict[str, object] = {
        "policy": POLICY, "shop": SHOP, "consent": NO_SIGNAL, "orders": (), "variants": VARIANTS, "now": DUE,
    }  # fmt: skip
    arguments.update(changes)
    return flow.decide(checkout, **arguments)  # type: ignore[arg-type]


def order(**changes: object) -> OrderFacts:
    base = OrderFacts(order_id=9, checkout_token=None, cart_token=None, customer_id=None, email=None,
                      created_at=STARTED + timedelta(minutes=30), source_name="web")  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_qualifying_checkout_is_due_one_delay_after_its_last_update() -> None:
    enrolment = flow.enrol(CHECKOUT, NO_SIGNAL, POLICY)
    assert (enrolment.reason, enrolment.due_at) == (Reason.ENROLLED, DUE)
    later = flow.enrol(replace(CHECKOUT, updated_at=LAST_UPDATE + timedelta(minutes=20)), NO_SIGNAL, POLICY)
    assert later.due_at == DUE + timedelta(minutes=20)
    custom = flow.enrol(CHECKOUT, NO_SIGNAL, flow.Policy(delay=timedelta(minutes=30)))
    assert custom.due_at == LAST_UPDATE + timedelta(minutes=30)


def test_what_keeps_a_checkout_out() -> None:
    assert flow.enrol(replace(CHECKOUT, email=None), NO_SIGNAL, POLICY).reason == Reason.NO_EMAIL
    assert flow.enrol(replace(CHECKOUT, lines=()), NO_SIGNAL, POLICY).reason == Reason.NO_ITEMS
    assert flow.enrol(replace(CHECKOUT, accepts_marketing=False), NO_SIGNAL, POLICY).reason == Reason.NO_CONSENT
    subscribed = EmailConsent("subscribed", STARTED, unsubscribed_here=False)
    assert flow.enrol(replace(CHECKOUT, accepts_marketing=False), subscribed, POLICY).enrolled


def test_the_reminder_shows_current_prices_and_drops_what_cannot_be_bought() -> None:
    decision = decide()
    assert decision.reason == Reason.SEND
    assert decision.reminder is not None
    lamp, shade = decision.reminder.items
    assert (lamp.title, lamp.variant_title, lamp.unit_price, lamp.currency) == (
        "Lamp",
        "Brass",
        Decimal("72.00"),
        "EUR",
    )
    assert shade.variant_title is None  # "Default Title" means the product has no variants
    assert decision.reminder.recovery_url == CHECKOUT.recovery_url

    sold_out = {**VARIANTS, 2: replace(VARIANTS[2], in_stock=False)}
    reminder = decide(variants=sold_out).reminder
    assert reminder is not None
    assert ([i.title for i in reminder.items], reminder.dropped_items) == (["Lamp"], 1)

    gone = {1: replace(VARIANTS[1], deleted=True), 2: replace(VARIANTS[2], in_stock=False)}
    assert decide(variants=gone).reason == Reason.NOTHING_LEFT


def test_a_price_in_another_currency_is_not_shown() -> None:
    dollars = {**VARIANTS, 1: replace(VARIANTS[1], currency="USD")}
    reminder = decide(variants=dollars).reminder
    assert reminder is not None
    assert (reminder.items[0].unit_price, reminder.items[0].currency) == (None, None)


def test_orders_end_the_journey() -> None:
    assert decide(orders=[order(checkout_token="ck-1")]).reason == Reason.ORDER_PLACED
    assert decide(orders=[order(cart_token="cart-1")]).reason == Reason.ORDER_PLACED
    assert decide(orders=[order(customer_id=42, source_name="pos")]).reason == Reason.ORDERED_SINCE
    assert decide(orders=[order(email="ada@example.com")]).reason == Reason.ORDERED_SINCE
    before = order(customer_id=42, created_at=STARTED - timedelta(days=3))
    assert decide(orders=[before]).reason == Reason.SEND  # an older order is not a conversion of this checkout


def test_every_other_reason_to_skip() -> None:
    assert decide(replace(CHECKOUT, completed_at=DUE)).reason == Reason.CHECKOUT_COMPLETED
    assert decide(shop=replace(SHOP, installed=False)).reason == Reason.SHOP_UNINSTALLED
    assert decide(policy=flow.Policy(enabled=False)).reason == Reason.FLOW_DISABLED
    assert decide(shop=replace(SHOP, postal_address=None)).reason == Reason.NO_POSTAL_ADDRESS
    assert decide(now=STARTED + timedelta(days=8)).reason == Reason.TOO_OLD
    withdrawn = EmailConsent("unsubscribed", DUE - timedelta(minutes=1), unsubscribed_here=False)
    assert decide(consent=withdrawn).reason == Reason.CONSENT_WITHDRAWN
    assert decide(consent=replace(NO_SIGNAL, unsubscribed_here=True)).reason == Reason.UNSUBSCRIBED


@given(
    customer_id=st.one_of(st.none(), st.integers(1, 100)),
    same_token=st.booleans(),
    minutes_after_start=st.integers(-10_000, 10_000),
)
def test_an_order_from_the_checkout_itself_always_prevents_the_reminder(
    customer_id: int | None, same_token: bool, minutes_after_start: int
) -> None:
    placed = order(
        checkout_token="ck-1" if same_token else None,
        cart_token=None if same_token else "cart-1",
        customer_id=customer_id,
        created_at=STARTED + timedelta(minutes=minutes_after_start),
    )
    assert not decide(orders=[placed]).send
