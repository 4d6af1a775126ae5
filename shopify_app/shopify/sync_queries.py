"""The store sync's reads from the Admin API, as records in the conventions of Shopify's REST webhook payloads.

Webhooks and this sync feed the same mirror, so GraphQL's answers are normalised to what a webhook would carry:
ids are the numbers inside the gids ("gid://shopify/Product/123" -> 123), enum values are lower-cased
("SINGLE_OPT_IN" -> "single_opt_in"), amounts are Decimals in the shop's currency, times are aware UTC
datetimes and emails are lower-cased. The documents themselves are in admin_queries, with all the others.

Shopify refuses a query whose requested cost is over 1,000 points. A connection costs 2 plus `first` times
what one of its nodes costs (1 for the node and 1 for every object inside it), so nested connections multiply:
fifty products with a hundred variants each would be refused. The nested page therefore holds as many
variants (line items) as the page size asked for leaves room for, up to 100, and a product (order) with more
is completed by queries of its own: every record returned is whole.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests

from shopify_app.shopify.admin_api import AdminApi, AdminApiError, TransientError, raise_for_user_errors
from shopify_app.shopify.admin_queries import (
    BULK_OPERATION,
    BULK_PRODUCTS,
    CUSTOMERS,
    ORDER_LINE_ITEMS,
    ORDERS,
    PRODUCT_VARIANTS,
    PRODUCTS,
    PRODUCTS_COUNT,
    RUN_BULK_QUERY,
    SHOP_PROFILE,
    Page,
    _instant_or_none,
    _iso,
    _next_cursor,
    _pages,
    _payload,
)

log = logging.getLogger(__name__)

MAX_QUERY_COST = 1000  # Shopify's limit on one query's requested cost
MAX_PAGE_SIZE = 250  # Shopify's limit on `first`
NESTED_PAGE_SIZE = 100  # variants in a products page, line items in an orders page, at most
VARIANTS_FOLLOW_UP_PAGE = 250  # 2 + 250 x (variant + image) = 502 points
LINE_ITEMS_FOLLOW_UP_PAGE = 100  # 2 + 100 x (line + variant + product + price set + shop money) = 502 points

# Requested cost per node, by the rule above; the page's own connection and pageInfo cost 3 more.
# A product: itself, featuredMedia, preview, image, the variants connection (2) and its pageInfo.
_PRODUCT_COST = 7
_VARIANT_COST = 2  # the variant and its image
# An order: itself, customer, totalPriceSet, shopMoney, the lineItems connection (2) and its pageInfo, and up
# to five fulfillments (a list, counted as if each cost one).
_ORDER_COST = 12
_LINE_ITEM_COST = 5  # the line, variant, product, originalUnitPriceSet, shopMoney
_CUSTOMER_COST = 4  # the customer, defaultAddress, defaultEmailAddress, defaultPhoneNumber

_GID = re.compile(r"gid://shopify/(?P<type>\w+)/(?P<number>\d+)(?:\?.*)?")


@dataclass(frozen=True)
class MarketingConsent:
    state: str | None  # "subscribed", "not_subscribed", "unsubscribed", "pending", ...
    opt_in_level: str | None  # "single_opt_in", "confirmed_opt_in", "unknown"
    updated_at: datetime | None
    collected_from: str | None = None  # SMS only: "shopify", "other"


@dataclass(frozen=True)
class VariantRecord:
    variant_id: int
    product_id: int
    title: str | None
    sku: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    inventory_quantity: int | None  # None when not tracked or not readable
    inventory_policy: str | None  # "deny" | "continue"
    image_url: str | None  # the variant's own image; the product's is ProductRecord.image_url
    updated_at: datetime | None


@dataclass(frozen=True)
class ProductRecord:
    product_id: int
    title: str | None
    handle: str | None
    status: str | None  # "active", "draft", "archived"
    image_url: str | None  # the featured image
    product_type: str | None
    vendor: str | None
    updated_at: datetime | None
    variants: tuple[VariantRecord, ...]


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: int
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    country_code: str | None  # of the default address, e.g. "CA"
    locale: str | None
    state: str | None  # "enabled", "disabled", "invited", "declined"
    created_at: datetime | None
    updated_at: datetime | None
    email_consent: MarketingConsent | None  # None when the customer has no email address
    sms_consent: MarketingConsent | None  # None when the customer has no phone number
    province_code: str | None = None  # of the default address, e.g. "FL"


@dataclass(frozen=True)
class OrderLineRecord:
    variant_id: int | None  # None when the variant has since been deleted (or was a custom item)
    product_id: int | None
    title: str | None
    quantity: int  # as ordered, refunded and removed units included
    price: Decimal | None  # unit price before discounts, shop currency


@dataclass(frozen=True)
class OrderRecord:
    order_id: int
    name: str | None
    customer_id: int | None
    email: str | None
    phone: str | None
    source_name: str | None  # "web", "pos", ...
    financial_status: str | None  # "paid", "pending", "partially_refunded", ...
    fulfillment_status: str | None  # "fulfilled", "partial", "unfulfilled", ...
    fulfilled_at: datetime | None  # the latest fulfilment of a fully fulfilled order
    accepts_marketing: bool | None  # the box ticked at checkout
    currency: str | None  # the shop's currency code
    total_price: Decimal | None  # in the shop's currency
    created_at: datetime | None
    processed_at: datetime | None
    updated_at: datetime | None
    cancelled_at: datetime | None
    line_items: tuple[OrderLineRecord, ...]


@dataclass(frozen=True)
class ShopProfile:
    name: str | None
    email: str | None  # the customer-facing contact email if there is one, else the owner's
    currency: str | None
    iana_timezone: str | None
    primary_domain: str | None  # host only, e.g. "lumen.example"
    money_format: str | None  # how the shop writes a price in emails, e.g. "${{amount}}"
    address1: str | None
    address2: str | None
    city: str | None
    province_code: str | None
    zip: str | None
    country_name: str | None


@dataclass(frozen=True)
class BulkOperation:
    id: str  # the gid, as bulk_operation() takes it
    status: str  # "created", "running", "completed", "failed", "canceled", "canceling", "expired"
    url: str | None  # the JSONL result, once completed (valid for 7 days)
    object_count: int  # products and variants so far
    error_code: str | None  # "access_denied", "internal_server_error", "timeout"


def shop_profile(api: AdminApi) -> ShopProfile:
    shop = api.execute(SHOP_PROFILE)["shop"]
    address = shop.get("billingAddress") or {}
    return ShopProfile(
        name=_text(shop.get("name")),
        email=_email(shop.get("contactEmail")) or _email(shop.get("email")),
        currency=_text(shop.get("currencyCode")),
        iana_timezone=_text(shop.get("ianaTimezone")),
        primary_domain=_text((shop.get("primaryDomain") or {}).get("host")),
        money_format=_text((shop.get("currencyFormats") or {}).get("moneyInEmailsFormat")),
        address1=_text(address.get("address1")),
        address2=_text(address.get("address2")),
        city=_text(address.get("city")),
        province_code=_text(address.get("provinceCode")),
        zip=_text(address.get("zip")),
        country_name=_text(address.get("country")),
    )


def products_page(
    api: AdminApi, *, after: str | None, updated_since: datetime | None, first: int = 50
) -> Page[ProductRecord]:
    """One page of products (all statuses) updated at or after `updated_since` (all when None), oldest first."""
    variables = {
        "first": first,
        "after": after,
        "query": _search(updated_at=updated_since),
        "variants": _nested_page_size(first, _PRODUCT_COST, _VARIANT_COST),
    }
    connection = api.execute(PRODUCTS, variables)["products"]
    items = tuple(_product(api, node) for node in connection["nodes"])
    return Page(items, _next_cursor(connection))


def products_count(api: AdminApi) -> int:
    """Every product in the shop, whatever its status (exact: Shopify's default cap of 10,000 is lifted)."""
    return int(api.execute(PRODUCTS_COUNT)["productsCount"]["count"])


def customers_page(
    api: AdminApi, *, after: str | None, updated_since: datetime | None, first: int = 100
) -> Page[CustomerRecord]:
    """One page of customers updated at or after `updated_since` (all when None), oldest first."""
    variables = {"first": _page_size(first, _CUSTOMER_COST), "after": after, "query": _search(updated_at=updated_since)}
    connection = api.execute(CUSTOMERS, variables)["customers"]
    return Page(tuple(_customer(node) for node in connection["nodes"]), _next_cursor(connection))


def orders_page(
    api: AdminApi,
    *,
    after: str | None,
    created_since: datetime | None,
    updated_since: datetime | None,
    first: int = 25,
) -> Page[OrderRecord]:
    """One page of orders created and updated at or after the given times (either may be None), oldest first.

    Without the read_all_orders scope Shopify only shows the last 60 days of orders, whatever the times.
    """
    variables = {
        "first": first,
        "after": after,
        "query": _search(created_at=created_since, updated_at=updated_since),
        "lineItems": _nested_page_size(first, _ORDER_COST, _LINE_ITEM_COST),
    }
    connection = api.execute(ORDERS, variables)["orders"]
    items = tuple(_order(api, node) for node in connection["nodes"])
    return Page(items, _next_cursor(connection))


def start_bulk_products(api: AdminApi) -> BulkOperation:
    """Have Shopify export every product with its variants; poll bulk_operation() until it is completed.

    Shopify runs one bulk query per app and shop at a time: starting another meanwhile raises UserErrorsError.
    """
    payload = _payload(api.execute(RUN_BULK_QUERY, {"query": BULK_PRODUCTS}), "bulkOperationRunQuery")
    raise_for_user_errors(payload)
    operation = payload.get("bulkOperation")
    if not operation:
        raise AdminApiError("bulkOperationRunQuery returned no operation and no userErrors")
    return _bulk_operation(operation)


def bulk_operation(api: AdminApi, operation_id: str) -> BulkOperation:
    node = api.execute(BULK_OPERATION, {"id": operation_id}).get("node")
    if not node or node.get("__typename") != "BulkOperation":
        raise AdminApiError(f"no bulk operation {operation_id}")
    return _bulk_operation(node)


def bulk_products(http: requests.Session, url: str) -> Iterator[ProductRecord]:
    """The products of a completed bulk export, with their variants, in the order the file lists them.

    The file is read as a stream, one JSON object a line; a variant's line names its product in `__parentId`.
    Products are yielded once the whole file is read, since Shopify does not promise that a product's variants
    follow it. The URL is signed, so it is never put into an exception.
    """
    products: dict[str, dict[str, Any]] = {}
    variants: dict[str, list[dict[str, Any]]] = {}
    for line in _jsonl(http, url):
        gid = line.get("id")
        parent = line.get("__parentId")
        if not isinstance(gid, str):
            continue
        if parent is None and _gid_type(gid) == "Product":
            products[gid] = line
        elif isinstance(parent, str) and _gid_type(gid) == "ProductVariant":
            variants.setdefault(parent, []).append(line)
    for orphan in variants.keys() - products.keys():
        log.warning("bulk export lists %d variants of %s, which it does not list", len(variants[orphan]), orphan)
    for gid, node in products.items():
        product_id = _id(gid)
        yield _product_record(node, tuple(_variant(item, product_id) for item in variants.get(gid, ())))


def _jsonl(http: requests.Session, url: str) -> Iterator[dict[str, Any]]:
    try:
        with http.get(url, stream=True) as response:
            if response.status_code != 200:
                error = TransientError if response.status_code >= 500 else AdminApiError
                raise error(f"the bulk export answered HTTP {response.status_code}", status=response.status_code)
            for number, raw in enumerate(response.iter_lines(), start=1):
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except ValueError:
                    raise AdminApiError(f"line {number} of the bulk export is not JSON") from None
                if isinstance(item, dict):
                    yield item
    except requests.RequestException as exc:
        raise TransientError(f"network error reading the bulk export: {type(exc).__name__}") from None


def _product(api: AdminApi, node: Mapping[str, Any]) -> ProductRecord:
    product_id = _id(node["id"])
    connection = node["variants"]
    nodes = list(connection["nodes"])
    cursor = _next_cursor(connection)
    if cursor is not None:
        variables = {"id": node["id"], "first": VARIANTS_FOLLOW_UP_PAGE}
        for more in _pages(api, PRODUCT_VARIANTS, variables, _variants_of, after=cursor):
            nodes.extend(more["nodes"])
    return _product_record(node, tuple(_variant(item, product_id) for item in nodes))


def _variants_of(data: dict[str, Any]) -> Mapping[str, Any] | None:
    product = data.get("product")
    return product["variants"] if product else None  # None: deleted since the page was read


def _product_record(node: Mapping[str, Any], variants: tuple[VariantRecord, ...]) -> ProductRecord:
    preview = ((node.get("featuredMedia") or {}).get("preview")) or {}
    return ProductRecord(
        product_id=_id(node["id"]),
        title=_text(node.get("title")),
        handle=_text(node.get("handle")),
        status=_lower(node.get("status")),
        image_url=_url(preview.get("image")),
        product_type=_text(node.get("productType")),
        vendor=_text(node.get("vendor")),
        updated_at=_instant_or_none(node.get("updatedAt")),
        variants=variants,
    )


def _variant(node: Mapping[str, Any], product_id: int) -> VariantRecord:
    quantity = node.get("inventoryQuantity")
    return VariantRecord(
        variant_id=_id(node["id"]),
        product_id=product_id,
        title=_text(node.get("title")),
        sku=_text(node.get("sku")),
        price=_amount(node.get("price")),
        compare_at_price=_amount(node.get("compareAtPrice")),
        inventory_quantity=int(quantity) if quantity is not None else None,
        inventory_policy=_lower(node.get("inventoryPolicy")),
        image_url=_url(node.get("image")),
        updated_at=_instant_or_none(node.get("updatedAt")),
    )


def _customer(node: Mapping[str, Any]) -> CustomerRecord:
    email = node.get("defaultEmailAddress")
    phone = node.get("defaultPhoneNumber")
    return CustomerRecord(
        customer_id=_id(node["id"]),
        email=_email(email.get("emailAddress")) if email else None,
        phone=_text(phone.get("phoneNumber")) if phone else None,
        first_name=_text(node.get("firstName")),
        last_name=_text(node.get("lastName")),
        country_code=_text((node.get("defaultAddress") or {}).get("countryCodeV2")),
        province_code=_text((node.get("defaultAddress") or {}).get("provinceCode")),
        locale=_text(node.get("locale")),
        state=_lower(node.get("state")),
        created_at=_instant_or_none(node.get("createdAt")),
        updated_at=_instant_or_none(node.get("updatedAt")),
        email_consent=_consent(email) if email else None,
        sms_consent=_consent(phone, collected_from=_lower(phone.get("marketingCollectedFrom"))) if phone else None,
    )


def _consent(channel: Mapping[str, Any], *, collected_from: str | None = None) -> MarketingConsent:
    return MarketingConsent(
        state=_lower(channel.get("marketingState")),
        opt_in_level=_lower(channel.get("marketingOptInLevel")),
        updated_at=_instant_or_none(channel.get("marketingUpdatedAt")),
        collected_from=collected_from,
    )


def _order(api: AdminApi, node: Mapping[str, Any]) -> OrderRecord:
    connection = node["lineItems"]
    lines = list(connection["nodes"])
    cursor = _next_cursor(connection)
    if cursor is not None:
        variables = {"id": node["id"], "first": LINE_ITEMS_FOLLOW_UP_PAGE}
        for more in _pages(api, ORDER_LINE_ITEMS, variables, _line_items_of, after=cursor):
            lines.extend(more["nodes"])
    money = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    fulfillment_status = _lower(node.get("displayFulfillmentStatus"))
    shipped = [_instant_or_none(f.get("createdAt")) for f in node.get("fulfillments") or []]
    shipped_at = max((moment for moment in shipped if moment is not None), default=None)
    return OrderRecord(
        order_id=_id(node["id"]),
        name=_text(node.get("name")),
        customer_id=_optional_id(node.get("customer")),
        email=_email(node.get("email")),
        phone=_text(node.get("phone")),
        source_name=_text(node.get("sourceName")),
        financial_status=_lower(node.get("displayFinancialStatus")),
        fulfillment_status=fulfillment_status,
        fulfilled_at=shipped_at if fulfillment_status == "fulfilled" else None,
        accepts_marketing=node.get("customerAcceptsMarketing"),
        currency=_text(money.get("currencyCode")),
        total_price=_amount(money.get("amount")),
        created_at=_instant_or_none(node.get("createdAt")),
        processed_at=_instant_or_none(node.get("processedAt")),
        updated_at=_instant_or_none(node.get("updatedAt")),
        cancelled_at=_instant_or_none(node.get("cancelledAt")),
        line_items=tuple(_line(line) for line in lines),
    )


def _line_items_of(data: dict[str, Any]) -> Mapping[str, Any] | None:
    order = data.get("order")
    return order["lineItems"] if order else None  # None: deleted since the page was read


def _line(node: Mapping[str, Any]) -> OrderLineRecord:
    price = ((node.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount")
    return OrderLineRecord(
        variant_id=_optional_id(node.get("variant")),
        product_id=_optional_id(node.get("product")),
        title=_text(node.get("title")),
        quantity=int(node["quantity"]),
        price=_amount(price),
    )


def _bulk_operation(node: Mapping[str, Any]) -> BulkOperation:
    return BulkOperation(
        id=node["id"],
        status=str(node["status"]).lower(),
        url=_text(node.get("url")),
        object_count=int(node.get("objectCount") or 0),  # UnsignedInt64 comes as a string: "42"
        error_code=_lower(node.get("errorCode")),
    )


def _page_size(first: int, node_cost: int) -> int:
    """`first`, if Shopify accepts that many nodes of this cost in one query; ValueError otherwise."""
    most = min(MAX_PAGE_SIZE, (MAX_QUERY_COST - 3) // node_cost)
    if not 1 <= first <= most:
        raise ValueError(f"first must be between 1 and {most} for Shopify's query cost limit, not {first}")
    return first


def _nested_page_size(first: int, parent_cost: int, child_cost: int) -> int:
    """The most children per parent that keep `first` parents under Shopify's cost limit, up to 100."""
    room = (MAX_QUERY_COST - 3) // _page_size(first, parent_cost + child_cost) - parent_cost
    return min(NESTED_PAGE_SIZE, room // child_cost)


def _search(**since: datetime | None) -> str | None:
    """Shopify search syntax: updated_at:>='2026-11-20T10:00:00Z' AND ..., or None for everything."""
    terms = [f"{field}:>='{_iso(moment)}'" for field, moment in since.items() if moment is not None]
    return " AND ".join(terms) or None


def _id(gid: str) -> int:
    """ "gid://shopify/Product/123" -> 123."""
    match = _GID.fullmatch(gid)
    if match is None:
        raise AdminApiError(f"unexpected id {gid!r}")
    return int(match["number"])


def _optional_id(node: Mapping[str, Any] | None) -> int | None:
    return _id(node["id"]) if node else None


def _gid_type(gid: str) -> str | None:
    match = _GID.fullmatch(gid)
    return match["type"] if match else None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _lower(value: Any) -> str | None:
    return str(value).lower() if value not in (None, "") else None


def _email(value: Any) -> str | None:
    text = str(value).strip().lower() if value else ""
    return text or None


def _amount(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def _url(image: Mapping[str, Any] | None) -> str | None:
    return _text(image.get("url")) if image else None
