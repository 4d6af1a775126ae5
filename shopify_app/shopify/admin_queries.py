"""Every GraphQL document Chorus sends to the Admin API, and typed helpers that run them.

The documents are validated against Shopify's schema in tests (tests/shopify/test_admin_queries_schema.py),
deprecated fields included, so a field Shopify is about to remove fails the build rather than a merchant's
shop. Consent is read from `defaultEmailAddress` / `defaultPhoneNumber` (2025-04) and webhooks are addressed
by `uri` (2025-10), which replace the deprecated `email`, `emailMarketingConsent` and `callbackUrl`.

The store sync's documents are here too, so that every document is listed and validated in one place; their
typed helpers, which normalise Shopify's answers to the conventions of its REST webhooks, are in sync_queries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from shopify_app.shopify.admin_api import AdminApi, AdminApiError, GraphQLError, raise_for_user_errors

T = TypeVar("T")

# Page sizes keep each query well under Shopify's 1,000-point single-query limit.
ORDERS_PAGE = 50
CHECKOUTS_PAGE = 10  # 10 x (checkout + customer + 40 lines with their variant) stays under 1,000 points
LINE_ITEMS_PER_CHECKOUT = 40  # a checkout with more distinct lines is reported with its first 40
WEBHOOKS_PAGE = 100
NODES_PER_QUERY = 250  # Shopify's limit for `nodes(ids:)`
ACCESS_DENIED = "ACCESS_DENIED"  # the error code of a field the granted scopes do not cover

CUSTOMER_CONSENT = """
query CustomerConsent($id: ID!) {
  customer(id: $id) {
    id
    defaultEmailAddress {
      emailAddress
      marketingState
      marketingOptInLevel
      marketingUpdatedAt
    }
    defaultPhoneNumber {
      phoneNumber
      marketingState
      marketingOptInLevel
      marketingUpdatedAt
      marketingCollectedFrom
    }
  }
}
"""

VARIANTS = """
query Variants($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename
    ... on ProductVariant {
      id
      title
      price
      inventoryQuantity
      availableForSale
      product {
        id
        title
        handle
      }
      image {
        url
      }
    }
  }
}
"""

CUSTOMER_ORDERS = """
query CustomerOrders($id: ID!, $first: Int!, $after: String, $query: String!) {
  customer(id: $id) {
    orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
      nodes {
        id
        name
        createdAt
        sourceName
        totalPriceSet {
          shopMoney {
            amount
            currencyCode
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
"""

ABANDONED_CHECKOUTS = """
query AbandonedCheckouts($first: Int!, $after: String, $query: String!, $lineItems: Int!) {
  abandonedCheckouts(first: $first, after: $after, query: $query) {
    nodes {
      id
      abandonedCheckoutUrl
      createdAt
      updatedAt
      completedAt
      customer {
        id
      }
      lineItems(first: $lineItems) {
        nodes {
          quantity
          variant {
            id
          }
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

UPDATE_EMAIL_CONSENT = """
mutation UpdateEmailConsent($input: CustomerEmailMarketingConsentUpdateInput!) {
  customerEmailMarketingConsentUpdate(input: $input) {
    customer {
      id
    }
    userErrors {
      field
      message
    }
  }
}
"""

UPDATE_SMS_CONSENT = """
mutation UpdateSmsConsent($input: CustomerSmsMarketingConsentUpdateInput!) {
  customerSmsMarketingConsentUpdate(input: $input) {
    customer {
      id
    }
    userErrors {
      field
      message
    }
  }
}
"""

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes {
      id
      topic
      uri
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

CREATE_WEBHOOK_SUBSCRIPTION = """
mutation CreateWebhookSubscription($topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription {
      id
      topic
      uri
    }
    userErrors {
      field
      message
    }
  }
}
"""

DELETE_WEBHOOK_SUBSCRIPTION = """
mutation DeleteWebhookSubscription($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors {
      field
      message
    }
  }
}
"""

GRANTED_SCOPES = """
query GrantedScopes {
  currentAppInstallation {
    accessScopes {
      handle
    }
  }
}
"""

# The app's web pixel on the shop: without an ID, `webPixel` is the calling app's own (an error when it has none).
WEB_PIXEL = """
query WebPixel {
  webPixel {
    id
    settings
  }
}
"""

CREATE_WEB_PIXEL = """
mutation CreateWebPixel($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) {
    webPixel {
      id
      settings
    }
    userErrors {
      field
      message
      code
    }
  }
}
"""

UPDATE_WEB_PIXEL = """
mutation UpdateWebPixel($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) {
    webPixel {
      id
      settings
    }
    userErrors {
      field
      message
      code
    }
  }
}
"""

# The store sync (helpers in sync_queries). Products, customers and orders come oldest change first, so
# that a record updated while the pages are read moves behind the cursor instead of being skipped.

SHOP_PROFILE = """
query ShopProfile {
  shop {
    name
    email
    contactEmail
    currencyCode
    ianaTimezone
    primaryDomain {
      host
    }
    currencyFormats {
      moneyInEmailsFormat
    }
    billingAddress {
      address1
      address2
      city
      provinceCode
      zip
      country
    }
  }
}
"""

# What the mirror keeps of a variant, wherever variants are read.
VARIANT_FIELDS = """
fragment VariantFields on ProductVariant {
  id
  title
  sku
  price
  compareAtPrice
  inventoryQuantity
  inventoryPolicy
  updatedAt
  image {
    url
  }
}
"""

PRODUCTS = (
    """
query Products($first: Int!, $after: String, $query: String, $variants: Int!) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      title
      handle
      status
      productType
      vendor
      updatedAt
      featuredMedia {
        preview {
          image {
            url
          }
        }
      }
      variants(first: $variants) {
        nodes {
          ...VariantFields
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""
    + VARIANT_FIELDS
)

PRODUCT_VARIANTS = (
    """
query ProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    variants(first: $first, after: $after) {
      nodes {
        ...VariantFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
"""
    + VARIANT_FIELDS
)

PRODUCTS_COUNT = """
query ProductsCount {
  productsCount(limit: null) {
    count
  }
}
"""

CUSTOMERS = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      firstName
      lastName
      locale
      state
      createdAt
      updatedAt
      defaultAddress {
        countryCodeV2
        provinceCode
      }
      defaultEmailAddress {
        emailAddress
        marketingState
        marketingOptInLevel
        marketingUpdatedAt
      }
      defaultPhoneNumber {
        phoneNumber
        marketingState
        marketingOptInLevel
        marketingUpdatedAt
        marketingCollectedFrom
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

# What the mirror keeps of an order's line, wherever lines are read.
LINE_ITEM_FIELDS = """
fragment LineItemFields on LineItem {
  title
  quantity
  variant {
    id
  }
  product {
    id
  }
  originalUnitPriceSet {
    shopMoney {
      amount
    }
  }
}
"""

ORDERS = (
    """
query Orders($first: Int!, $after: String, $query: String, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      name
      email
      phone
      sourceName
      displayFinancialStatus
      displayFulfillmentStatus
      customerAcceptsMarketing
      createdAt
      processedAt
      updatedAt
      cancelledAt
      customer {
        id
      }
      fulfillments(first: 5) {
        createdAt
      }
      totalPriceSet {
        shopMoney {
          amount
          currencyCode
        }
      }
      lineItems(first: $lineItems) {
        nodes {
          ...LineItemFields
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""
    + LINE_ITEM_FIELDS
)

ORDER_LINE_ITEMS = (
    """
query OrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      nodes {
        ...LineItemFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
"""
    + LINE_ITEM_FIELDS
)

# Run by Shopify itself through bulkOperationRunQuery, never sent directly: no variables, no `first`, and the
# edges/node form bulk operations require. Variants come out as lines of their own carrying `__parentId`.
BULK_PRODUCTS = """
query BulkProducts {
  products {
    edges {
      node {
        id
        title
        handle
        status
        productType
        vendor
        updatedAt
        featuredMedia {
          preview {
            image {
              url
            }
          }
        }
        variants {
          edges {
            node {
              id
              title
              sku
              price
              compareAtPrice
              inventoryQuantity
              inventoryPolicy
              updatedAt
              image {
                url
              }
            }
          }
        }
      }
    }
  }
}
"""

RUN_BULK_QUERY = """
mutation RunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation {
      id
      status
      url
      objectCount
      errorCode
    }
    userErrors {
      field
      message
    }
  }
}
"""

BULK_OPERATION = """
query BulkOperation($id: ID!) {
  node(id: $id) {
    __typename
    ... on BulkOperation {
      id
      status
      url
      objectCount
      errorCode
    }
  }
}
"""

ALL_DOCUMENTS: Mapping[str, str] = MappingProxyType(
    {
        "CustomerConsent": CUSTOMER_CONSENT,
        "Variants": VARIANTS,
        "CustomerOrders": CUSTOMER_ORDERS,
        "AbandonedCheckouts": ABANDONED_CHECKOUTS,
        "UpdateEmailConsent": UPDATE_EMAIL_CONSENT,
        "UpdateSmsConsent": UPDATE_SMS_CONSENT,
        "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
        "CreateWebhookSubscription": CREATE_WEBHOOK_SUBSCRIPTION,
        "DeleteWebhookSubscription": DELETE_WEBHOOK_SUBSCRIPTION,
        "GrantedScopes": GRANTED_SCOPES,
        "WebPixel": WEB_PIXEL,
        "CreateWebPixel": CREATE_WEB_PIXEL,
        "UpdateWebPixel": UPDATE_WEB_PIXEL,
        "ShopProfile": SHOP_PROFILE,
        "Products": PRODUCTS,
        "ProductVariants": PRODUCT_VARIANTS,
        "ProductsCount": PRODUCTS_COUNT,
        "Customers": CUSTOMERS,
        "Orders": ORDERS,
        "OrderLineItems": ORDER_LINE_ITEMS,
        "BulkProducts": BULK_PRODUCTS,
        "RunBulkQuery": RUN_BULK_QUERY,
        "BulkOperation": BULK_OPERATION,
    }
)


@dataclass(frozen=True)
class CustomerConsent:
    """Marketing consent as Shopify holds it; states are Shopify's enum values (e.g. "SUBSCRIBED")."""

    customer_id: str
    email: str | None
    email_marketing_state: str | None
    email_opt_in_level: str | None
    email_consent_updated_at: datetime | None
    phone: str | None
    sms_marketing_state: str | None
    sms_opt_in_level: str | None
    sms_consent_updated_at: datetime | None
    sms_consent_collected_from: str | None


@dataclass(frozen=True)
class VariantState:
    id: str
    title: str
    price: Decimal  # in the shop's currency
    inventory_quantity: int | None  # None when the variant's inventory is not tracked or not readable
    available_for_sale: bool
    product_id: str
    product_title: str
    product_handle: str
    image_url: str | None


@dataclass(frozen=True)
class OrderSummary:
    id: str
    name: str
    created_at: datetime
    source_name: str | None
    total: Decimal  # in the shop's currency
    currency: str


@dataclass(frozen=True)
class CheckoutLine:
    variant_id: str | None  # None when the variant has since been deleted
    quantity: int


@dataclass(frozen=True)
class AbandonedCheckoutSummary:
    id: str
    recovery_url: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    customer_id: str | None
    lines: tuple[CheckoutLine, ...]


@dataclass(frozen=True)
class WebhookSubscriptionInfo:
    id: str
    topic: str  # Shopify's enum, e.g. "ORDERS_CREATE"; topic_name() gives "orders/create"
    uri: str


@dataclass(frozen=True)
class WebPixelInfo:
    id: str
    settings: Mapping[str, Any]  # as the pixel extension receives them, e.g. {"shopKey": ..., "appUrl": ...}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # pass as `after` for the next page; None when this was the last

    @property
    def has_next_page(self) -> bool:
        return self.next_cursor is not None


def customer_consent(api: AdminApi, customer_gid: str) -> CustomerConsent | None:
    """The customer's consent, or None when Shopify knows no such customer (e.g. deleted)."""
    customer = api.execute(CUSTOMER_CONSENT, {"id": customer_gid}).get("customer")
    if customer is None:
        return None
    email = customer.get("defaultEmailAddress") or {}
    phone = customer.get("defaultPhoneNumber") or {}
    return CustomerConsent(
        customer_id=customer["id"],
        email=email.get("emailAddress"),
        email_marketing_state=email.get("marketingState"),
        email_opt_in_level=email.get("marketingOptInLevel"),
        email_consent_updated_at=_instant_or_none(email.get("marketingUpdatedAt")),
        phone=phone.get("phoneNumber"),
        sms_marketing_state=phone.get("marketingState"),
        sms_opt_in_level=phone.get("marketingOptInLevel"),
        sms_consent_updated_at=_instant_or_none(phone.get("marketingUpdatedAt")),
        sms_consent_collected_from=phone.get("marketingCollectedFrom"),
    )


def variants(api: AdminApi, variant_gids: Sequence[str]) -> list[VariantState]:
    """The variants that still exist, in the order asked; deleted ones (and IDs of other types) are left out."""
    found: list[VariantState] = []
    for start in range(0, len(variant_gids), NODES_PER_QUERY):
        chunk = list(variant_gids[start : start + NODES_PER_QUERY])
        for node in api.execute(VARIANTS, {"ids": chunk})["nodes"]:
            if node is None or node.get("__typename") != "ProductVariant":
                continue
            product = node["product"]
            image = node.get("image")
            found.append(
                VariantState(
                    id=node["id"],
                    title=node["title"],
                    price=Decimal(node["price"]),
                    inventory_quantity=node.get("inventoryQuantity"),
                    available_for_sale=bool(node["availableForSale"]),
                    product_id=product["id"],
                    product_title=product["title"],
                    product_handle=product["handle"],
                    image_url=image["url"] if image else None,
                )
            )
    return found


def customer_orders(api: AdminApi, customer_gid: str, *, since: datetime) -> list[OrderSummary]:
    """The customer's orders created at or after `since`, oldest first, every page followed."""
    variables: dict[str, Any] = {"id": customer_gid, "first": ORDERS_PAGE, "query": f"created_at:>='{_iso(since)}'"}
    orders: list[OrderSummary] = []
    for connection in _pages(api, CUSTOMER_ORDERS, variables, lambda data: (data.get("customer") or {}).get("orders")):
        for node in connection["nodes"]:
            money = node["totalPriceSet"]["shopMoney"]
            orders.append(
                OrderSummary(
                    id=node["id"],
                    name=node["name"],
                    created_at=_instant(node["createdAt"]),
                    source_name=node.get("sourceName"),
                    total=Decimal(money["amount"]),
                    currency=money["currencyCode"],
                )
            )
    return orders


def abandoned_checkouts(api: AdminApi, *, updated_since: datetime, after: str | None) -> Page[AbandonedCheckoutSummary]:
    """One page of checkouts updated at or after `updated_since`; recovered ones carry `completed_at`."""
    variables = {
        "first": CHECKOUTS_PAGE,
        "after": after,
        "query": f"updated_at:>='{_iso(updated_since)}'",
        "lineItems": LINE_ITEMS_PER_CHECKOUT,
    }
    connection = api.execute(ABANDONED_CHECKOUTS, variables)["abandonedCheckouts"]
    items = tuple(
        AbandonedCheckoutSummary(
            id=node["id"],
            recovery_url=node["abandonedCheckoutUrl"],
            created_at=_instant(node["createdAt"]),
            updated_at=_instant(node["updatedAt"]),
            completed_at=_instant_or_none(node.get("completedAt")),
            customer_id=(node.get("customer") or {}).get("id"),
            lines=tuple(
                CheckoutLine(variant_id=(line.get("variant") or {}).get("id"), quantity=int(line["quantity"]))
                for line in node["lineItems"]["nodes"]
            ),
        )
        for node in connection["nodes"]
    )
    return Page(items, _next_cursor(connection))


def update_email_consent(
    api: AdminApi, customer_gid: str, *, state: str, opt_in_level: str | None, changed_at: datetime
) -> None:
    """Record the customer's email consent (e.g. "UNSUBSCRIBED" after a click on an unsubscribe link)."""
    consent = _consent_input(state, opt_in_level, changed_at)
    data = api.execute(UPDATE_EMAIL_CONSENT, {"input": {"customerId": customer_gid, "emailMarketingConsent": consent}})
    raise_for_user_errors(_payload(data, "customerEmailMarketingConsentUpdate"))


def update_sms_consent(
    api: AdminApi, customer_gid: str, *, state: str, opt_in_level: str | None, changed_at: datetime
) -> None:
    """Record the customer's SMS consent (e.g. "UNSUBSCRIBED" after a STOP reply)."""
    consent = _consent_input(state, opt_in_level, changed_at)
    data = api.execute(UPDATE_SMS_CONSENT, {"input": {"customerId": customer_gid, "smsMarketingConsent": consent}})
    raise_for_user_errors(_payload(data, "customerSmsMarketingConsentUpdate"))


def webhook_subscriptions(api: AdminApi) -> list[WebhookSubscriptionInfo]:
    """Every subscription this app holds on the shop (Shopify shows an app only its own)."""
    variables: dict[str, Any] = {"first": WEBHOOKS_PAGE}
    return [
        _subscription(node)
        for connection in _pages(api, WEBHOOK_SUBSCRIPTIONS, variables, lambda data: data["webhookSubscriptions"])
        for node in connection["nodes"]
    ]


def create_webhook_subscription(api: AdminApi, topic: str, uri: str) -> WebhookSubscriptionInfo:
    """Subscribe `uri` to `topic` ("orders/create" or "ORDERS_CREATE")."""
    variables = {"topic": topic_enum(topic), "subscription": {"uri": uri}}
    payload = _payload(api.execute(CREATE_WEBHOOK_SUBSCRIPTION, variables), "webhookSubscriptionCreate")
    raise_for_user_errors(payload)
    subscription = payload.get("webhookSubscription")
    if not subscription:
        raise AdminApiError("webhookSubscriptionCreate returned no subscription and no userErrors")
    return _subscription(subscription)


def delete_webhook_subscription(api: AdminApi, subscription_id: str) -> None:
    payload = _payload(api.execute(DELETE_WEBHOOK_SUBSCRIPTION, {"id": subscription_id}), "webhookSubscriptionDelete")
    raise_for_user_errors(payload)


def granted_scopes(api: AdminApi) -> list[str]:
    """The access scopes the merchant granted this installation, e.g. ["read_customers", "read_orders"]."""
    installation = api.execute(GRANTED_SCOPES)["currentAppInstallation"]
    return [scope["handle"] for scope in installation["accessScopes"]]


def current_web_pixel(api: AdminApi) -> WebPixelInfo | None:
    """This app's web pixel on the shop, or None when it has not been created. Without the pixel scopes Shopify
    answers ACCESS_DENIED: the GraphQLError is raised, not taken for "no pixel"."""
    try:
        data = api.execute(WEB_PIXEL)
    except GraphQLError as exc:
        if _no_web_pixel(exc):
            return None
        raise
    node = data.get("webPixel")
    return _web_pixel(node) if node else None


def activate_web_pixel(api: AdminApi, settings: Mapping[str, str]) -> WebPixelInfo:
    """Make the app's web pixel run on the shop with these settings: created when there is none, updated when
    its settings differ, left alone when they are the same. Running it again changes nothing."""
    existing = current_web_pixel(api)
    if existing is None:
        payload = _payload(api.execute(CREATE_WEB_PIXEL, {"webPixel": web_pixel_input(settings)}), "webPixelCreate")
        if not _has_user_error(payload, "TAKEN"):
            return _web_pixel_of(payload, "webPixelCreate")
        existing = current_web_pixel(api)  # created meanwhile (another worker, a retried request)
        if existing is None:
            raise_for_user_errors(payload)
            raise AdminApiError("webPixelCreate said TAKEN, yet there is no web pixel")
    if existing.settings == dict(settings):
        return existing
    variables = {"id": existing.id, "webPixel": web_pixel_input(settings)}
    return _web_pixel_of(_payload(api.execute(UPDATE_WEB_PIXEL, variables), "webPixelUpdate"), "webPixelUpdate")


def web_pixel_input(settings: Mapping[str, str]) -> dict[str, str]:
    """WebPixelInput: Shopify takes the settings (a JSON scalar) as one JSON-encoded string."""
    return {"settings": web_pixel_settings_text(settings)}


def web_pixel_settings_text(settings: Mapping[str, Any]) -> str:
    """The settings as sent to Shopify; the same settings always give the same text."""
    return json.dumps(dict(settings), sort_keys=True, separators=(",", ":"))


# Topic resources made of several words: in the enum nothing separates them from the action
# ("FULFILLMENT_ORDERS_CANCELLATION_REQUEST_ACCEPTED"), so topic_name() needs to know them.
# Complete for the 2025-01 schema (a test checks every enum value against Shopify's description).
_MULTI_WORD_RESOURCES = frozenset(
    {
        "app_purchases_one_time",
        "app_subscriptions",
        "attributed_sessions",
        "audit_events",
        "bulk_operations",
        "collection_listings",
        "collection_publications",
        "company_contact_roles",
        "company_contacts",
        "company_locations",
        "customer_account_settings",
        "customer_groups",
        "customer_payment_methods",
        "customers_email_marketing_consent",
        "customers_marketing_consent",
        "delivery_promise_settings",
        "draft_orders",
        "fulfillment_events",
        "fulfillment_holds",
        "fulfillment_orders",
        "inventory_items",
        "inventory_levels",
        "metafield_definitions",
        "order_transactions",
        "payment_schedules",
        "payment_terms",
        "product_feeds",
        "product_listings",
        "product_publications",
        "reverse_deliveries",
        "reverse_fulfillment_orders",
        "scheduled_product_listings",
        "selling_plan_groups",
        "shipping_addresses",
        "subscription_billing_attempts",
        "subscription_billing_cycle_edits",
        "subscription_billing_cycles",
        "subscription_contracts",
        "tax_partners",
        "tax_services",
        "tender_transactions",
    }
)
# Newer event-style topics are written with a dot.
_DOTTED_TOPICS = frozenset(
    {"customer.tags_added", "customer.tags_removed", "customer.joined_segment", "customer.left_segment"}
)


def topic_enum(topic: str) -> str:
    """ "orders/create" -> "ORDERS_CREATE" (an enum value is returned unchanged)."""
    return topic.replace("/", "_").replace(".", "_").upper()


def topic_name(enum_value: str) -> str:
    """ "ORDERS_CREATE" -> "orders/create", the name webhooks carry in X-Shopify-Topic."""
    lowered = enum_value.lower()
    for dotted in _DOTTED_TOPICS:
        if topic_enum(dotted).lower() == lowered:
            return dotted
    candidates = [r for r in _MULTI_WORD_RESOURCES if lowered.startswith(r + "_")]
    resource = max(candidates, key=len) if candidates else lowered.split("_", 1)[0]
    action = lowered[len(resource) + 1 :]
    if not action:
        raise ValueError(f"not a webhook topic: {enum_value!r}")
    return f"{resource}/{action}"


def _subscription(node: Mapping[str, Any]) -> WebhookSubscriptionInfo:
    return WebhookSubscriptionInfo(id=node["id"], topic=node["topic"], uri=node["uri"])


def _web_pixel(node: Mapping[str, Any]) -> WebPixelInfo:
    raw = node.get("settings")
    if isinstance(raw, str):  # Shopify answers the JSON scalar as an encoded string
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    return WebPixelInfo(id=node["id"], settings=dict(raw) if isinstance(raw, dict) else {})


def _web_pixel_of(payload: Mapping[str, Any], mutation: str) -> WebPixelInfo:
    raise_for_user_errors(payload)
    node = payload.get("webPixel")
    if not node:
        raise AdminApiError(f"{mutation} returned no web pixel and no userErrors")
    return _web_pixel(node)


def _has_user_error(payload: Mapping[str, Any], code: str) -> bool:
    return any(error.get("code") == code for error in payload.get("userErrors") or [])


def _no_web_pixel(error: GraphQLError) -> bool:
    """Shopify's answer to `webPixel` for an app that has none: an error next to `"webPixel": null`."""
    if ACCESS_DENIED in error.codes:
        return False
    if error.data is not None and "webPixel" in error.data:
        return error.data["webPixel"] is None
    return any("not found" in message.lower() for message in error.messages)


def _consent_input(state: str, opt_in_level: str | None, changed_at: datetime) -> dict[str, Any]:
    consent: dict[str, Any] = {"marketingState": state, "consentUpdatedAt": _iso(changed_at)}
    if opt_in_level is not None:
        consent["marketingOptInLevel"] = opt_in_level
    return consent


def _payload(data: Mapping[str, Any], mutation: str) -> Mapping[str, Any]:
    payload = data.get(mutation)
    if not isinstance(payload, dict):
        raise AdminApiError(f"{mutation} returned no payload")
    return payload


def _pages(
    api: AdminApi,
    document: str,
    variables: Mapping[str, Any],
    connection_of: Callable[[dict[str, Any]], Mapping[str, Any] | None],
    *,
    after: str | None = None,
) -> Iterator[Mapping[str, Any]]:
    """Each page's connection object from `after` on, following `pageInfo.endCursor` while `hasNextPage`."""
    while True:
        connection = connection_of(api.execute(document, {**variables, "after": after}))
        if connection is None:
            return
        yield connection
        cursor = _next_cursor(connection)
        if cursor is None or cursor == after:
            return
        after = cursor


def _next_cursor(connection: Mapping[str, Any]) -> str | None:
    info = connection["pageInfo"]
    cursor = info.get("endCursor")
    return cursor if info.get("hasNextPage") and cursor else None


def _iso(moment: datetime) -> str:
    """UTC, to the second, as Shopify writes DateTime: 2026-11-20T10:00:05Z."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; pass one with a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _instant_or_none(text: str | None) -> datetime | None:
    return _instant(text) if text else None
