from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class Shop(SQLModel, table=True):
    """A store Chorus serves. Secrets are stored encrypted (see `shopify_app.crypto`)."""

    __tablename__ = "shops"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    domain: str = Field(max_length=255, unique=True)  # the permanent *.myshopify.com domain
    access_token_ciphertext: str | None = Field(default=None, repr=False)
    access_token_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # None: never
    refresh_token_ciphertext: str | None = Field(default=None, repr=False)
    refresh_token_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scopes: str | None = None  # as granted, comma-separated
    # Why Chorus cannot currently act for this shop (e.g. a refresh the merchant must fix by reopening the app).
    token_problem: str | None = None
    # A merchant's own custom app signs webhooks with its own secret instead of Chorus's.
    webhook_secret_ciphertext: str | None = Field(default=None, repr=False)
    installed: bool = True
    installed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    uninstalled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    name: str | None = None
    email: str | None = None
    currency: str | None = Field(default=None, max_length=3)
    money_format: str | None = Field(default=None, max_length=100)  # Shopify's, for emails: "${{amount}}"
    # The channel policy the merchant set (caps, quiet hours, budgets, regions...), in `flows.policy`'s JSON
    # form; what it leaves unset follows the defaults.
    policy: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, sa_column_kwargs={"server_default": "{}"})
    iana_timezone: str | None = None
    primary_domain: str | None = None
    postal_address: str | None = None
    profile_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The webhook topics last put in place through the Admin API; a release that handles more re-subscribes.
    webhook_topics: str | None = None
    # Names the shop in its channel providers' callback URLs: random, not a secret (each callback is verified
    # with the shop's own credentials), made when a first channel is connected.
    callback_key: str | None = Field(default=None, max_length=32, unique=True)
    # Names the shop in its web pixel's endpoint (`/pixel/<key>`): random, public (it is in the storefront's
    # pages), never proof of anything; made when the pixel is first activated.
    pixel_key: str | None = Field(default=None, max_length=32, unique=True)
    # The settings (their JSON, as sent) the shop's web pixel was last activated with through the Admin API;
    # None: not yet. A release whose settings differ (another APP_URL), or an upgrade, activates it again.
    web_pixel_settings: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def storefront_url(self) -> str:
        return f"https://{self.primary_domain or self.domain}"
