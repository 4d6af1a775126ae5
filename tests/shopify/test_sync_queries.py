"""The store sync's helpers against a fake Admin API answering in Shopify's documented shapes.

Every request the fake receives is checked as Shopify would check it: variables declared, present and of the
right type, and a requested cost within Shopify's 1,000-point limit for a single query (estimated from the
schema by Shopify's documented rules).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import requests
import responses
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
    parse,
    value_from_ast_untyped,
    visit,
)
from graphql.language import Visitor

from shopify_app.http import http_session
from shopify_app.shopify.admin_api import AdminApiError, TransientError, UserError, UserErrorsError
from shopify_app.shopify.admin_queries import (
    ABANDONED_CHECKOUTS,
    BULK_OPERATION,
    BULK_PRODUCTS,
    CHECKOUTS_PAGE,
    CUSTOMERS,
    LINE_ITEMS_PER_CHECKOUT,
    ORDER_LINE_ITEMS,
    ORDERS,
    PRODUCT_VARIANTS,
    PRODUCTS,
    PRODUCTS_COUNT,
    RUN_BULK_QUERY,
    SHOP_PROFILE,
    Page,
)
from shopify_app.shopify.sync_queries import (
    MAX_QUERY_COST,
    BulkOperation,
    CustomerRecord,
    MarketingConsent,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    ShopProfile,
    VariantRecord,
    bulk_operation,
    bulk_products,
    customers_page,
    orders_page,
    products_count,
    products_page,
    shop_profile,
    start_bulk_products,
)
from tests.shopify.fakes import ENDPOINT, answer, make_api, sent, sent_variables
from tests.shopify.schema import admin_schema, variable_problems

SINCE = datetime(2026, 11, 20, 11, 0, 0, tzinfo=timezone(timedelta(hours=1)))  # 10:00:00 UTC
CURSOR = "eyJsYXN0X2lkIjo4ODI2NzQzNjQ5NjcsImxhc3RfdmFsdWUiOiIyMDI2LTExLTIwIDEwOjE1OjAwLjAwMDAwMCJ9"
LAMP = "gid://shopify/Product/8826743649"
SHADE = "gid://shopify/Product/8826743650"
OPERATION = "gid://shopify/BulkOperation/5417398272"
STORAGE_URL = (
    "https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-operation-outputs/"
    "z1k3n5yj9h4t-final?GoogleAccessId=assets-us-prod%40shopify-tiers.iam.gserviceaccount.com"
    "&Expires=1796464800&Signature=c2lnbmF0dXJlLW5vdC10by1iZS1sb2dnZWQ%3D"
)


@pytest.fixture
def admin(shopify: responses.RequestsMock) -> Iterator[responses.RequestsMock]:
    yield shopify
    for call in shopify.calls:
        if call.request.url != ENDPOINT:
            continue  # the bulk export's storage
        body = sent(call)
        assert variable_problems(body["query"], body["variables"]) == []
        assert requested_cost(body["query"], body["variables"]) <= MAX_QUERY_COST


def page_info(cursor: str | None) -> dict[str, Any]:
    return {"hasNextPage": cursor is not None, "endCursor": cursor}


# Requested cost by Shopify's documented rules (shopify.dev/docs/api/usage/limits): scalars and enums cost 0,
# an object 1 plus what is selected in it, a connection 2 plus `first` times the cost of one node (pageInfo is
# counted as an object, to err on the safe side), an interface the most expensive of its fragments.


def requested_cost(document: str, variables: dict[str, Any]) -> int:
    schema = admin_schema()
    [operation] = [node for node in _inlined(parse(document)).definitions if isinstance(node, OperationDefinitionNode)]
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    assert root is not None
    return _selection_cost(operation.selection_set, root, variables)


def _inlined(document: DocumentNode) -> DocumentNode:
    """Named fragments replaced by inline ones, so that their fields are counted where they are spread."""
    named = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    class Inline(Visitor):
        def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: Any) -> InlineFragmentNode:
            fragment = named[node.name.value]
            return InlineFragmentNode(type_condition=fragment.type_condition, selection_set=fragment.selection_set)

    inlined = visit(document, Inline())
    assert isinstance(inlined, DocumentNode)
    return inlined


def _selection_cost(selection_set: SelectionSetNode, parent: Any, variables: dict[str, Any]) -> int:
    fields = 0
    fragments = [0]
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode) and not selection.name.value.startswith("__"):
            fields += _field_cost(selection, parent.fields[selection.name.value], variables)
        elif isinstance(selection, InlineFragmentNode) and selection.type_condition is not None:
            fragment_type = admin_schema().get_type(selection.type_condition.name.value)
            fragments.append(_selection_cost(selection.selection_set, fragment_type, variables))
    return fields + max(fragments)


def _field_cost(node: FieldNode, field: GraphQLField, variables: dict[str, Any]) -> int:
    named = get_named_type(field.type)
    if is_leaf_type(named):
        return 0
    assert node.selection_set is not None
    if not named.name.endswith("Connection"):
        return 1 + _selection_cost(node.selection_set, named, variables)
    assert isinstance(named, GraphQLObjectType)
    [first] = [arg.value for arg in node.arguments or () if arg.name.value == "first"]
    size = variables[first.name.value] if isinstance(first, VariableNode) else value_from_ast_untyped(first)
    cost = 2
    for part in node.selection_set.selections:
        assert isinstance(part, FieldNode)
        assert part.selection_set is not None
        name = part.name.value
        if name == "pageInfo":
            cost += 1
        elif name == "nodes":
            cost += size * (1 + _selection_cost(part.selection_set, get_named_type(named.fields[name].type), variables))
        elif name == "edges":
            edge = get_named_type(named.fields["edges"].type)
            assert isinstance(edge, GraphQLObjectType)
            [inner] = [sel for sel in part.selection_set.selections if isinstance(sel, FieldNode)]
            assert inner.name.value == "node"
            assert inner.selection_set is not None
            node_type = get_named_type(edge.fields["node"].type)
            cost += size * (1 + _selection_cost(inner.selection_set, node_type, variables))
    return cost


def test_the_cost_estimate_follows_shopifys_rules() -> None:
    # shop (1) + orders (2 + 50 orders x (1 + customer 1)) = 103
    document = "query { shop { name } orders(first: 50) { nodes { id customer { id } } } }"
    assert requested_cost(document, {}) == 103


def test_fields_of_named_fragments_are_counted_where_they_are_spread() -> None:
    inline = "query { orders(first: 10) { nodes { customer { id } } } }"
    named = "query { orders(first: 10) { nodes { ...O } } } fragment O on Order { customer { id } }"
    assert requested_cost(named, {}) == requested_cost(inline, {}) == 2 + 10 * 2


def test_the_abandoned_checkouts_page_is_accepted() -> None:
    variables = {"first": CHECKOUTS_PAGE, "lineItems": LINE_ITEMS_PER_CHECKOUT}
    assert requested_cost(ABANDONED_CHECKOUTS, variables) <= MAX_QUERY_COST


def test_fifty_products_with_a_hundred_variants_each_would_be_refused() -> None:
    # Which is why the nested page is sized by the page size asked for.
    assert requested_cost(PRODUCTS, {"first": 50, "variants": 100}) > MAX_QUERY_COST
    assert requested_cost(ORDERS, {"first": 50, "lineItems": 100}) > MAX_QUERY_COST


# --- shop


def shop(contact_email: str) -> dict[str, Any]:
    return {
        "shop": {
            "name": "Lumen Lamps",
            "email": "Owner@Lumen.example",
            "contactEmail": contact_email,
            "currencyCode": "EUR",
            "ianaTimezone": "Europe/Amsterdam",
            "primaryDomain": {"host": "lumen.example"},
            "currencyFormats": {"moneyInEmailsFormat": "€{{amount_with_comma_separator}}"},
            "billingAddress": {
                "address1": "Prinsengracht 263",
                "address2": None,
                "city": "Amsterdam",
                "provinceCode": "NH",
                "zip": "1016 GV",
                "country": "Netherlands",
            },
        }
    }


def test_shop_profile(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer(shop("Hello@Lumen.example")))

    profile = shop_profile(make_api())

    assert profile == ShopProfile(
        name="Lumen Lamps",
        email="hello@lumen.example",
        currency="EUR",
        iana_timezone="Europe/Amsterdam",
        primary_domain="lumen.example",
        money_format="€{{amount_with_comma_separator}}",
        address1="Prinsengracht 263",
        address2=None,
        city="Amsterdam",
        province_code="NH",
        zip="1016 GV",
        country_name="Netherlands",
    )
    assert sent(admin.calls[0]) == {"query": SHOP_PROFILE, "variables": {}}


def test_the_shop_email_without_a_contact_email_is_the_owners(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer(shop("")))
    assert shop_profile(make_api()).email == "owner@lumen.example"


# --- products


def variant(number: int, *, price: str = "189.00", image: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{number}",
        "title": "Brass / 220V",
        "sku": f"ARC-{number}",
        "price": price,
        "compareAtPrice": None,
        "inventoryQuantity": 4,
        "inventoryPolicy": "DENY",
        "updatedAt": "2026-11-20T10:15:00Z",
        "image": {"url": image} if image else None,
        **fields,
    }


def product(
    gid: str, variants: list[dict[str, Any]], *, more_variants: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "id": gid,
        "title": "Arc Floor Lamp",
        "handle": "arc-floor-lamp",
        "status": "ACTIVE",
        "productType": "Lamps",
        "vendor": "Lumen",
        "updatedAt": "2026-11-20T10:15:00Z",
        "featuredMedia": {"preview": {"image": {"url": "https://cdn.shopify.com/s/files/1/0001/arc.jpg?v=1731"}}},
        "variants": {"nodes": variants, "pageInfo": page_info(more_variants)},
        **fields,
    }


def test_a_page_of_products_with_their_variants(admin: responses.RequestsMock) -> None:
    lamp = product(
        LAMP,
        [
            variant(
                43729076,
                compareAtPrice="229.00",
                image="https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731",
                updatedAt="2026-11-20T11:15:00+01:00",
            ),
            variant(43729077, price="24.5", title="Default Title", sku="", inventoryQuantity=None),
        ],
    )
    shade = product(
        SHADE,
        [variant(43729080, inventoryPolicy="CONTINUE", inventoryQuantity=-2)],
        title="Linen Shade",
        handle="linen-shade",
        status="DRAFT",
        featuredMedia=None,
        updatedAt="2026-11-20T10:20:00Z",
    )
    admin.post(ENDPOINT, json=answer({"products": {"nodes": [lamp, shade], "pageInfo": page_info(CURSOR)}}))

    page = products_page(make_api(), after="cursor-of-the-previous-page", updated_since=SINCE)

    updated = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    assert page == Page(
        items=(
            ProductRecord(
                product_id=8826743649,
                title="Arc Floor Lamp",
                handle="arc-floor-lamp",
                status="active",
                image_url="https://cdn.shopify.com/s/files/1/0001/arc.jpg?v=1731",
                product_type="Lamps",
                vendor="Lumen",
                updated_at=updated,
                variants=(
                    VariantRecord(
                        variant_id=43729076,
                        product_id=8826743649,
                        title="Brass / 220V",
                        sku="ARC-43729076",
                        price=Decimal("189.00"),
                        compare_at_price=Decimal("229.00"),
                        inventory_quantity=4,
                        inventory_policy="deny",
                        image_url="https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731",
                        updated_at=updated,
                    ),
                    VariantRecord(
                        variant_id=43729077,
                        product_id=8826743649,
                        title="Default Title",
                        sku=None,
                        price=Decimal("24.5"),
                        compare_at_price=None,
                        inventory_quantity=None,
                        inventory_policy="deny",
                        image_url=None,
                        updated_at=updated,
                    ),
                ),
            ),
            ProductRecord(
                product_id=8826743650,
                title="Linen Shade",
                handle="linen-shade",
                status="draft",
                image_url=None,
                product_type="Lamps",
                vendor="Lumen",
                updated_at=datetime(2026, 11, 20, 10, 20, tzinfo=UTC),
                variants=(
                    VariantRecord(
                        variant_id=43729080,
                        product_id=8826743650,
                        title="Brass / 220V",
                        sku="ARC-43729080",
                        price=Decimal("189.00"),
                        compare_at_price=None,
                        inventory_quantity=-2,
                        inventory_policy="continue",
                        image_url=None,
                        updated_at=updated,
                    ),
                ),
            ),
        ),
        next_cursor=CURSOR,
    )
    assert sent(admin.calls[0]) == {
        "query": PRODUCTS,
        "variables": {
            "first": 50,
            "after": "cursor-of-the-previous-page",
            "query": "updated_at:>='2026-11-20T10:00:00Z'",
            "variants": 6,  # what fifty products leave room for
        },
    }


def test_the_last_page_of_all_products(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"products": {"nodes": [], "pageInfo": page_info(None)}}))

    page = products_page(make_api(), after=None, updated_since=None, first=10)

    assert (page.items, page.next_cursor, page.has_next_page) == ((), None, False)
    assert sent_variables(admin) == [{"first": 10, "after": None, "query": None, "variants": 46}]


def test_variants_beyond_the_nested_page_are_fetched_for_their_product(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "products": {
                    "nodes": [product(LAMP, [variant(1), variant(2)], more_variants="variants-after-2")],
                    "pageInfo": page_info(None),
                }
            }
        ),
    )
    more = {"nodes": [variant(3), variant(4)], "pageInfo": page_info("variants-after-4")}
    admin.post(ENDPOINT, json=answer({"product": {"variants": more}}))
    last = {"nodes": [variant(5)], "pageInfo": page_info(None)}
    admin.post(ENDPOINT, json=answer({"product": {"variants": last}}))

    [lamp] = products_page(make_api(), after=None, updated_since=SINCE).items

    assert [v.variant_id for v in lamp.variants] == [1, 2, 3, 4, 5]
    assert {v.product_id for v in lamp.variants} == {8826743649}
    assert [sent(call)["query"] for call in admin.calls] == [PRODUCTS, PRODUCT_VARIANTS, PRODUCT_VARIANTS]
    assert sent_variables(admin)[1:] == [
        {"id": LAMP, "first": 250, "after": "variants-after-2"},
        {"id": LAMP, "first": 250, "after": "variants-after-4"},
    ]


def test_a_product_deleted_before_its_variants_are_completed(admin: responses.RequestsMock) -> None:
    nodes = [product(LAMP, [variant(1)], more_variants="variants-after-1")]
    admin.post(ENDPOINT, json=answer({"products": {"nodes": nodes, "pageInfo": page_info(None)}}))
    admin.post(ENDPOINT, json=answer({"product": None}))

    [lamp] = products_page(make_api(), after=None, updated_since=None).items

    assert [v.variant_id for v in lamp.variants] == [1]


@pytest.mark.parametrize("first", [1, 10, 50, 110])
def test_every_products_page_size_stays_within_the_cost_limit(admin: responses.RequestsMock, first: int) -> None:
    admin.post(ENDPOINT, json=answer({"products": {"nodes": [], "pageInfo": page_info(None)}}))
    products_page(make_api(), after=None, updated_since=SINCE, first=first)
    # the `admin` fixture checks the cost; a page of one product gets the full nested page
    assert sent_variables(admin)[0]["variants"] == {1: 100, 10: 46, 50: 6, 110: 1}[first]


@pytest.mark.parametrize("first", [1, 10, 25, 58])
def test_every_orders_page_size_stays_within_the_cost_limit(admin: responses.RequestsMock, first: int) -> None:
    admin.post(ENDPOINT, json=answer({"orders": {"nodes": [], "pageInfo": page_info(None)}}))
    orders_page(make_api(), after=None, created_since=None, updated_since=SINCE, first=first)
    assert sent_variables(admin)[0]["lineItems"] == {1: 100, 10: 17, 25: 5, 58: 1}[first]


@pytest.mark.parametrize(
    ("helper", "first"),
    [
        (products_page, 0),
        (products_page, 111),
        (customers_page, 250),
        (partial(orders_page, created_since=None), 84),
        (partial(orders_page, created_since=None), 251),
    ],
)
def test_a_page_size_shopify_would_refuse_is_refused_before_anything_is_sent(
    admin: responses.RequestsMock, helper: Callable[..., Any], first: int
) -> None:
    with pytest.raises(ValueError, match="first must be between 1 and"):
        helper(make_api(), after=None, updated_since=None, first=first)


def test_a_naive_time_is_refused(admin: responses.RequestsMock) -> None:
    with pytest.raises(ValueError, match="naive"):
        products_page(make_api(), after=None, updated_since=datetime(2026, 11, 20, 10, 0))


def test_products_count_is_exact(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"productsCount": {"count": 12408}}))

    assert products_count(make_api()) == 12408

    assert sent(admin.calls[0]) == {"query": PRODUCTS_COUNT, "variables": {}}
    assert "limit: null" in PRODUCTS_COUNT  # Shopify otherwise stops counting at 10,000


# --- customers


ADA = {
    "id": "gid://shopify/Customer/1018520244",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "locale": "en-CA",
    "state": "ENABLED",
    "createdAt": "2026-03-01T08:00:00Z",
    "updatedAt": "2026-11-20T10:05:00Z",
    "defaultAddress": {"countryCodeV2": "CA"},
    "defaultEmailAddress": {
        "emailAddress": "Ada.Lovelace@Example.com",
        "marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "CONFIRMED_OPT_IN",
        "marketingUpdatedAt": "2026-11-02T09:15:00Z",
    },
    "defaultPhoneNumber": {
        "phoneNumber": "+16135550127",
        "marketingState": "NOT_SUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN",
        "marketingUpdatedAt": "2026-11-03T18:40:12-05:00",
        "marketingCollectedFrom": "SHOPIFY",
    },
}
GUEST = {
    "id": "gid://shopify/Customer/1018520245",
    "firstName": None,
    "lastName": None,
    "locale": "nl",
    "state": "DISABLED",
    "createdAt": "2026-11-19T21:04:11Z",
    "updatedAt": "2026-11-20T10:06:00Z",
    "defaultAddress": None,
    "defaultEmailAddress": {
        "emailAddress": "guest@example.nl",
        "marketingState": "UNSUBSCRIBED",
        "marketingOptInLevel": None,
        "marketingUpdatedAt": None,
    },
    "defaultPhoneNumber": None,
}


def test_a_page_of_customers_with_their_consent(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"customers": {"nodes": [ADA, GUEST], "pageInfo": page_info(CURSOR)}}))

    page = customers_page(make_api(), after=None, updated_since=SINCE)

    assert page == Page(
        items=(
            CustomerRecord(
                customer_id=1018520244,
                email="ada.lovelace@example.com",
                phone="+16135550127",
                first_name="Ada",
                last_name="Lovelace",
                country_code="CA",
                locale="en-CA",
                state="enabled",
                created_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
                updated_at=datetime(2026, 11, 20, 10, 5, tzinfo=UTC),
                email_consent=MarketingConsent(
                    state="subscribed",
                    opt_in_level="confirmed_opt_in",
                    updated_at=datetime(2026, 11, 2, 9, 15, tzinfo=UTC),
                ),
                sms_consent=MarketingConsent(
                    state="not_subscribed",
                    opt_in_level="single_opt_in",
                    updated_at=datetime(2026, 11, 3, 23, 40, 12, tzinfo=UTC),
                    collected_from="shopify",
                ),
            ),
            CustomerRecord(
                customer_id=1018520245,
                email="guest@example.nl",
                phone=None,
                first_name=None,
                last_name=None,
                country_code=None,
                locale="nl",
                state="disabled",
                created_at=datetime(2026, 11, 19, 21, 4, 11, tzinfo=UTC),
                updated_at=datetime(2026, 11, 20, 10, 6, tzinfo=UTC),
                email_consent=MarketingConsent(state="unsubscribed", opt_in_level=None, updated_at=None),
                sms_consent=None,
            ),
        ),
        next_cursor=CURSOR,
    )
    assert sent(admin.calls[0]) == {
        "query": CUSTOMERS,
        "variables": {"first": 100, "after": None, "query": "updated_at:>='2026-11-20T10:00:00Z'"},
    }


def test_the_next_page_of_all_customers(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"customers": {"nodes": [], "pageInfo": page_info(None)}}))
    page = customers_page(make_api(), after=CURSOR, updated_since=None, first=249)
    assert page == Page((), None)
    assert sent_variables(admin) == [{"first": 249, "after": CURSOR, "query": None}]


# --- orders


def line(variant_id: int | None, product_id: int | None, amount: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "title": "Arc Floor Lamp",
        "quantity": quantity,
        "variant": {"id": f"gid://shopify/ProductVariant/{variant_id}"} if variant_id else None,
        "product": {"id": f"gid://shopify/Product/{product_id}"} if product_id else None,
        "originalUnitPriceSet": {"shopMoney": {"amount": amount, "currencyCode": "EUR"}},
    }


def order(number: int, lines: list[dict[str, Any]], *, more_lines: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{number}",
        "email": "Ada.Lovelace@Example.com",
        "phone": None,
        "sourceName": "web",
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "FULFILLED",
        "customerAcceptsMarketing": True,
        "fulfillments": [{"createdAt": "2026-11-20T11:00:00Z"}, {"createdAt": "2026-11-20T12:30:00+01:00"}],
        "createdAt": "2026-11-20T09:58:00Z",
        "processedAt": "2026-11-20T10:58:00+01:00",
        "updatedAt": "2026-11-20T10:01:00Z",
        "cancelledAt": None,
        "customer": {"id": "gid://shopify/Customer/1018520244"},
        "totalPriceSet": {"shopMoney": {"amount": "237.5", "currencyCode": "EUR"}},
        "lineItems": {"nodes": lines, "pageInfo": page_info(more_lines)},
        **fields,
    }


def test_a_page_of_orders_with_their_lines(admin: responses.RequestsMock) -> None:
    paid = order(1001, [line(43729076, 8826743649, "189.00"), line(None, None, "24.25", quantity=2)])
    cancelled = order(
        1002,
        [line(43729080, 8826743650, "10.0")],
        email=None,
        phone="+31201234567",
        sourceName="pos",
        displayFinancialStatus="PARTIALLY_REFUNDED",
        displayFulfillmentStatus="PARTIALLY_FULFILLED",
        customerAcceptsMarketing=False,
        cancelledAt="2026-11-20T10:30:00Z",
        customer=None,
        totalPriceSet={"shopMoney": {"amount": "0.0", "currencyCode": "EUR"}},
    )
    admin.post(ENDPOINT, json=answer({"orders": {"nodes": [paid, cancelled], "pageInfo": page_info(CURSOR)}}))

    page = orders_page(make_api(), after=None, created_since=SINCE - timedelta(days=30), updated_since=SINCE)

    created = datetime(2026, 11, 20, 9, 58, tzinfo=UTC)
    processed = datetime(2026, 11, 20, 9, 58, tzinfo=UTC)
    updated = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
    assert page == Page(
        items=(
            OrderRecord(
                order_id=1001,
                name="#1001",
                customer_id=1018520244,
                email="ada.lovelace@example.com",
                phone=None,
                source_name="web",
                financial_status="paid",
                fulfillment_status="fulfilled",
                fulfilled_at=datetime(2026, 11, 20, 11, 30, tzinfo=UTC),  # the latest of its fulfilments
                accepts_marketing=True,
                currency="EUR",
                total_price=Decimal("237.5"),
                created_at=created,
                processed_at=processed,
                updated_at=updated,
                cancelled_at=None,
                line_items=(
                    OrderLineRecord(43729076, 8826743649, "Arc Floor Lamp", 1, Decimal("189.00")),
                    OrderLineRecord(None, None, "Arc Floor Lamp", 2, Decimal("24.25")),
                ),
            ),
            OrderRecord(
                order_id=1002,
                name="#1002",
                customer_id=None,
                email=None,
                phone="+31201234567",
                source_name="pos",
                financial_status="partially_refunded",
                fulfillment_status="partially_fulfilled",
                fulfilled_at=None,  # shipped in part only
                accepts_marketing=False,
                currency="EUR",
                total_price=Decimal("0.0"),
                created_at=created,
                processed_at=processed,
                updated_at=updated,
                cancelled_at=datetime(2026, 11, 20, 10, 30, tzinfo=UTC),
                line_items=(OrderLineRecord(43729080, 8826743650, "Arc Floor Lamp", 1, Decimal("10.0")),),
            ),
        ),
        next_cursor=CURSOR,
    )
    assert sent(admin.calls[0]) == {
        "query": ORDERS,
        "variables": {
            "first": 25,
            "after": None,
            "query": "created_at:>='2026-10-21T10:00:00Z' AND updated_at:>='2026-11-20T10:00:00Z'",
            "lineItems": 5,  # what twenty-five orders leave room for
        },
    }


def test_orders_created_since_only(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"orders": {"nodes": [], "pageInfo": page_info(None)}}))
    orders_page(make_api(), after=CURSOR, created_since=SINCE, updated_since=None, first=10)
    assert sent_variables(admin) == [
        {"first": 10, "after": CURSOR, "query": "created_at:>='2026-11-20T10:00:00Z'", "lineItems": 17}
    ]


def test_line_items_beyond_the_nested_page_are_fetched_for_their_order(admin: responses.RequestsMock) -> None:
    first_lines = [line(1, 10, "1.00"), line(2, 10, "2.00")]
    nodes = [order(1001, first_lines, more_lines="lines-after-2")]
    admin.post(ENDPOINT, json=answer({"orders": {"nodes": nodes, "pageInfo": page_info(None)}}))
    more = {"nodes": [line(3, 11, "3.00")], "pageInfo": page_info(None)}
    admin.post(ENDPOINT, json=answer({"order": {"lineItems": more}}))

    [placed] = orders_page(make_api(), after=None, created_since=None, updated_since=None).items

    assert [(item.variant_id, item.product_id, item.price) for item in placed.line_items] == [
        (1, 10, Decimal("1.00")),
        (2, 10, Decimal("2.00")),
        (3, 11, Decimal("3.00")),
    ]
    assert sent(admin.calls[1]) == {
        "query": ORDER_LINE_ITEMS,
        "variables": {"id": "gid://shopify/Order/1001", "first": 100, "after": "lines-after-2"},
    }


# --- bulk export


def operation(status: str, *, url: str | None = None, count: str = "0", error: str | None = None) -> dict[str, Any]:
    return {"id": OPERATION, "status": status, "url": url, "objectCount": count, "errorCode": error}


def test_starting_the_bulk_export_sends_the_products_query(admin: responses.RequestsMock) -> None:
    admin.post(
        ENDPOINT,
        json=answer({"bulkOperationRunQuery": {"bulkOperation": operation("CREATED"), "userErrors": []}}),
    )

    started = start_bulk_products(make_api())

    assert started == BulkOperation(id=OPERATION, status="created", url=None, object_count=0, error_code=None)
    assert sent(admin.calls[0]) == {"query": RUN_BULK_QUERY, "variables": {"query": BULK_PRODUCTS}}


def test_a_refused_bulk_export_raises_user_errors(admin: responses.RequestsMock) -> None:
    message = f"A bulk query operation for this app and shop is already in progress: {OPERATION}."
    admin.post(
        ENDPOINT,
        json=answer(
            {
                "bulkOperationRunQuery": {
                    "bulkOperation": None,
                    "userErrors": [{"field": None, "message": message}],
                }
            }
        ),
    )

    with pytest.raises(UserErrorsError, match="already in progress") as raised:
        start_bulk_products(make_api())

    assert raised.value.errors == [UserError(field=None, message=message)]


def test_polling_the_bulk_export_until_it_is_completed(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"node": {"__typename": "BulkOperation", **operation("RUNNING", count="812")}}))
    done = operation("COMPLETED", url=STORAGE_URL, count="12408")
    admin.post(ENDPOINT, json=answer({"node": {"__typename": "BulkOperation", **done}}))
    api = make_api()

    running = bulk_operation(api, OPERATION)
    completed = bulk_operation(api, OPERATION)

    assert running == BulkOperation(id=OPERATION, status="running", url=None, object_count=812, error_code=None)
    assert completed == BulkOperation(
        id=OPERATION, status="completed", url=STORAGE_URL, object_count=12408, error_code=None
    )
    assert [sent(call) for call in admin.calls] == [{"query": BULK_OPERATION, "variables": {"id": OPERATION}}] * 2


def test_a_failed_bulk_export_has_its_error_code(admin: responses.RequestsMock) -> None:
    failed = operation("FAILED", count="31", error="TIMEOUT")
    admin.post(ENDPOINT, json=answer({"node": {"__typename": "BulkOperation", **failed}}))
    assert bulk_operation(make_api(), OPERATION) == BulkOperation(OPERATION, "failed", None, 31, "timeout")


def test_an_unknown_bulk_operation(admin: responses.RequestsMock) -> None:
    admin.post(ENDPOINT, json=answer({"node": None}))
    with pytest.raises(AdminApiError, match="no bulk operation"):
        bulk_operation(make_api(), "gid://shopify/BulkOperation/404")


def jsonl(*objects: dict[str, Any]) -> str:
    return "".join(json.dumps(item) + "\n" for item in objects)


def bulk_variant(number: int, parent: str, **fields: Any) -> dict[str, Any]:
    return {**variant(number, **fields), "__parentId": parent}


def bulk_product(gid: str, **fields: Any) -> dict[str, Any]:
    node = product(gid, [], **fields)
    del node["variants"]
    return node


def test_the_bulk_export_is_read_into_products_with_their_variants(admin: responses.RequestsMock) -> None:
    bare = "gid://shopify/Product/8826743651"
    body = jsonl(
        bulk_product(LAMP),
        bulk_variant(1, LAMP, image="https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731"),
        bulk_variant(3, SHADE, price="24.50", compareAtPrice="30.00", inventoryPolicy="CONTINUE"),  # before it
        bulk_product(SHADE, status="ARCHIVED", title="Linen Shade", featuredMedia=None),
        bulk_variant(2, LAMP),  # after another product: the file is not grouped
        bulk_product(bare, title="Gift Card", handle="gift-card"),  # no variants at all
        bulk_variant(9, "gid://shopify/Product/404"),  # of a product the file does not list
    )
    admin.get(STORAGE_URL, body=body + "\n", content_type="application/jsonl")

    products = list(bulk_products(http_session(), STORAGE_URL))

    assert [(p.product_id, p.title, p.status, [v.variant_id for v in p.variants]) for p in products] == [
        (8826743649, "Arc Floor Lamp", "active", [1, 2]),
        (8826743650, "Linen Shade", "archived", [3]),
        (8826743651, "Gift Card", "active", []),
    ]
    lamp, shade, _ = products
    assert lamp.image_url == "https://cdn.shopify.com/s/files/1/0001/arc.jpg?v=1731"
    assert lamp.variants[0] == VariantRecord(
        variant_id=1,
        product_id=8826743649,
        title="Brass / 220V",
        sku="ARC-1",
        price=Decimal("189.00"),
        compare_at_price=None,
        inventory_quantity=4,
        inventory_policy="deny",
        image_url="https://cdn.shopify.com/s/files/1/0001/arc-brass.jpg?v=1731",
        updated_at=datetime(2026, 11, 20, 10, 15, tzinfo=UTC),
    )
    assert shade.image_url is None
    assert (shade.variants[0].product_id, shade.variants[0].price, shade.variants[0].compare_at_price) == (
        8826743650,
        Decimal("24.50"),
        Decimal("30.00"),
    )
    assert shade.variants[0].inventory_policy == "continue"
    [download] = admin.calls
    assert download.request.method == "GET"
    # responses records the keywords the request was sent with: the file is streamed, not held whole
    assert download.request.req_kwargs["stream"] is True  # type: ignore[attr-defined]


def test_an_expired_bulk_export_url_is_reported_without_its_signature(admin: responses.RequestsMock) -> None:
    admin.get(STORAGE_URL, status=403, body="<Error><Code>ExpiredToken</Code></Error>")

    with pytest.raises(AdminApiError) as raised:
        list(bulk_products(http_session(), STORAGE_URL))

    assert raised.value.status == 403
    assert "Signature" not in str(raised.value)
    assert "storage.googleapis" not in str(raised.value)


def test_a_broken_download_is_transient_and_keeps_the_url_private(admin: responses.RequestsMock) -> None:
    admin.get(STORAGE_URL, body=requests.ConnectionError(f"Max retries exceeded with url: {STORAGE_URL}"))

    with pytest.raises(TransientError) as raised:
        list(bulk_products(http_session(), STORAGE_URL))

    assert "Signature" not in str(raised.value)
