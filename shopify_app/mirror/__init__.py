"""Handlers that keep the local mirror of storefront state true to Shopify."""
