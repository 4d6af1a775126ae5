"""Persistence: engine and session setup, column types, migrations."""
