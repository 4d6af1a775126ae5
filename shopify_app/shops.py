"""A shop's life in Chorus: registered (or installed), its profile kept current, uninstalled."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from flows.money import clean_money_format
from flows.reasons import Reason
from shopify_app.crypto import SecretBox
from shopify_app.events.context import WebhookContext
from shopify_app.jobs.queue import enqueue
from shopify_app.journeys.hooks import end_all
from shopify_app.mirror import fields
from shopify_app.mirror.store import is_newer
from shopify_app.models import Shop
from shopify_app.shopify.library import canonical_shop_domain
from shopify_app.shopify.oauth import TokenGrant
from shopify_app.shopify.sync_queries import ShopProfile
from shopify_app.shopify.tokens import forget_tokens, store_grant

INSTALL_JOB = "install"


class InvalidShopDomain(ValueError):
    pass


def install_shop(session: Session, secret_box: SecretBox, domain: str, grant: TokenGrant, *, now: datetime) -> Shop:
    """Create or reinstall a shop with fresh tokens, and queue what an installation needs done."""
    canonical = canonical_shop_domain(domain)
    if canonical is None:
        raise InvalidShopDomain(f"{domain!r} is not a shop domain like example.myshopify.com")
    shop = session.exec(select(Shop).where(Shop.domain == canonical)).first()
    if shop is None:
        shop = Shop(domain=canonical, created_at=now, updated_at=now)
        session.add(shop)
    store_grant(shop, grant, secret_box, now)
    if not shop.installed or shop.installed_at is None or shop.uninstalled_at is not None:
        shop.installed_at = now
    shop.installed = True
    shop.uninstalled_at = None
    session.flush()
    assert shop.id is not None
    enqueue(session, shop.id, INSTALL_JOB, now)
    return shop


def register_shop(
    session: Session,
    secret_box: SecretBox,
    domain: str,
    *,
    access_token: str,
    webhook_secret: str | None,
    now: datetime,
) -> Shop:
    """Register a shop with an Admin API token from a merchant's own custom app (it does not expire; the
    app signs webhooks with its own secret, or with Chorus's when none is given)."""
    shop = install_shop(session, secret_box, domain, TokenGrant(access_token, scopes="", expires_at=None), now=now)
    shop.webhook_secret_ciphertext = secret_box.encrypt(webhook_secret) if webhook_secret else None
    return shop


def on_app_uninstalled(ctx: WebhookContext) -> None:
    """app/uninstalled: forget the tokens, cancel every pending send. Privacy webhooks still come."""
    shop = ctx.shop
    if shop.installed_at is not None and ctx.observed_at < shop.installed_at:
        return  # a late delivery from before the shop installed again
    shop.installed = False
    shop.uninstalled_at = ctx.observed_at
    forget_tokens(shop)
    shop.updated_at = ctx.now
    assert shop.id is not None
    end_all(ctx.session, shop.id, Reason.SHOP_UNINSTALLED, ctx.now)


def on_shop_update(ctx: WebhookContext) -> None:
    """shop/update: name, contact, currency, timezone, domain and the postal address for emails."""
    payload = ctx.payload
    profile = ShopProfile(
        name=fields.text(payload.get("name")),
        email=fields.email(payload.get("customer_email") or payload.get("email")),
        currency=fields.text(payload.get("currency")),
        iana_timezone=fields.text(payload.get("iana_timezone")),
        primary_domain=fields.text(payload.get("domain")),
        money_format=fields.text(payload.get("money_in_emails_format") or payload.get("money_format")),
        address1=fields.text(payload.get("address1")),
        address2=fields.text(payload.get("address2")),
        city=fields.text(payload.get("city")),
        province_code=fields.text(payload.get("province_code") or payload.get("province")),
        zip=fields.text(payload.get("zip")),
        country_name=fields.text(payload.get("country_name") or payload.get("country")),
    )
    write_profile(ctx.shop, profile, fields.instant(payload.get("updated_at")) or ctx.observed_at, ctx.now)


def write_profile(shop: Shop, profile: ShopProfile, updated_at: datetime, now: datetime) -> None:
    """Take the shop's profile (from shop/update or the sync) unless the one held is newer."""
    if not is_newer(updated_at, shop.profile_updated_at):
        return
    shop.name = profile.name or shop.name
    shop.email = profile.email or shop.email
    shop.currency = profile.currency or shop.currency
    shop.money_format = clean_money_format(profile.money_format) or shop.money_format
    shop.iana_timezone = profile.iana_timezone or shop.iana_timezone
    shop.primary_domain = profile.primary_domain or shop.primary_domain
    shop.postal_address = postal_address(profile) or shop.postal_address
    shop.profile_updated_at = updated_at
    shop.updated_at = now


def postal_address(profile: ShopProfile) -> str | None:
    region = " ".join(p for p in (profile.province_code, profile.zip) if p)
    lines = [p for p in (profile.address1, profile.address2, profile.city, region, profile.country_name) if p]
    return ", ".join(lines) or None
