"""Chorus: the composition root. Flask app, settings, persistence, Shopify intake and the worker."""
