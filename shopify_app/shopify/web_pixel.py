"""The shop's web pixel: which shops have one, the settings it should run with, and activating it.

The pixel is an extension of the Chorus app (extensions/, deployed with `shopify app deploy`); it runs on a
shop once activated there through the Admin API with the shop's settings (`pixel_settings`). A merchant's
own custom app (`chorus shops add`) is another app, without Chorus's extension: nothing to activate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from shopify_app.browsing.keys import pixel_settings
from shopify_app.models import Shop
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import GraphQLError
from shopify_app.shopify.admin_queries import ACCESS_DENIED, WebPixelInfo, activate_web_pixel, web_pixel_settings_text

log = logging.getLogger(__name__)

# Without both, Shopify refuses webPixelCreate and webPixelUpdate (ACCESS_DENIED).
PIXEL_SCOPES = ("write_pixels", "read_customer_events")


class Activation(StrEnum):
    ACTIVE = "active"  # running with the shop's current settings
    DENIED = "denied"  # the scopes granted do not cover it: the merchant must approve the new ones
    NOT_APPLICABLE = "not_applicable"  # a custom app's shop, or one that uninstalled meanwhile


@dataclass(frozen=True)
class ActivationResult:
    outcome: Activation
    pixel: WebPixelInfo | None = None
    detail: str = ""


def has_app_pixel(shop: Shop) -> bool:
    """Installed through the Chorus app (the authorization code grant or token exchange, which record the
    scopes granted), so that its pixel extension can run there; a registered custom app records none."""
    return bool(shop.scopes)


def expected_settings(shop: Shop, app_url: str) -> dict[str, str] | None:
    """The settings the shop's pixel should run with; None while the shop has no pixel key (none is made)."""
    return pixel_settings(shop, app_url) if shop.pixel_key else None


def is_current(shop: Shop, app_url: str) -> bool:
    """Whether the pixel was last activated with the settings this release gives it."""
    wanted = expected_settings(shop, app_url)
    return wanted is not None and shop.web_pixel_settings == web_pixel_settings_text(wanted)


def activate_shop_pixel(access: ShopifyAccess, shop_id: int) -> ActivationResult:
    """Create or update the shop's web pixel with its settings, and record them.

    The pixel key is made (and committed) before Shopify hears of it, so that the pixel never carries a key
    Chorus does not know. Raises ShopUninstalled / NoUsableToken as the Admin API client does, and
    AdminApiError for other failures (INVALID_SETTINGS when the deployed extension declares other settings).
    """
    engine = access.runtime.engine
    app_url = access.runtime.settings.app_url
    with Session(engine, expire_on_commit=False) as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        if shop is None or not shop.installed or not has_app_pixel(shop):
            return ActivationResult(Activation.NOT_APPLICABLE)
        wanted = pixel_settings(shop, app_url)
    api = access.admin_api(shop_id)
    try:
        pixel = activate_web_pixel(api, wanted)
    except GraphQLError as exc:
        if ACCESS_DENIED not in exc.codes:
            raise
        return ActivationResult(Activation.DENIED, detail=str(exc))
    with Session(engine) as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        if shop is not None and shop.pixel_key == wanted["shopKey"]:
            shop.web_pixel_settings = web_pixel_settings_text(wanted)
    return ActivationResult(Activation.ACTIVE, pixel)
