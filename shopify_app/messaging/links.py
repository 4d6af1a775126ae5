"""Signed links in messages. The token names the message, never the address: URLs end up in logs."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

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
