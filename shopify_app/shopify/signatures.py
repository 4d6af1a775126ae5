"""Shopify's webhook signature: base64(HMAC-SHA256(client secret, raw body)), checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def webhook_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook_signature(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when `header` is the signature of `body` under any of `secrets` (e.g. during a rotation)."""
    if not header:
        return False
    given = header.strip().encode()
    # Compare against every secret, without stopping early, so timing says nothing about which matched.
    matched = False
    for secret in secrets:
        expected = webhook_signature(secret, body).encode()
        matched |= hmac.compare_digest(expected, given)
    return matched
