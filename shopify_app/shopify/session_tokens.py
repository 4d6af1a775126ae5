"""App Bridge session tokens: who is calling the embedded admin's API, for which shop."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from shopify_app.shopify.library import SessionTokenError, canonical_shop_domain, decode_session_token


class InvalidSessionToken(Exception):
    pass


@dataclass(frozen=True)
class SessionClaims:
    shop: str  # the myshopify domain named by `dest`
    user_id: str | None
    session_id: str | None


def verify_session_token(token: str, *, api_key: str, secrets: tuple[str, ...]) -> SessionClaims:
    """Check signature (any secret of a rotation), audience, expiry and not-before with a few seconds of
    leeway, and that `iss` and `dest` name the same shop. Raises InvalidSessionToken."""
    if not token:
        raise InvalidSessionToken("no session token")
    error: SessionTokenError | None = None
    for secret in secrets:
        try:
            claims = decode_session_token(token, api_key=api_key, secret=secret)
            break
        except SessionTokenError as exc:
            error = error or exc
    else:
        raise InvalidSessionToken(str(error) if error else "no secret configured")
    shop = canonical_shop_domain(urlsplit(str(claims.get("dest", ""))).hostname)
    if shop is None:
        raise InvalidSessionToken("dest names no shop")
    return SessionClaims(shop=shop, user_id=_text(claims.get("sub")), session_id=_text(claims.get("sid")))


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
