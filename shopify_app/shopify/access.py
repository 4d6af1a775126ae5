"""Acting for a shop: installing it (authorization code or token exchange) and its tokens."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from sqlmodel import Session

from shopify_app.db.engine import read_only
from shopify_app.http import http_session
from shopify_app.models import Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.admin_api import AdminApi, admin_endpoint
from shopify_app.shopify.oauth import TokenEndpoint, TokenGrant
from shopify_app.shopify.tokens import ShopTokens, ShopUninstalled
from shopify_app.shops import install_shop


class ShopifyAccess:
    def __init__(
        self,
        runtime: Runtime,
        http: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.http = http or http_session()
        # Tests pass a clock that sleeping advances: throttling waits are then measured, not waited.
        self._sleep, self._monotonic = sleep, monotonic
        self.endpoint = TokenEndpoint(self.http, runtime.settings)
        self.tokens = ShopTokens(runtime.engine, runtime.secret_box, self.endpoint, runtime.clock)

    def admin_api(self, shop_id: int) -> AdminApi:
        """A GraphQL Admin API client acting for the shop with its (refreshed as needed) offline token."""
        with Session(read_only(self.runtime.engine)) as session:
            shop = session.get(Shop, shop_id)
        if shop is None:
            raise ShopUninstalled(f"no shop {shop_id}")
        settings = self.runtime.settings
        endpoint = admin_endpoint(settings.admin_base_url(shop.domain), settings.shopify_api_version)
        return AdminApi(
            self.http,
            endpoint=endpoint,
            tokens=self.tokens.for_shop(shop_id),
            sleep=self._sleep,
            monotonic=self._monotonic,
        )

    def install_with_code(self, shop: str, code: str) -> Shop:
        """The authorization code grant's last step: trade the code for an expiring offline token."""
        grant = self.endpoint.exchange_code(shop, code, self.runtime.clock.now())
        return self._install(shop, grant)

    def install_with_session_token(self, shop: str, session_token: str) -> Shop:
        """Token exchange: an embedded admin session proves the merchant; no redirect needed."""
        grant = self.endpoint.exchange_session_token(shop, session_token, self.runtime.clock.now())
        return self._install(shop, grant)

    def _install(self, shop: str, grant: TokenGrant) -> Shop:
        with Session(self.runtime.engine, expire_on_commit=False) as session, session.begin():
            installed = install_shop(session, self.runtime.secret_box, shop, grant, now=self.runtime.clock.now())
            # A public app's webhooks are signed with the app's own secret.
            installed.webhook_secret_ciphertext = None
            return installed
