"""`chorus shops doctor`: are the shop's webhook subscriptions, granted scopes and web pixel what Chorus needs?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shopify_app.models import Shop
from shopify_app.settings import Settings
from shopify_app.shopify.admin_api import AdminApi, GraphQLError
from shopify_app.shopify.admin_queries import (
    ACCESS_DENIED,
    WebPixelInfo,
    current_web_pixel,
    granted_scopes,
    web_pixel_settings_text,
    webhook_subscriptions,
)
from shopify_app.shopify.subscriptions import SubscriptionCheck, compare, desired_topics, webhook_uri
from shopify_app.shopify.web_pixel import PIXEL_SCOPES, expected_settings, has_app_pixel


@dataclass(frozen=True)
class PixelCheck:
    applies: bool  # False for a merchant's custom app: Chorus's pixel extension is not part of it
    pixel: WebPixelInfo | None = None
    expected: Mapping[str, str] | None = None  # None: Chorus has not made the shop's pixel key yet
    denied: bool = False  # Shopify would not show it: the scopes granted do not cover pixels

    @property
    def active(self) -> bool:
        return self.pixel is not None and self.expected is not None and dict(self.pixel.settings) == self.expected

    @property
    def healthy(self) -> bool:
        return not self.applies or self.active


@dataclass(frozen=True)
class Diagnosis:
    domain: str
    subscriptions: SubscriptionCheck
    granted: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    pixel: PixelCheck

    @property
    def healthy(self) -> bool:
        return self.subscriptions.healthy and not self.missing_scopes and self.pixel.healthy


def diagnose(api: AdminApi, settings: Settings, shop: Shop) -> Diagnosis:
    """Only looks: nothing on the shop or in the database is changed (no pixel key is made)."""
    check = compare(webhook_subscriptions(api), desired_topics(settings), webhook_uri(settings))
    granted = tuple(sorted(granted_scopes(api)))
    # write_x implies read_x in Shopify's scopes.
    implied = set(granted) | {s.replace("write_", "read_", 1) for s in granted if s.startswith("write_")}
    applies = has_app_pixel(shop)
    needed = [s for s in settings.scopes if applies or s not in PIXEL_SCOPES]
    return Diagnosis(
        domain=shop.domain,
        subscriptions=check,
        granted=granted,
        missing_scopes=tuple(s for s in needed if s not in implied),
        pixel=_check_pixel(api, shop, settings) if applies else PixelCheck(applies=False),
    )


def _check_pixel(api: AdminApi, shop: Shop, settings: Settings) -> PixelCheck:
    expected = expected_settings(shop, settings.app_url)
    try:
        pixel = current_web_pixel(api)
    except GraphQLError as exc:
        if ACCESS_DENIED not in exc.codes:
            raise
        return PixelCheck(applies=True, expected=expected, denied=True)
    return PixelCheck(applies=True, pixel=pixel, expected=expected)


def report(diagnosis: Diagnosis, settings: Settings) -> list[str]:
    lines = [f"Webhook subscriptions (managed by {settings.webhooks_managed_by}), to {webhook_uri(settings)}:"]
    lines += [f"  ok       {s.topic}" for s in diagnosis.subscriptions.kept]
    lines += [f"  missing  {topic}" for topic in diagnosis.subscriptions.missing]
    lines += [f"  stale    {s.topic} -> {s.uri} ({s.id})" for s in diagnosis.subscriptions.stale]
    lines.append(f"Scopes granted: {', '.join(diagnosis.granted) or 'none'}")
    if diagnosis.missing_scopes:
        lines.append(f"Scopes missing: {', '.join(diagnosis.missing_scopes)} (the merchant must approve them again)")
        if diagnosis.pixel.applies:
            lines.append(
                "  Chorus does not send the merchant to approve them itself. Once shopify.app.toml is deployed "
                "(`shopify app deploy`), Shopify asks the merchant to approve the new scopes the next time they "
                f"open Chorus in their admin; or have them open {settings.app_url}/auth?shop={diagnosis.domain}."
            )
    lines += _pixel_lines(diagnosis, settings.app_url)
    lines.append("Healthy." if diagnosis.healthy else "Not healthy: see above.")
    return lines


def _pixel_lines(diagnosis: Diagnosis, app_url: str) -> list[str]:
    check = diagnosis.pixel
    if not check.applies:
        return ["Web pixel: none (a custom app's token: the pixel is an extension of the Chorus app)"]
    if check.active and check.pixel is not None and check.expected is not None:
        endpoint = f"{check.expected['appUrl']}/pixel/{check.expected['shopKey']}"
        return [f"Web pixel: active ({check.pixel.id}), sending to {endpoint}"]
    if check.denied or any(s in diagnosis.missing_scopes for s in PIXEL_SCOPES):
        missing = ", ".join(s for s in PIXEL_SCOPES if s in diagnosis.missing_scopes) or ", ".join(PIXEL_SCOPES)
        return [
            f"Web pixel: not active: the scopes granted lack {missing}. Once the merchant approves them, "
            "the worker activates it (within a day; at once after an install through /auth)."
        ]
    hint = (
        "The worker activates it after an install and after an upgrade (the web_pixel job); an install "
        f"through {app_url}/auth?shop={diagnosis.domain} activates it again. If it stays so, the worker's log "
        "says why."
    )
    if check.pixel is None:
        return [f"Web pixel: not active. {hint}"]
    actual = web_pixel_settings_text(check.pixel.settings)
    wanted = web_pixel_settings_text(check.expected) if check.expected is not None else "none yet"
    return [f"Web pixel: active ({check.pixel.id}) with other settings: {actual}, expected {wanted}. {hint}"]
