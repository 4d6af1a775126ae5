"""Authenticating the embedded admin's API calls with App Bridge session tokens.

Every `/api/*` view runs for exactly one shop: the one the session token's `dest` names. A shop that is
installed but has no usable offline token gets one right here, by token exchange.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlmodel import select

from shopify_app.models import Shop
from shopify_app.runtime import current_runtime
from shopify_app.shopify.oauth import TokenRequestError
from shopify_app.shopify.session_tokens import InvalidSessionToken, verify_session_token
from shopify_app.shopify.tokens import usable
from shopify_app.web.access import current_access

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


def session_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        runtime = current_runtime()
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        try:
            claims = verify_session_token(
                token, api_key=runtime.settings.shopify_api_key, secrets=runtime.settings.webhook_secrets
            )
        except InvalidSessionToken as exc:
            log.info("api: session token refused: %s", exc)
            return unauthorized("invalid session token")
        shop = _shop_with_token(claims.shop, token)
        if shop is None:
            return unauthorized("this shop has not installed Chorus")
        g.shop = shop
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_shop() -> Shop:
    shop: Shop = g.shop
    return shop


def unauthorized(message: str) -> tuple[dict[str, str], int, dict[str, str]]:
    # App Bridge fetches a new session token and retries once when it sees this header.
    return {"error": message}, 401, {RETRY_HEADER: "1"}


def _shop_with_token(domain: str, session_token: str) -> Shop | None:
    runtime = current_runtime()
    with runtime.read_session() as session:
        shop = session.exec(select(Shop).where(Shop.domain == domain)).first()
    if shop is not None and shop.installed:
        refreshable = shop.refresh_token_ciphertext is not None and shop.token_problem is None
        if usable(shop, runtime.clock.now()) or refreshable:
            return shop
    # The session token proves the merchant opened the app in their admin: exchange it for an
    # offline token (a managed install, a reinstall, or a shop whose refresh failed).
    try:
        return current_access().install_with_session_token(domain, session_token)
    except TokenRequestError as exc:
        log.warning("api: token exchange for %s failed: %s", domain, exc.error)
        return None
