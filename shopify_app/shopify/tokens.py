"""A shop's Admin API tokens: stored encrypted, refreshed before they expire (and after a 401), the new
pair written atomically so that concurrent workers never lose a refresh.

Refreshing locks the shop's row for the duration of the call to Shopify: a second worker that wants a
token meanwhile waits, then finds the fresh one instead of spending the refresh token again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from shopify_app.clock import Clock
from shopify_app.crypto import SecretBox
from shopify_app.models import Shop
from shopify_app.shopify.admin_api import AuthenticationError
from shopify_app.shopify.oauth import TokenEndpoint, TokenGrant, TokenRequestError

log = logging.getLogger(__name__)

# Refresh this long before the access token expires, so a call never starts with a dying token.
REFRESH_MARGIN = timedelta(minutes=5)


class NoUsableToken(AuthenticationError):
    """Chorus cannot act for this shop until the merchant opens the app again (or reinstalls it)."""


class ShopUninstalled(NoUsableToken):
    """The shop uninstalled Chorus: there is nothing to act on any more."""


def store_grant(shop: Shop, grant: TokenGrant, secret_box: SecretBox, now: datetime) -> None:
    """Write a new token pair onto the shop row; the caller's transaction makes it atomic."""
    shop.access_token_ciphertext = secret_box.encrypt(grant.access_token)
    shop.access_token_expires_at = grant.expires_at
    shop.refresh_token_ciphertext = secret_box.encrypt(grant.refresh_token) if grant.refresh_token else None
    shop.refresh_token_expires_at = grant.refresh_expires_at
    shop.scopes = grant.scopes or shop.scopes
    shop.token_problem = None
    shop.updated_at = now


def forget_tokens(shop: Shop) -> None:
    shop.access_token_ciphertext = None
    shop.access_token_expires_at = None
    shop.refresh_token_ciphertext = None
    shop.refresh_token_expires_at = None


def usable(shop: Shop, now: datetime) -> bool:
    return shop.access_token_ciphertext is not None and (
        shop.access_token_expires_at is None or shop.access_token_expires_at - REFRESH_MARGIN > now
    )


class ShopTokens:
    def __init__(self, engine: Engine, secret_box: SecretBox, endpoint: TokenEndpoint, clock: Clock) -> None:
        self._engine = engine
        self._secret_box = secret_box
        self._endpoint = endpoint
        self._clock = clock

    def for_shop(self, shop_id: int) -> TokenSource:
        return TokenSource(self, shop_id)

    def current(self, shop_id: int) -> str:
        """A usable access token, refreshed first if it expires within the margin."""
        with Session(self._engine, expire_on_commit=False) as session:
            shop = session.get(Shop, shop_id)
            if shop is not None and shop.installed and usable(shop, self._clock.now()):
                assert shop.access_token_ciphertext is not None
                return self._secret_box.decrypt(shop.access_token_ciphertext)
        return self.refresh(shop_id, rejected=None)

    def refresh(self, shop_id: int, rejected: str | None) -> str:
        """A new access token; `rejected` is the one Shopify just answered 401 to, if any."""
        problem: str | None = None
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            shop = session.get(Shop, shop_id, with_for_update=True)
            if shop is None or not shop.installed:
                raise ShopUninstalled("the shop is not installed")
            now = self._clock.now()
            held = self._secret_box.decrypt(shop.access_token_ciphertext) if shop.access_token_ciphertext else None
            if held is not None and held != rejected and usable(shop, now):
                return held  # another worker refreshed while this one waited for the lock
            if shop.refresh_token_ciphertext is None:
                raise NoUsableToken(shop.token_problem or "no refresh token: the merchant must open the app")
            try:
                grant = self._endpoint.refresh(
                    shop.domain, self._secret_box.decrypt(shop.refresh_token_ciphertext), now
                )
            except TokenRequestError as exc:
                if not exc.permanent:
                    raise  # Shopify unreachable: try again later, nothing to flag
                problem = f"token refresh refused ({exc.error}); the merchant must open the app again"
                shop.token_problem = problem
                shop.updated_at = now
                log.warning("shop %s: %s", shop.domain, problem)
            else:
                store_grant(shop, grant, self._secret_box, now)
                log.info("shop %s: access token refreshed", shop.domain)
                return grant.access_token
        raise NoUsableToken(problem)


@dataclass(frozen=True)
class TokenSource:
    """One shop's tokens, in the shape the Admin API client asks for."""

    tokens: ShopTokens
    shop_id: int

    def current(self) -> str:
        return self.tokens.current(self.shop_id)

    def after_rejection(self, rejected: str) -> str:
        return self.tokens.refresh(self.shop_id, rejected=rejected)
