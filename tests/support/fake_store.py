"""A fake Shopify store behind the Admin API: pages of products, customers and orders, as documented.

It answers the sync's documents (filtering by the `updated_at:>=` / `created_at:>=` search, paging by
`first`/`after`), can throttle chosen requests, records every request, and serves either through
`responses` (in-process) or as a WSGI app on loopback (for `chorus` subprocesses).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import responses
from werkzeug.serving import make_server

from shopify_app.clock import parse_instant
from tests.support.net import free_port

COST = {"requestedQueryCost": 52, "actualQueryCost": 40, "throttleStatus": {
    "maximumAvailable": 2000.0, "currentlyAvailable": 1948, "restoreRate": 100.0}}  # fmt: skip


def product_node(
    product_id: int,
    *,
    title: str,
    updated_at: str,
    price: str = "10.00",
    stock: int = 5,
    product_type: str = "",  # Shopify answers "" for a product without one
    vendor: str = "Lumen Lamps",
) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Product/{product_id}",
        "title": title,
        "handle": title.lower().replace(" ", "-"),
        "status": "ACTIVE",
        "productType": product_type,
        "vendor": vendor,
        "updatedAt": updated_at,
        "featuredMedia": {"preview": {"image": {"url": f"https://cdn.example/{product_id}.png"}}},
        "variants": {
            "nodes": [
                {
                    "id": f"gid://shopify/ProductVariant/{product_id * 10}",
                    "title": "Default Title",
                    "sku": f"SKU-{product_id}",
                    "price": price,
                    "compareAtPrice": None,
                    "inventoryQuantity": stock,
                    "inventoryPolicy": "DENY",
                    "updatedAt": updated_at,
                    "image": None,
                }
            ],
            "pageInfo": {"hasNextPage": False, "endCursor": None},
        },
    }


def customer_node(customer_id: int, *, updated_at: str, state: str = "SUBSCRIBED") -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Customer/{customer_id}",
        "firstName": f"Customer{customer_id}",
        "lastName": "Example",
        "locale": "en",
        "state": "ENABLED",
        "createdAt": updated_at,
        "updatedAt": updated_at,
        "defaultAddress": {"countryCodeV2": "US"},
        "defaultEmailAddress": {
            "emailAddress": f"customer{customer_id}@example.com",
            "marketingState": state,
            "marketingOptInLevel": "SINGLE_OPT_IN",
            "marketingUpdatedAt": updated_at,
        },
        "defaultPhoneNumber": None,
    }


def order_node(
    order_id: int,
    *,
    updated_at: str,
    status: str = "PAID",
    customer_id: int | None = None,
    created_at: str | None = None,  # default: when it was last updated
    cancelled_at: str | None = None,
    fulfillment_status: str = "UNFULFILLED",
    fulfilled: Iterable[str] = (),  # the createdAt of each fulfilment
    accepts_marketing: bool = False,
) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id}",
        "email": f"customer{customer_id}@example.com" if customer_id else None,
        "phone": None,
        "sourceName": "web",
        "displayFinancialStatus": status,
        "displayFulfillmentStatus": fulfillment_status,
        "customerAcceptsMarketing": accepts_marketing,
        "createdAt": created_at or updated_at,
        "processedAt": created_at or updated_at,
        "updatedAt": updated_at,
        "cancelledAt": cancelled_at,
        "customer": {"id": f"gid://shopify/Customer/{customer_id}"} if customer_id else None,
        "fulfillments": [{"createdAt": moment} for moment in fulfilled],
        "totalPriceSet": {"shopMoney": {"amount": "25.00", "currencyCode": "USD"}},
        "lineItems": {
            "nodes": [
                {
                    "title": "Lamp",
                    "quantity": 1,
                    "variant": {"id": "gid://shopify/ProductVariant/10"},
                    "product": {"id": "gid://shopify/Product/1"},
                    "originalUnitPriceSet": {"shopMoney": {"amount": "25.00"}},
                }
            ],
            "pageInfo": {"hasNextPage": False, "endCursor": None},
        },
    }


SHOP = {
    "name": "Lumen Lamps",
    "email": "owner@lumen.example",
    "contactEmail": "hello@lumen.example",
    "currencyCode": "USD",
    "ianaTimezone": "America/New_York",
    "primaryDomain": {"host": "lumen.example"},
    "billingAddress": {
        "address1": "12 Harbor Street", "address2": None, "city": "Portland", "provinceCode": "ME", "zip": "04101",
        "country": "United States",
    },
}  # fmt: skip


@dataclass
class FakeStore:
    products: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    throttle_requests: set[int] = field(default_factory=set)  # 1-based request numbers answered THROTTLED
    delay: float = 0.0  # seconds before each answer (to catch a process mid-sync)
    bulk: dict[str, Any] = field(default_factory=dict)  # {"status": ..., "url": ...} once started
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def operations(self, name: str) -> list[dict[str, Any]]:
        return [variables for operation, variables in self.requests if operation == name]

    def answer(self, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
        query, variables = body["query"], body.get("variables") or {}
        operation = re.search(r"(?:query|mutation)\s+(\w+)", query)
        name = operation.group(1) if operation else "?"
        with self._lock:
            self.requests.append((name, variables))
            self.tokens.append(token)
            number = len(self.requests)
        if self.delay:
            time.sleep(self.delay)
        if number in self.throttle_requests:
            return 200, {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": {"requestedQueryCost": 502, "actualQueryCost": None, "throttleStatus": {
                    "maximumAvailable": 2000.0, "currentlyAvailable": 302, "restoreRate": 100.0}}},
            }  # fmt: skip
        return 200, {"data": self._data(name, variables), "extensions": {"cost": COST}}

    def _data(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        if name == "ShopProfile":
            return {"shop": SHOP}
        if name == "ProductsCount":
            return {"productsCount": {"count": len(self.products)}}
        if name == "RunBulkQuery":
            self.bulk = {"id": "gid://shopify/BulkOperation/1", "status": "RUNNING", "url": None}
            return {
                "bulkOperationRunQuery": {
                    "bulkOperation": {"id": self.bulk["id"], "status": "CREATED"},
                    "userErrors": [],
                }
            }
        if name == "BulkOperation":
            operation = {"__typename": "BulkOperation", "objectCount": str(len(self.products) * 2), "errorCode": None}
            return {
                "node": {**operation, "id": self.bulk["id"], "status": self.bulk["status"], "url": self.bulk["url"]}
            }
        nodes = {"Products": self.products, "Customers": self.customers, "Orders": self.orders}[name]
        key = name.lower()
        return {key: _page(nodes, variables)}

    def bulk_jsonl(self) -> str:
        lines = []
        for product in self.products:
            lines.append(json.dumps({k: v for k, v in product.items() if k != "variants"}))
            for variant in product["variants"]["nodes"]:
                lines.append(json.dumps({**variant, "__parentId": product["id"]}))
        return "\n".join(lines) + "\n"

    def install(self, mock: responses.RequestsMock, endpoint: str) -> None:
        def callback(request: Any) -> tuple[int, dict[str, str], str]:
            status, payload = self.answer(json.loads(request.body), request.headers.get("X-Shopify-Access-Token", ""))
            return status, {"Content-Type": "application/json"}, json.dumps(payload)

        mock.add_callback(responses.POST, endpoint, callback=callback)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        status, payload = self.answer(body, environ.get("HTTP_X_SHOPIFY_ACCESS_TOKEN", ""))
        start_response(f"{status} OK", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]


def _page(nodes: list[dict[str, Any]], variables: dict[str, Any]) -> dict[str, Any]:
    selected = [n for n in nodes if _matches(n, variables.get("query"))]
    start = int(variables["after"].removeprefix("cursor-")) if variables.get("after") else 0
    chunk = selected[start : start + int(variables["first"])]
    end = start + len(chunk)
    more = end < len(selected)
    return {"nodes": chunk, "pageInfo": {"hasNextPage": more, "endCursor": f"cursor-{end}" if more else None}}


def _matches(node: dict[str, Any], search: str | None) -> bool:
    """Shopify search syntax, the part the sync uses: field:>='ISO time' AND ..."""
    for field_name, moment in re.findall(r"(\w+):>='([^']+)'", search or ""):
        value = node.get({"updated_at": "updatedAt", "created_at": "createdAt"}[field_name])
        if value is None or parse_instant(value) < parse_instant(moment):
            return False
    return True


@dataclass
class LoopbackShopify:
    base_url: str
    store: FakeStore


def serve(store: FakeStore) -> Iterator[LoopbackShopify]:
    """The fake on 127.0.0.1, for processes the tests start (SHOPIFY_ADMIN_BASE_URL points here)."""
    port = free_port()
    server = make_server("127.0.0.1", port, store.wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LoopbackShopify(f"http://127.0.0.1:{port}", store)
    finally:
        server.shutdown()
        thread.join(timeout=5)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
