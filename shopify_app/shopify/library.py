"""The one place that touches the `ShopifyAPI` package (import name `shopify`).

It is deprecated upstream and makes its own HTTP calls through urllib with `https://{shop}` written in,
so Chorus uses only its pure helpers, here. See docs/adr/0002-shopify-library.md.
"""

from __future__ import annotations

from shopify.utils.shop_url import sanitize_shop_domain


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
