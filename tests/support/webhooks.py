"""Signed webhook deliveries, built the way Shopify sends them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from shopify_app.shopify.signatures import webhook_signature
from tests.support.env import API_SECRET

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"
SHOP = "acme.myshopify.com"
OTHER_SHOP = "globex.myshopify.com"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(fixture_bytes(name))
    return payload


def headers(
    topic: str,
    body: bytes,
    *,
    shop: str = SHOP,
    secret: str = API_SECRET,
    webhook_id: str | None = None,
    event_id: str | None = None,
    triggered_at: str = "2026-11-20T10:00:00.123456789Z",
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhook_signature(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
