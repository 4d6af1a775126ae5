"""Shopify's OAuth: the authorize redirect, signed query strings, and the token endpoint's three grants
(authorization code, token exchange, refresh), always asking for expiring offline tokens."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from shopify_app.settings import Settings
from shopify_app.shopify.library import oauth_query_signature

# OAuth URNs, not secrets.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class TokenRequestError(Exception):
    """The token endpoint refused (4xx: e.g. `invalid_grant`) or could not be reached (`status` 0, 5xx)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"token endpoint answered {status or 'nothing'}: {error}")
        self.status = status
        self.error = error

    @property
    def permanent(self) -> bool:
        return 400 <= self.status < 500


@dataclass(frozen=True)
class TokenGrant:
    access_token: str = field(repr=False)
    scopes: str
    expires_at: datetime | None  # None for a non-expiring token (custom apps)
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: datetime | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any], now: datetime) -> TokenGrant:
        def after(seconds: Any) -> datetime | None:
            return now + timedelta(seconds=int(seconds)) if seconds else None

        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenRequestError(200, "the answer carries no access_token")
        return cls(
            access_token=token,
            scopes=str(body.get("scope") or ""),
            expires_at=after(body.get("expires_in")),
            refresh_token=body.get("refresh_token") or None,
            refresh_expires_at=after(body.get("refresh_token_expires_in")),
        )


def authorize_url(settings: Settings, shop: str, state: str) -> str:
    """Where the merchant approves the app. Always the real shop: this is a browser redirect."""
    query = urlencode(
        {
            "client_id": settings.shopify_api_key,
            "scope": ",".join(settings.scopes),
            "redirect_uri": f"{settings.app_url}/auth/callback",
            "state": state,
        }
    )
    return f"https://{shop}/admin/oauth/authorize?{query}"


def query_is_signed(params: Mapping[str, Any], secrets: tuple[str, ...]) -> bool:
    """Whether the `hmac` parameter signs the other parameters under one of `secrets` (constant time)."""
    given = params.get("hmac")
    if not isinstance(given, str) or not given:
        return False
    unsigned = {k: v for k, v in params.items() if k not in ("hmac", "signature")}
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(oauth_query_signature(unsigned, secret).encode(), given.encode())
    return matched


class TokenEndpoint:
    def __init__(self, http: requests.Session, settings: Settings) -> None:
        self._http = http
        self._settings = settings

    def exchange_code(self, shop: str, code: str, now: datetime) -> TokenGrant:
        return self._request(shop, {"code": code, "expiring": "1"}, now)

    def exchange_session_token(self, shop: str, session_token: str, now: datetime) -> TokenGrant:
        return self._request(
            shop,
            {
                "grant_type": TOKEN_EXCHANGE_GRANT,
                "subject_token": session_token,
                "subject_token_type": ID_TOKEN_TYPE,
                "requested_token_type": OFFLINE_TOKEN_TYPE,
                "expiring": "1",
            },
            now,
        )

    def refresh(self, shop: str, refresh_token: str, now: datetime) -> TokenGrant:
        return self._request(shop, {"grant_type": "refresh_token", "refresh_token": refresh_token}, now)

    def _request(self, shop: str, grant: dict[str, str], now: datetime) -> TokenGrant:
        body = {
            "client_id": self._settings.shopify_api_key,
            "client_secret": self._settings.shopify_api_secret,
            **grant,
        }
        url = f"{self._settings.admin_base_url(shop)}/admin/oauth/access_token"
        try:
            response = self._http.post(url, json=body, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise TokenRequestError(0, type(exc).__name__) from None
        if response.status_code != 200:
            raise TokenRequestError(response.status_code, _error_code(response))
        try:
            answer = response.json()
        except ValueError:
            raise TokenRequestError(response.status_code, "the answer is not JSON") from None
        return TokenGrant.from_response(answer, now)


def _error_code(response: requests.Response) -> str:
    """Shopify's error code only: descriptions may echo what was sent."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else f"HTTP {response.status_code}"
