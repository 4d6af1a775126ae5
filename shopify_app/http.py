"""The one way Chorus makes outbound HTTP calls: a session with a User-Agent and mandatory timeouts."""

from __future__ import annotations

from typing import Any

import requests

USER_AGENT = "Chorus/0.1 (+https://github.com/chorus-shopify/chorus)"
# (connect, read) seconds: a slow provider must never stall a worker indefinitely.
DEFAULT_TIMEOUT = (5.0, 30.0)


class _TimeoutSession(requests.Session):
    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def http_session() -> requests.Session:
    session = _TimeoutSession()
    session.headers["User-Agent"] = USER_AGENT
    return session
