"""The one place that touches the `ShopifyAPI` package (import name `shopify`).

It is deprecated upstream and makes its own HTTP calls through urllib with `https://{shop}` written in,
so Chorus uses only its pure helpers, here. See docs/adr/0002-shopify-library.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import shopify
from shopify.session_token import SessionTokenError, decode_from_header
from shopify.utils.shop_url import sanitize_shop_domain

__all__ = ["SessionTokenError", "canonical_shop_domain", "decode_session_token", "oauth_query_signature"]


def canonical_shop_domain(value: str | None) -> str | None:
    """The shop's `*.myshopify.com` domain if `value` is exactly one (any case), else None.

    Shopify's helper also completes bare names ("acme" -> "acme.myshopify.com"); a header or a
    command-line argument must name the domain in full, so anything it had to complete is refused.
    """
    if not value:
        return None
    candidate = value.strip().lower()
    sanitized: str | None = sanitize_shop_domain(candidate)
    return sanitized if sanitized == candidate else None


def oauth_query_signature(params: Mapping[str, Any], secret: str) -> str:
    """The hex HMAC Shopify puts in the `hmac` query parameter of OAuth redirects and admin links.

    The library keeps the secret on a class attribute shared by the whole process; a throwaway subclass
    per call keeps secrets from leaking between callers and threads.
    """
    signer: Any = type("_QuerySigner", (shopify.Session,), {"secret": secret})
    signature: str = signer.calculate_hmac(dict(params))
    return signature


def decode_session_token(token: str, *, api_key: str, secret: str) -> dict[str, Any]:
    """Verify an App Bridge session token (HS256, audience, expiry with leeway, issuer and destination
    naming the same shop) and return its claims. Raises SessionTokenError."""
    claims: dict[str, Any] = decode_from_header(f"Bearer {token}", api_key, secret)
    return claims
