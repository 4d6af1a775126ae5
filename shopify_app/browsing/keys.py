"""The key that names a shop in its web pixel's endpoint."""

from __future__ import annotations

import secrets

from shopify_app.models import Shop

PIXEL_PATH = "/pixel/"


def ensure_pixel_key(shop: Shop) -> str:
    """The shop's pixel key, made on first use. Public (the storefront's pages carry it): it only routes."""
    if not shop.pixel_key:
        shop.pixel_key = secrets.token_urlsafe(16)
    return shop.pixel_key


def pixel_settings(shop: Shop, app_url: str) -> dict[str, str]:
    """The web pixel extension's settings for this shop (its `shopify.extension.toml` declares them): where to
    send events. The pixel posts them to `<appUrl>/pixel/<shopKey>`."""
    return {"shopKey": ensure_pixel_key(shop), "appUrl": app_url.rstrip("/")}
