"""`chorus web`: the Flask app under gunicorn. The web process never runs the scheduler."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from shopify_app.app import create_app
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings


class ChorusServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any] | None = None) -> None:
        self._settings = settings
        self._options = {
            "bind": f"0.0.0.0:{settings.port}",
            "workers": settings.web_concurrency,
            "worker_class": "gthread",
            "threads": 4,
            # Shopify gives a webhook five seconds; nothing Chorus serves should take longer than this.
            "timeout": 30,
            "graceful_timeout": 20,
            "accesslog": "-",
            # The path only: query strings carry OAuth codes and signed tokens.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
            "loglevel": settings.log_level.lower(),
            **(options or {}),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in each worker after the fork, so no database connection is shared between processes.
        return create_app(Runtime.build(self._settings))
