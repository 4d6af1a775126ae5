"""Shopify platform facts: signatures, topics, domains, and (later) the Admin API client."""
