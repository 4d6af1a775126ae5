"""Shopify's mandatory privacy webhooks: data requests, customer redaction, shop redaction."""
