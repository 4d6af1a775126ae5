"""The storefront mirror: what webhooks teach Chorus, and that older news never overwrites newer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import select

from shopify_app.models import Checkout, ConsentRecord, Customer, Order, Product, Shop, Variant
from shopify_app.runtime import Runtime
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.pipeline import deliver, process


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_checkout_is_mirrored_from_shopifys_sample(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "checkouts/create", webhooks.fixture_bytes("checkouts_create.json"))
    process(runtime)

    checkout = db.one(Checkout)
    assert checkout.token == "123123123"
    assert checkout.cart_token == "eeafa272cebfd4b22385bc4b645e762c"
    assert checkout.email == "example@email.com"
    assert checkout.abandoned_checkout_url == (
        "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
    )
    assert checkout.currency == "USD"
    assert checkout.total_price == Decimal("421.88")
    assert checkout.buyer_accepts_marketing is False
    assert checkout.customer_id == 603851970716743426  # beyond 2**53: kept exact
    assert checkout.country_code == "US"
    assert checkout.line_items[0] == {
        "variant_id": 808950810,
        "product_id": 632910392,
        "title": "IPod Nano - 8GB",
        "variant_title": "Pink",
        "quantity": 1,
        "price": "199.00",
    }
    assert checkout.updated_at == at("2021-12-31T19:00:00-05:00")
    assert db.one(Customer).email == "john@example.com"


def test_an_older_checkout_update_arriving_late_changes_nothing(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "checkouts/update",
        payloads.checkout("ck-1", updated_at="2026-11-20T10:30:00Z", email="new@x.io"),
    )
    process(runtime)
    deliver(
        runtime,
        "checkouts/update",
        payloads.checkout("ck-1", updated_at="2026-11-20T10:00:00Z", email="old@x.io"),
    )
    process(runtime)

    checkout = db.one(Checkout)
    assert (checkout.email, checkout.updated_at) == ("new@x.io", at("2026-11-20T10:30:00Z"))


def test_out_of_order_deliveries_in_one_batch_end_at_the_newest(runtime: Runtime, shop: Shop, db: Db) -> None:
    for minute, status in ((30, "paid"), (10, "pending"), (20, "authorized")):
        deliver(
            runtime,
            "orders/updated",
            payloads.order(1001, updated_at=f"2026-11-20T11:{minute}:00Z", financial_status=status),
        )
    process(runtime)

    order = db.one(Order)
    assert (order.financial_status, order.updated_at) == ("paid", at("2026-11-20T11:30:00Z"))


def test_an_order_keeps_the_tokens_that_tie_it_to_its_checkout(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "orders/create",
        payloads.order(1001, checkout_token="ck-1", cart_token="cart-1", source_name="pos", email="Jon@Example.com"),
    )
    process(runtime)

    order = db.one(Order)
    assert (order.checkout_token, order.cart_token, order.source_name) == ("ck-1", "cart-1", "pos")
    assert order.email == "jon@example.com"
    assert order.total_price == Decimal("404.95")
    assert order.cancelled_at == at("2021-12-31T19:00:00-05:00")


def test_products_and_variants_carry_current_price_stock_image_and_url(runtime: Runtime, shop: Shop, db: Db) -> None:
    with db.write() as session:
        stored_shop = session.get(Shop, shop.id)
        assert stored_shop is not None
        stored_shop.currency, stored_shop.primary_domain = "EUR", "acme.example"
    deliver(runtime, "products/create", payloads.product(updated_at="2026-11-20T10:00:00Z"))
    process(runtime)
    deliver(
        runtime,
        "products/update",
        payloads.product(
            updated_at="2026-11-20T11:00:00Z",
            variants=[payloads.variant(808950810, price="149.00", inventory_quantity=0, image_id=562641783)],
        ),
    )
    process(runtime)

    product = db.one(Product)
    variant = db.one(Variant)
    assert (product.title, product.url) == ("IPod Nano - 8GB", "https://acme.example/products/ipod-nano")
    assert (variant.price, variant.currency, variant.inventory_quantity) == (Decimal("149.00"), "EUR", 0)
    assert not variant.in_stock
    assert variant.image_url == "https://cdn.shopify.com/s/files/ipod-nano-pink.png"
    assert variant.url == "https://acme.example/products/ipod-nano?variant=808950810"


def test_a_variant_dropped_from_its_product_is_marked_deleted(runtime: Runtime, shop: Shop, db: Db) -> None:
    two = [payloads.variant(1), payloads.variant(2)]
    deliver(runtime, "products/update", payloads.product(updated_at="2026-11-20T10:00:00Z", variants=two))
    deliver(
        runtime,
        "products/update",
        payloads.product(
            updated_at="2026-11-20T11:00:00Z",
            variants=[payloads.variant(1, updated_at="2026-11-20T11:00:00Z")],
        ),
    )
    process(runtime)

    assert [(v.variant_id, v.deleted_at is None) for v in db.all(Variant)] == [(1, True), (2, False)]


def test_a_deleted_product_is_not_revived_by_a_late_update(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "products/update", payloads.product(updated_at="2026-11-20T09:00:00Z"))
    deliver(runtime, "products/delete", {"id": 632910392}, triggered_at="2026-11-20T10:00:00Z")
    process(runtime)
    deliver(runtime, "products/update", payloads.product(updated_at="2026-11-20T09:30:00Z"))
    process(runtime)

    assert db.one(Product).deleted_at == at("2026-11-20T10:00:00Z")
    assert db.one(Variant).deleted_at is not None


def test_stock_webhooks_update_the_variant(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "products/update",
        payloads.product(
            updated_at="2021-12-30T00:00:00Z",
            variants=[
                payloads.variant(642667041472713922, product_id=788032119674292922, updated_at="2021-12-30T00:00:00Z")
            ],
            id=788032119674292922,
        ),
    )
    deliver(runtime, "variants/out_of_stock", webhooks.fixture_bytes("variants_out_of_stock.json"))
    process(runtime)

    variant = db.one(Variant)
    assert (variant.inventory_quantity, variant.in_stock, variant.price) == (0, False, Decimal("19.99"))


def test_customer_consent_follows_the_newest_change_and_keeps_its_history(runtime: Runtime, shop: Shop, db: Db) -> None:
    subscribed = {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-11-20T09:00:00Z",
    }
    deliver(runtime, "customers/create", payloads.customer(501, email_marketing_consent=subscribed))
    process(runtime)
    unsubscribed = {
        "state": "unsubscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-11-20T11:00:00Z",
    }
    deliver(
        runtime,
        "customers_email_marketing_consent/update",
        {"customer_id": 501, "email_address": "bob@biller.com", "email_marketing_consent": unsubscribed},
    )
    process(runtime)
    # A customers/update sent before the unsubscribe, delivered after it.
    deliver(
        runtime,
        "customers/update",
        payloads.customer(501, updated_at="2026-11-20T10:00:00Z", email_marketing_consent=subscribed),
    )
    process(runtime)

    customer = db.one(Customer)
    assert customer.email_consent_state == "unsubscribed"
    assert customer.email_consent_updated_at == at("2026-11-20T11:00:00Z")
    history = db.all(ConsentRecord)
    assert [(r.channel, r.state, r.source, r.evidence) for r in history] == [
        ("email", "subscribed", "shopify_webhook", {"topic": "customers/create"}),
        ("email", "unsubscribed", "shopify_webhook", {"topic": "customers_email_marketing_consent/update"}),
    ]


def test_sms_consent_arrives_on_its_own_topic(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "customers_marketing_consent/update",
        {
            "id": 501,
            "phone": "+16135550135",
            "sms_marketing_consent": {
                "state": "subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": "2026-11-20T09:00:00Z",
                "consent_collected_from": "SHOPIFY",
            },
        },
    )
    process(runtime)

    customer = db.one(Customer)
    assert (customer.phone, customer.sms_consent_state, customer.sms_consent_collected_from) == (
        "+16135550135", "subscribed", "SHOPIFY",
    )  # fmt: skip
    assert db.one(ConsentRecord).channel == "sms"


def test_shopifys_consent_samples_are_handled(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "customers_email_marketing_consent/update",
        webhooks.fixture_bytes("customers_email_marketing_consent_update.json"),
    )
    deliver(
        runtime,
        "customers_marketing_consent/update",
        webhooks.fixture_bytes("customers_marketing_consent_update.json"),
    )
    report = process(runtime)

    assert report.done == 2
    customer = db.one(Customer)
    assert (customer.customer_id, customer.email, customer.email_consent_state) == (
        706405506930370084, "bob@biller.com", "not_subscribed",
    )  # fmt: skip


def test_a_shop_profile_update_gives_name_currency_and_postal_address(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "shop/update", webhooks.fixture_bytes("app_uninstalled.json"))  # the shop object
    process(runtime)

    profile = db.one(Shop)
    assert (profile.name, profile.currency, profile.email) == ("Super Toys", "USD", "super@supertoys.com")
    assert profile.postal_address == "190 MacLaren Street, Houston, TN 37178, United States"
    assert profile.installed


def test_uninstall_forgets_the_token_and_stops_intake(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "app/uninstalled",
        webhooks.fixture_bytes("app_uninstalled.json"),
        triggered_at="2026-11-20T11:00:00Z",
    )
    process(runtime)

    gone = db.one(Shop)
    assert (gone.installed, gone.access_token_ciphertext) == (False, None)
    assert gone.uninstalled_at is not None
    assert deliver(runtime, "orders/create", payloads.order(1)).value == "shop_uninstalled"


def test_an_uninstall_from_before_the_latest_install_is_ignored(runtime: Runtime, shop: Shop, db: Db) -> None:
    # The shop (re)installed at 10:00:05; this uninstall happened before that and arrives late.
    deliver(
        runtime,
        "app/uninstalled",
        webhooks.fixture_bytes("app_uninstalled.json"),
        triggered_at="2026-11-20T09:00:00Z",
    )
    process(runtime)

    assert db.one(Shop).installed


def test_one_shops_webhook_never_touches_another_shops_rows(runtime: Runtime, shop: Shop, db: Db) -> None:
    from shopify_app.shops import register_shop

    with db.write() as session:
        other = register_shop(
            session,
            runtime.secret_box,
            webhooks.OTHER_SHOP,
            access_token="t",
            webhook_secret=None,
            now=shop.created_at,
        )
    deliver(runtime, "orders/create", payloads.order(1001, financial_status="paid"), shop=webhooks.OTHER_SHOP)
    process(runtime)
    deliver(
        runtime,
        "orders/updated",
        payloads.order(1001, updated_at="2026-11-21T00:00:00Z", financial_status="refunded"),
    )
    process(runtime)

    by_shop = {o.shop_id: o.financial_status for o in db.all(Order)}
    assert by_shop == {other.id: "paid", shop.id: "refunded"}


def test_a_product_keeps_its_type_and_vendor_from_products_webhooks(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(
        runtime,
        "products/create",
        payloads.product(updated_at="2026-11-20T10:00:00Z", product_type="Lamps", vendor="Lumen"),
    )
    process(runtime)
    assert (db.one(Product).product_type, db.one(Product).vendor) == ("Lamps", "Lumen")

    deliver(
        runtime,
        "products/update",
        payloads.product(updated_at="2026-11-20T11:00:00Z", product_type="Desk lamps", vendor="Lumen Works"),
    )
    deliver(  # older news, arriving late
        runtime,
        "products/update",
        payloads.product(updated_at="2026-11-20T10:30:00Z", product_type="Lamps", vendor="Lumen"),
    )
    process(runtime)

    product = db.one(Product)
    assert (product.product_type, product.vendor) == ("Desk lamps", "Lumen Works")


def fulfilled_order(order_id: int = 1001, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "fulfillment_status": "fulfilled",
        "cancelled_at": None,
        "created_at": "2026-11-18T09:00:00Z",
        "updated_at": "2026-11-22T21:00:00Z",
    }
    fields.update(changes)
    return payloads.order(order_id, **fields)  # type: ignore[arg-type]


def test_an_order_is_fulfilled_when_its_latest_fulfilment_was_made(runtime: Runtime, shop: Shop, db: Db) -> None:
    shipments = [
        {"id": 1, "status": "success", "created_at": "2026-11-21T09:00:00Z"},
        {"id": 2, "status": "success", "created_at": "2026-11-22T15:30:00-05:00"},  # the latest, in another zone
        {"id": 3, "status": "success", "created_at": "2026-11-19T12:00:00Z"},
    ]
    deliver(runtime, "orders/create", payloads.order(1001, cancelled_at=None, updated_at="2026-11-18T09:00:00Z"))
    process(runtime)
    assert (db.one(Order).fulfillment_status, db.one(Order).fulfilled_at) == (None, None)

    deliver(
        runtime,
        "orders/fulfilled",
        fulfilled_order(fulfillments=shipments, buyer_accepts_marketing=True),
        triggered_at="2026-11-22T21:00:00Z",
    )
    process(runtime)

    order = db.one(Order)
    assert order.fulfillment_status == "fulfilled"
    assert order.fulfilled_at == at("2026-11-22T20:30:00Z")
    assert order.buyer_accepts_marketing is True


def test_a_fulfilled_order_listing_no_fulfilment_is_fulfilled_when_shopify_said_so(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    deliver(
        runtime,
        "orders/fulfilled",
        fulfilled_order(fulfillments=[], buyer_accepts_marketing=False),
        triggered_at="2026-11-22T21:00:05Z",
    )
    process(runtime)

    order = db.one(Order)
    assert (order.fulfillment_status, order.fulfilled_at) == ("fulfilled", at("2026-11-22T21:00:05Z"))
    assert order.buyer_accepts_marketing is False

    # A later update of the order that lists no fulfilment either keeps the time it was fulfilled.
    deliver(
        runtime,
        "orders/updated",
        fulfilled_order(fulfillments=[], updated_at="2026-11-23T08:00:00Z"),
        triggered_at="2026-11-23T08:00:00Z",
    )
    process(runtime)
    assert db.one(Order).fulfilled_at == at("2026-11-22T21:00:05Z")


def test_the_customers_last_order_time_only_moves_forward_and_a_cancelled_order_does_not_count(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    def place(order_id: int, created_at: str, cancelled_at: str | None = None) -> None:
        deliver(
            runtime,
            "orders/create",
            payloads.order(order_id, created_at=created_at, updated_at=created_at, cancelled_at=cancelled_at),
        )
        process(runtime)

    place(1, "2026-11-10T12:00:00Z")
    assert db.one(Customer).last_order_at == at("2026-11-10T12:00:00Z")
    place(2, "2026-11-05T12:00:00Z")  # an older order, heard of later
    assert db.one(Customer).last_order_at == at("2026-11-10T12:00:00Z")
    place(3, "2026-11-15T12:00:00Z", cancelled_at="2026-11-15T13:00:00Z")
    assert db.one(Customer).last_order_at == at("2026-11-10T12:00:00Z")
    place(4, "2026-11-18T12:00:00Z")
    assert db.one(Customer).last_order_at == at("2026-11-18T12:00:00Z")


def test_a_rewrite_with_the_values_held_leaves_the_row_clean_and_a_real_change_is_stored(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    with db.write() as session:
        assert shop.id is not None
        session.add(Checkout(shop_id=shop.id, token="ck-9", line_items=[{"variant_id": 1, "quantity": 1}]))
    with db.write() as session:
        checkout = session.exec(select(Checkout)).one()
        checkout.token = "ck-9"
        checkout.line_items = [{"variant_id": 1, "quantity": 1}]  # equal, not the same object
        assert checkout not in session.dirty
        checkout.line_items = [*checkout.line_items, {"variant_id": 2, "quantity": 3}]
        checkout.total_price = Decimal("0")
        assert checkout in session.dirty
    stored = db.one(Checkout)
    assert stored.line_items == [{"variant_id": 1, "quantity": 1}, {"variant_id": 2, "quantity": 3}]
    assert stored.total_price == Decimal("0")
