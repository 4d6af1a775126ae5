"""The typed helpers against a fake Admin API answering in Shopify's documented shapes.

Every request the fake receives is also checked against the schema: variables declared, present and of
the right type (enum values included), as Shopify itself would check them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import responses
from graphql import GraphQLEnumType

from shopify_app.shopify.admin_api import UserError, UserErrorsError
from shopify_app.shopify.admin_queries import (
    ABANDONED_CHECKOUTS,
    CUSTOMER_CONSENT,
    CUSTOMER_ORDERS,
    NODES_PER_QUERY,
    UPDATE_EMAIL_CONSENT,
    UPDATE_SMS_CONSENT,
    VARIANTS,
    AbandonedCheckoutSummary,
    CheckoutLine,
    CustomerConsent,
    OrderSummary,
    Page,
    VariantState,
    WebhookSubscriptionInfo,
    abandoned_checkouts,
    create_webhook_subscription,
    customer_consent,
    customer_orders,
    delete_webhook_subscription,
    granted_scopes,
    topic_enum,
    topic_name,
    update_email_consent,
    update_sms_consent,
    variants,
    webhook_subscriptions,
)
from tests.shopify.fakes import ENDPOINT, answer, make_api, sent, sent_variables
from tests.shopify.schema import admin_schema, variable_problems

ADA = "gid://shopify/Customer/1018520244"
LAMP = "gid://shopify/ProductVariant/43729076"
SHADE = "gid://shopify/ProductVariant/43729077"
CHANGED_AT = datetime(2026, 11, 20, 11, 0, 5, tzinfo=timezone(timedelta(hours=1)))  # 10:00:05 UTC
CURSOR = "eyJsYXN0X2lkIjo0NTAxNjAwNjY4NzIsImxhc3RfdmFsdWUiOiI0NTAxNjAwNjY4NzIifQ=="
WEBHOOK_URI = "https://chorus.example/webhooks/shopify"


@pytest.fixture
def admin(shopify: responses.RequestsMock) -> Iterator[responses.RequestsMock]:
    yield shopify
    for call in shopify.calls:
        body = sent(call)
        assert variable_problems(body["query"], body["variables"]) == []


def page_info(cursor: str | None) -> dict[str, Any]:
    return {"hasNextPage": cursor is not None, "endCursor": cursor}


def test_customer_consent_reads_both_channels(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "customer": {
                    "id": ADA,
                    "defaultEmailAddress": {
                        "emailAddress": "ada@example.com",
                        "marketingState": "SUBSCRIBED",
                        "marketingOptInLevel": "CONFIRMED_OPT_IN",
                        "marketingUpdatedAt": "2026-11-02T09:15:00Z",
                    },
                    "defaultPhoneNumber": {
                        "phoneNumber": "+16135550127",
                        "marketingState": "UNSUBSCRIBED",
                        "marketingOptInLevel": "SINGLE_OPT_IN",
                        "marketingUpdatedAt": "2026-11-03T18:40:12-05:00",
                        "marketingCollectedFrom": "OTHER",
                    },
                }
            }
        ),
    )

    consent = customer_consent(make_api(), ADA)

    assert consent == CustomerConsent(
        customer_id=ADA,
        email="ada@example.com",
        email_marketing_state="SUBSCRIBED",
        email_opt_in_level="CONFIRMED_OPT_IN",
        email_consent_updated_at=datetime(2026, 11, 2, 9, 15, tzinfo=UTC),
        phone="+16135550127",
        sms_marketing_state="UNSUBSCRIBED",
        sms_opt_in_level="SINGLE_OPT_IN",
        sms_consent_updated_at=datetime(2026, 11, 3, 23, 40, 12, tzinfo=UTC),
        sms_consent_collected_from="OTHER",
    )
    assert sent(admin.calls[0]) == {"query": CUSTOMER_CONSENT, "variables": {"id": ADA}}


def test_a_customer_without_email_or_phone(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT, json=answer({"customer": {"id": ADA, "defaultEmailAddress": None, "defaultPhoneNumber": None}})
    )
    consent = customer_consent(make_api(), ADA)
    assert consent is not None
    assert (consent.email, consent.email_marketing_state, consent.phone, consent.sms_marketing_state) == (
        None,
        None,
        None,
        None,
    )


def test_an_unknown_customer_has_no_consent(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"customer": None}))
    assert customer_consent(make_api(), "gid://shopify/Customer/404") is None


def test_variants_skip_deleted_ones_and_other_types(admin: responses.RequestsMock) -> None:
    product = {"id": "gid://shopify/Product/912855135", "title": "Arc Floor Lamp", "handle": "arc-floor-lamp"}
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "nodes": [
                    {
                        "__typename": "ProductVariant",
                        "id": LAMP,
                        "title": "Brass / 220V",
                        "price": "189.00",
                        "inventoryQuantity": 4,
                        "availableForSale": True,
                        "product": product,
                        "image": {"url": "https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731"},
                    },
                    None,
                    {"__typename": "Product"},
                    {
                        "__typename": "ProductVariant",
                        "id": SHADE,
                        "title": "Default Title",
                        "price": "24.50",
                        "inventoryQuantity": None,
                        "availableForSale": False,
                        "product": product,
                        "image": None,
                    },
                ]
            }
        ),
    )
    ids = [LAMP, "gid://shopify/ProductVariant/1", "gid://shopify/Product/912855135", SHADE]

    found = variants(make_api(), ids)

    assert found == [
        VariantState(
            id=LAMP,
            title="Brass / 220V",
            price=Decimal("189.00"),
            inventory_quantity=4,
            available_for_sale=True,
            product_id="gid://shopify/Product/912855135",
            product_title="Arc Floor Lamp",
            product_handle="arc-floor-lamp",
            image_url="https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731",
        ),
        VariantState(
            id=SHADE,
            title="Default Title",
            price=Decimal("24.50"),
            inventory_quantity=None,
            available_for_sale=False,
            product_id="gid://shopify/Product/912855135",
            product_title="Arc Floor Lamp",
            product_handle="arc-floor-lamp",
            image_url=None,
        ),
    ]
    assert sent(admin.calls[0]) == {"query": VARIANTS, "variables": {"ids": ids}}


def test_many_variants_are_asked_for_in_chunks_shopify_accepts(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"nodes": []}))
    admin.post(ENDPOINT, json=answer({"nodes": []}))
    ids = [f"gid://shopify/ProductVariant/{n}" for n in range(NODES_PER_QUERY + 10)]

    assert variants(make_api(), ids) == []

    assert [len(variables["ids"]) for variables in sent_variables(admin)] == [NODES_PER_QUERY, 10]


def test_no_variants_asked_means_no_call(admin: responses.RequestsMock) -> None:
    assert variants(make_api(), []) == []


def order(number: int, created_at: str, amount: str) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{number}",
        "createdAt": created_at,
        "sourceName": "web",
        "totalPriceSet": {"shopMoney": {"amount": amount, "currencyCode": "EUR"}},
    }


def test_customer_orders_follow_every_page(admin: responses.RequestsMock) -> None:
    first = {"orders": {"nodes": [order(1001, "2026-11-10T10:00:00Z", "189.0")], "pageInfo": page_info(CURSOR)}}
    second = {"orders": {"nodes": [order(1002, "2026-11-12T08:30:00Z", "24.5")], "pageInfo": page_info(None)}}
    admin.post(ENDPOINT, json=answer({"customer": first}))
    admin.post(ENDPOINT, json=answer({"customer": second}))

    orders = customer_orders(make_api(), ADA, since=datetime(2026, 11, 1, tzinfo=UTC))

    assert orders == [
        OrderSummary(
            id="gid://shopify/Order/1001",
            name="#1001",
            created_at=datetime(2026, 11, 10, 10, 0, tzinfo=UTC),
            source_name="web",
            total=Decimal("189.0"),
            currency="EUR",
        ),
        OrderSummary(
            id="gid://shopify/Order/1002",
            name="#1002",
            created_at=datetime(2026, 11, 12, 8, 30, tzinfo=UTC),
            source_name="web",
            total=Decimal("24.5"),
            currency="EUR",
        ),
    ]
    query = "created_at:>='2026-11-01T00:00:00Z'"
    assert sent_variables(admin) == [
        {"id": ADA, "first": 50, "query": query, "after": None},
        {"id": ADA, "first": 50, "query": query, "after": CURSOR},
    ]
    assert {sent(call)["query"] for call in admin.calls} == {CUSTOMER_ORDERS}


def test_orders_of_an_unknown_customer(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"customer": None}))
    assert customer_orders(make_api(), ADA, since=CHANGED_AT) == []


def test_abandoned_checkouts_one_page(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "abandonedCheckouts": {
                    "nodes": [
                        {
                            "id": "gid://shopify/AbandonedCheckout/35386356",
                            "abandonedCheckoutUrl": "https://lumen-lamps.myshopify.com/78/checkouts/ac/Z2NwL/recover?key=a1b2",
                            "createdAt": "2026-11-19T21:04:11Z",
                            "updatedAt": "2026-11-19T21:09:40Z",
                            "completedAt": None,
                            "customer": {"id": ADA},
                            "lineItems": {
                                "nodes": [
                                    {"quantity": 1, "variant": {"id": LAMP}},
                                    {"quantity": 2, "variant": None},
                                ]
                            },
                        },
                        {
                            "id": "gid://shopify/AbandonedCheckout/35386357",
                            "abandonedCheckoutUrl": "https://lumen-lamps.myshopify.com/78/checkouts/ac/Y3B/recover?key=c3d4",
                            "createdAt": "2026-11-18T08:00:00Z",
                            "updatedAt": "2026-11-20T09:00:00Z",
                            "completedAt": "2026-11-20T09:00:00Z",
                            "customer": None,
                            "lineItems": {"nodes": [{"quantity": 3, "variant": {"id": SHADE}}]},
                        },
                    ],
                    "pageInfo": page_info(CURSOR),
                }
            }
        ),
    )

    page = abandoned_checkouts(make_api(), updated_since=CHANGED_AT, after="cursor-of-the-previous-page")

    assert page == Page(
        items=(
            AbandonedCheckoutSummary(
                id="gid://shopify/AbandonedCheckout/35386356",
                recovery_url="https://lumen-lamps.myshopify.com/78/checkouts/ac/Z2NwL/recover?key=a1b2",
                created_at=datetime(2026, 11, 19, 21, 4, 11, tzinfo=UTC),
                updated_at=datetime(2026, 11, 19, 21, 9, 40, tzinfo=UTC),
                completed_at=None,
                customer_id=ADA,
                lines=(CheckoutLine(LAMP, 1), CheckoutLine(None, 2)),
            ),
            AbandonedCheckoutSummary(
                id="gid://shopify/AbandonedCheckout/35386357",
                recovery_url="https://lumen-lamps.myshopify.com/78/checkouts/ac/Y3B/recover?key=c3d4",
                created_at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC),
                updated_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
                completed_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
                customer_id=None,
                lines=(CheckoutLine(SHADE, 3),),
            ),
        ),
        next_cursor=CURSOR,
    )
    assert page.has_next_page
    [variables] = sent_variables(admin)
    assert variables["after"] == "cursor-of-the-previous-page"
    assert variables["query"] == "updated_at:>='2026-11-20T10:00:05Z'"
    assert sent(admin.calls[0])["query"] == ABANDONED_CHECKOUTS


def test_the_last_page_of_abandoned_checkouts(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"abandonedCheckouts": {"nodes": [], "pageInfo": page_info(None)}}))
    page = abandoned_checkouts(make_api(), updated_since=CHANGED_AT, after=None)
    assert (page.items, page.next_cursor, page.has_next_page) == ((), None, False)
    assert sent_variables(admin)[0]["after"] is None


def test_unsubscribing_from_email_sends_the_state_and_the_instant(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer({"customerEmailMarketingConsentUpdate": {"customer": {"id": ADA}, "userErrors": []}}),
    )

    update_email_consent(make_api(), ADA, state="UNSUBSCRIBED", opt_in_level=None, changed_at=CHANGED_AT)

    assert sent(admin.calls[0]) == {
        "query": UPDATE_EMAIL_CONSENT,
        "variables": {
            "input": {
                "customerId": ADA,
                "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": "2026-11-20T10:00:05Z"},
            }
        },
    }


def test_a_refused_email_consent_update_raises_user_errors(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "customerEmailMarketingConsentUpdate": {
                    "customer": None,
                    "userErrors": [{"field": ["input", "customerId"], "message": "Customer does not exist"}],
                }
            }
        ),
    )

    with pytest.raises(UserErrorsError, match=r"input\.customerId: Customer does not exist") as raised:
        update_email_consent(make_api(), ADA, state="UNSUBSCRIBED", opt_in_level=None, changed_at=CHANGED_AT)

    assert raised.value.errors == [UserError(field=("input", "customerId"), message="Customer does not exist")]


def test_sms_consent_update(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT, json=answer({"customerSmsMarketingConsentUpdate": {"customer": {"id": ADA}, "userErrors": []}})
    )

    update_sms_consent(make_api(), ADA, state="SUBSCRIBED", opt_in_level="SINGLE_OPT_IN", changed_at=CHANGED_AT)

    assert sent(admin.calls[0]) == {
        "query": UPDATE_SMS_CONSENT,
        "variables": {
            "input": {
                "customerId": ADA,
                "smsMarketingConsent": {
                    "marketingState": "SUBSCRIBED",
                    "marketingOptInLevel": "SINGLE_OPT_IN",
                    "consentUpdatedAt": "2026-11-20T10:00:05Z",
                },
            }
        },
    }


def test_a_refused_sms_consent_update_raises_user_errors(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "customerSmsMarketingConsentUpdate": {
                    "customer": None,
                    "userErrors": [
                        {"field": ["input", "smsMarketingConsent"], "message": "Phone can't be blank"},
                    ],
                }
            }
        ),
    )
    with pytest.raises(UserErrorsError) as raised:
        update_sms_consent(make_api(), ADA, state="UNSUBSCRIBED", opt_in_level=None, changed_at=CHANGED_AT)
    assert [error.message for error in raised.value.errors] == ["Phone can't be blank"]


def test_a_naive_instant_is_refused_before_anything_is_sent(admin: responses.RequestsMock) -> None:
    with pytest.raises(ValueError, match="naive"):
        update_email_consent(
            make_api(), ADA, state="UNSUBSCRIBED", opt_in_level=None, changed_at=datetime(2026, 11, 20, 10, 0)
        )


def subscription(number: int, topic: str) -> dict[str, Any]:
    return {"id": f"gid://shopify/WebhookSubscription/{number}", "topic": topic, "uri": WEBHOOK_URI}


def test_webhook_subscriptions_follow_every_page(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {"webhookSubscriptions": {"nodes": [subscription(1, "ORDERS_CREATE")], "pageInfo": page_info(CURSOR)}}
        ),
    )
    admin.post(
        ENDPOINT,
        json=answer(
            {"webhookSubscriptions": {"nodes": [subscription(2, "APP_UNINSTALLED")], "pageInfo": page_info(None)}}
        ),
    )

    found = webhook_subscriptions(make_api())

    assert found == [
        WebhookSubscriptionInfo("gid://shopify/WebhookSubscription/1", "ORDERS_CREATE", WEBHOOK_URI),
        WebhookSubscriptionInfo("gid://shopify/WebhookSubscription/2", "APP_UNINSTALLED", WEBHOOK_URI),
    ]
    assert [variables["after"] for variables in sent_variables(admin)] == [None, CURSOR]


def test_creating_a_subscription_sends_the_topic_enum_and_the_uri(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {"webhookSubscriptionCreate": {"webhookSubscription": subscription(3, "ORDERS_CREATE"), "userErrors": []}}
        ),
    )

    created = create_webhook_subscription(make_api(), "orders/create", WEBHOOK_URI)

    assert created == WebhookSubscriptionInfo("gid://shopify/WebhookSubscription/3", "ORDERS_CREATE", WEBHOOK_URI)
    assert sent_variables(admin) == [{"topic": "ORDERS_CREATE", "subscription": {"uri": WEBHOOK_URI}}]


def test_a_refused_subscription_raises_user_errors(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "webhookSubscriptionCreate": {
                    "webhookSubscription": None,
                    "userErrors": [
                        {
                            "field": ["webhookSubscription", "callbackUrl"],
                            "message": "Address for this topic has already been taken",
                        }
                    ],
                }
            }
        ),
    )
    with pytest.raises(UserErrorsError, match="already been taken"):
        create_webhook_subscription(make_api(), "ORDERS_CREATE", WEBHOOK_URI)


def test_deleting_a_subscription(admin: responses.RequestsMock) -> None:
    gid = "gid://shopify/WebhookSubscription/3"
    admin.post(
        ENDPOINT,
        json=answer({"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": gid, "userErrors": []}}),
    )
    delete_webhook_subscription(make_api(), gid)
    assert sent_variables(admin) == [{"id": gid}]


def test_deleting_an_unknown_subscription_raises_user_errors(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "webhookSubscriptionDelete": {
                    "deletedWebhookSubscriptionId": None,
                    "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
                }
            }
        ),
    )
    with pytest.raises(UserErrorsError, match="does not exist"):
        delete_webhook_subscription(make_api(), "gid://shopify/WebhookSubscription/404")


def test_granted_scopes(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "currentAppInstallation": {
                    "accessScopes": [
                        {"handle": "read_customers"},
                        {"handle": "write_customers"},
                        {"handle": "read_orders"},
                    ]
                }
            }
        ),
    )
    assert granted_scopes(make_api()) == ["read_customers", "write_customers", "read_orders"]
    assert sent_variables(admin) == [{}]


@pytest.mark.parametrize(
    ("name", "enum"),
    [
        ("orders/create", "ORDERS_CREATE"),
        ("app/uninstalled", "APP_UNINSTALLED"),
        ("orders/partially_fulfilled", "ORDERS_PARTIALLY_FULFILLED"),
        ("customer_payment_methods/create", "CUSTOMER_PAYMENT_METHODS_CREATE"),
        ("customers_email_marketing_consent/update", "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE"),
    ],
)
def test_topic_names_and_enums(name: str, enum: str) -> None:
    assert topic_enum(name) == enum
    assert topic_enum(enum) == enum
    assert topic_name(enum) == name


def test_topic_name_agrees_with_shopifys_description_of_every_topic() -> None:
    topics = admin_schema().get_type("WebhookSubscriptionTopic")
    assert isinstance(topics, GraphQLEnumType)
    for enum, value in topics.values.items():
        # "The webhook topic for `orders/create` events. ..."
        match = re.search(r"`([a-z_]+[/.][a-z_]+)`", value.description or "")
        assert match, enum
        assert topic_name(enum) == match.group(1)
        assert topic_enum(match.group(1)) == enum
