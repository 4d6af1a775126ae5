"""Signing what Shopify signs, independently of the code under test: OAuth queries and session tokens."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import jwt

from tests.support.env import API_KEY, API_SECRET


def signed_query(params: dict[str, str], secret: str = API_SECRET) -> dict[str, str]:
    """Shopify's OAuth query signature: hex HMAC-SHA256 over the sorted `k=v` pairs joined by `&`."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def session_token(
    shop: str,
    *,
    secret: str = API_SECRET,
    audience: str = API_KEY,
    issued_ago: float = 0,
    lifetime: float = 60,
    **claims: Any,
) -> str:
    now = time.time() - issued_ago
    payload = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": audience,
        "sub": "42",
        "exp": int(now + lifetime),
        "nbf": int(now),
        "iat": int(now),
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
