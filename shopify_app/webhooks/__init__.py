"""Webhook intake: verify, store, answer. Processing happens later, in the worker."""
