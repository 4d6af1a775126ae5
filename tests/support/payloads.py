"""Payloads derived from Shopify's documented samples, with the fields a test cares about changed."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.webhooks import fixture_json

_CHECKOUT = fixture_json("checkouts_create.json")
_ORDER = fixture_json("orders_create.json")
_CUSTOMER = fixture_json("customers_create.json")


def checkout(token: str = "ck-1", *, updated_at: str = "2026-11-20T10:00:00Z", **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(_CHECKOUT)
    payload.update(token=token, created_at="2026-11-20T09:00:00Z", updated_at=updated_at, **changes)
    return payload


def order(order_id: int = 1001, *, updated_at: str = "2026-11-20T11:00:00Z", **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(_ORDER)
    payload.update(id=order_id, updated_at=updated_at, **changes)
    return payload


def customer(customer_id: int = 501, *, updated_at: str = "2026-11-20T10:00:00Z", **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(_CUSTOMER)
    payload.update(id=customer_id, updated_at=updated_at, **changes)
    return payload


def product(
    product_id: int = 632910392,
    *,
    updated_at: str = "2026-11-20T10:00:00Z",
    variants: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A products/update body (its documented shape; the sample set carries no product file)."""
    payload: dict[str, Any] = {
        "id": product_id,
        "title": "IPod Nano - 8GB",
        "handle": "ipod-nano",
        "status": "active",
        "updated_at": updated_at,
        "image": {"id": 850703190, "src": "https://cdn.shopify.com/s/files/ipod-nano.png"},
        "images": [
            {"id": 850703190, "src": "https://cdn.shopify.com/s/files/ipod-nano.png"},
            {"id": 562641783, "src": "https://cdn.shopify.com/s/files/ipod-nano-pink.png"},
        ],
        "variants": variants
        if variants is not None
        else [variant(808950810, product_id=product_id, updated_at=updated_at, image_id=562641783)],
    }
    payload.update(changes)
    return payload


def variant(
    variant_id: int,
    *,
    product_id: int = 632910392,
    price: str = "199.00",
    inventory_quantity: int = 10,
    updated_at: str = "2026-11-20T10:00:00Z",
    **changes: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": variant_id,
        "product_id": product_id,
        "title": "Pink",
        "sku": "IPOD2008PINK",
        "price": price,
        "compare_at_price": None,
        "inventory_quantity": inventory_quantity,
        "inventory_policy": "deny",
        "image_id": None,
        "updated_at": updated_at,
    }
    payload.update(changes)
    return payload
