"""Links in messages: signed unsubscribe links, and the short links (`/l/<id>`) every other link becomes.

An unsubscribe token names the message, never the address: URLs end up in logs. A short link's id is random
(60 bits), stored with the message and the target; the redirect goes only to that stored target.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

SHORT_ID_LENGTH = 10

_UNSUBSCRIBE_SALT = "chorus.unsubscribe.v1"


class UnsubscribeLinks:
    def __init__(self, secret_key: str, app_url: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=_UNSUBSCRIBE_SALT)
        self._app_url = app_url

    def url(self, message_id: int) -> str:
        return f"{self._app_url}/unsubscribe/{self._serializer.dumps({'m': message_id})}"

    def message_id(self, token: str) -> int | None:
        """The message a token was made for, or None when it was not made by us."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            return None
        value = payload.get("m") if isinstance(payload, dict) else None
        return value if isinstance(value, int) else None


class ShortLinks:
    """Makes the short links of the messages being prepared; `take` hands over the rows to store with them."""

    def __init__(self, app_url: str) -> None:
        self._base = f"{app_url.rstrip('/')}/l/"
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def maker(self, shop_id: int, message_id: int, now: datetime) -> Callable[[str], str]:
        """Shortens the links of one message (the same target twice is one link)."""
        made: dict[str, str] = {}

        def shorten(target: str) -> str:
            if urlsplit(target).scheme not in ("http", "https"):
                return target  # only web links are followed through a redirect
            if target not in made:
                link_id = secrets.token_urlsafe(8)[:SHORT_ID_LENGTH]
                made[target] = link_id
                with self._lock:
                    self._rows.append(
                        {"id": link_id, "shop_id": shop_id, "message_id": message_id, "target": target,
                         "created_at": now}
                    )  # fmt: skip
            return self._base + made[target]

        return shorten

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows
