"""A complete, valid configuration for tests and the processes they start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

API_KEY = "test-client-id"
API_SECRET = "test_secret_key"  # the secret of Shopify's published webhook vector
PREVIOUS_API_SECRET = "previous_secret_key"
ENCRYPTION_KEY = "kOgVXBTbDvIP3gqaWPwAH24kaxaVP3-cGn1JDMY2fdE="
SECRET_KEY = "s" * 40


def chorus_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_SECRET_PREVIOUS": PREVIOUS_API_SECRET,
        "APP_URL": "https://chorus.example",
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
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
