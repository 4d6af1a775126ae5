"""The Flask app's one `ShopifyAccess` (installs and tokens), created with the app."""

from __future__ import annotations

from flask import Flask, current_app

from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess

EXTENSION = "chorus.shopify_access"


def init_app(app: Flask, runtime: Runtime) -> None:
    app.extensions[EXTENSION] = ShopifyAccess(runtime)


def current_access() -> ShopifyAccess:
    access: ShopifyAccess = current_app.extensions[EXTENSION]
    return access
