"""A complete, valid configuration for tests and the processes they start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

API_KEY = "test-client-id"
API_SECRET = "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"  # the shape of a real client secret
PREVIOUS_API_SECRET = "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"
ENCRYPTION_KEY = "kOgVXBTbDvIP3gqaWPwAH24kaxaVP3-cGn1JDMY2fdE="
SECRET_KEY = "s" * 40
ADMIN_BASE_URL = "https://shopify.test/{shop}"
APP_URL = "https://chorus.example"


def chorus_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_SECRET_PREVIOUS": PREVIOUS_API_SECRET,
        "APP_URL": APP_URL,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        # Server-to-server calls go here, where the tests' fake Shopify (`responses`) answers.
        "SHOPIFY_ADMIN_BASE_URL": ADMIN_BASE_URL,
        # Installing then creates no webhook subscription through the Admin API (an install through the Chorus
        # app still activates its web pixel); the tests of subscriptions ask for "app" explicitly.
        "WEBHOOKS_MANAGED_BY": "toml",
        "SYNC_ON_INSTALL": "false",  # the sync's own tests ask for it
    }
    env.update(overrides)
    return env


def process_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment for a `chorus` subprocess: the test config over a clean PATH."""
    venv_bin = str(Path(sys.executable).parent)
    base = {
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/"),
    }
    return {**base, **chorus_env(database_url, **overrides)}


def chorus_command() -> list[str]:
    return [str(Path(sys.executable).parent / "chorus")]
