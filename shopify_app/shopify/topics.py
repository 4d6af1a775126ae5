"""Webhook topic names Chorus gives special treatment to."""

from __future__ import annotations

APP_UNINSTALLED = "app/uninstalled"
CUSTOMERS_DATA_REQUEST = "customers/data_request"
CUSTOMERS_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"

# Mandatory privacy topics: still handled for a shop that uninstalled (shop/redact arrives 48 h later).
PRIVACY_TOPICS = frozenset({CUSTOMERS_DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT})
