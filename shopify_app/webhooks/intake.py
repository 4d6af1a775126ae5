"""Receiving one webhook delivery: verify its signature, deduplicate it, store it verbatim.

Nothing here interprets the payload beyond checking that it is a JSON object; that is the worker's job, so
the request stays well inside Shopify's five-second limit whatever the handlers do. Any correctly signed body
is stored: one that is not JSON an object can be read from is kept as malformed, never answered with a 5xx
(Shopify would retry it for hours).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import orjson
from sqlalchemy import Engine
from sqlmodel import col, select

from shopify_app.clock import Clock, parse_instant
from shopify_app.crypto import SecretBox
from shopify_app.db.engine import read_only
from shopify_app.db.statements import dialect_insert
from shopify_app.models import EventStatus, Shop, WebhookEvent
from shopify_app.shopify.library import canonical_shop_domain
from shopify_app.shopify.signatures import verify_webhook_signature
from shopify_app.shopify.topics import PRIVACY_TOPICS

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    UNKNOWN_SHOP = "unknown_shop"  # acknowledged, not stored
    SHOP_UNINSTALLED = "shop_uninstalled"  # acknowledged, not stored (privacy topics excepted)
    BAD_SIGNATURE = "bad_signature"
    MISSING_HEADERS = "missing_headers"


@dataclass(frozen=True)
class Delivery:
    """What Shopify sent: the raw body and its `X-Shopify-*` headers."""

    body: bytes
    signature: str | None
    topic: str | None
    shop_domain: str | None
    webhook_id: str | None
    event_id: str | None = None
    triggered_at: str | None = None
    api_version: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], body: bytes) -> Delivery:
        by_name = {name.lower(): value for name, value in headers.items()}  # names are case-insensitive

        def header(name: str) -> str | None:
            value = by_name.get(name.lower())
            return value.strip() or None if value else None

        return cls(
            body=body,
            signature=header("X-Shopify-Hmac-Sha256"),
            topic=(header("X-Shopify-Topic") or "").lower() or None,
            shop_domain=header("X-Shopify-Shop-Domain"),
            webhook_id=header("X-Shopify-Webhook-Id"),
            event_id=header("X-Shopify-Event-Id"),
            triggered_at=header("X-Shopify-Triggered-At"),
            api_version=header("X-Shopify-API-Version"),
        )


@dataclass(frozen=True)
class ShopKey:
    """What intake needs to know of a shop: which secrets sign its webhooks, and whether it is installed."""

    id: int
    installed: bool
    secrets: tuple[str, ...]


class ShopDirectory:
    """Shop lookups for intake, remembered for a few seconds: most deliveries come from a few busy shops.

    Only installed shops are remembered, so a new or reinstalled shop is never turned away. A change to an
    installed shop (a new webhook secret, an uninstall) takes effect within `ttl_seconds`.
    """

    def __init__(self, engine: Engine, secret_box: SecretBox, app_secrets: tuple[str, ...], ttl_seconds: float) -> None:
        self._engine = read_only(engine)
        self._secret_box = secret_box
        self._app_secrets = app_secrets
        self._ttl = ttl_seconds
        self._known: dict[str, tuple[float, ShopKey]] = {}

    def find(self, domain: str) -> ShopKey | None:
        cached = self._known.get(domain)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self._engine.connect() as connection:
            row = connection.execute(
                select(Shop.id, Shop.installed, Shop.webhook_secret_ciphertext).where(Shop.domain == domain)
            ).first()
        if row is None:
            self._known.pop(domain, None)
            return None
        shop_id, installed, secret_ciphertext = row
        # A merchant's own custom app signs with its own secret; otherwise Chorus's app secrets apply.
        secrets = (self._secret_box.decrypt(secret_ciphertext),) if secret_ciphertext else self._app_secrets
        key = ShopKey(id=shop_id, installed=installed, secrets=secrets)
        if installed:
            self._known[domain] = (time.monotonic() + self._ttl, key)
        else:
            self._known.pop(domain, None)
        return key


class WebhookIntake:
    def __init__(
        self,
        engine: Engine,
        shops: ShopDirectory,
        app_secrets: tuple[str, ...],
        handled_topics: frozenset[str],
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._shops = shops
        self._app_secrets = app_secrets
        self._handled_topics = handled_topics
        self._clock = clock
        # Built once: intake is the hottest path, and either unique key (the webhook id; the shop, topic
        # and event id of a doubled subscription) makes a delivery a repeat.
        self._insert = (
            dialect_insert(engine.dialect.name, WebhookEvent).on_conflict_do_nothing().returning(col(WebhookEvent.id))
        )
        # One statement is atomic by itself: on PostgreSQL it runs outside a transaction block, which saves
        # the BEGIN and COMMIT round trips. (SQLite keeps its BEGIN IMMEDIATE: one writer at a time.)
        self._writer = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else None
        )

    def receive(self, delivery: Delivery) -> Outcome:
        domain = canonical_shop_domain(delivery.shop_domain)
        shop = self._shops.find(domain) if domain else None
        secrets = shop.secrets if shop is not None else self._app_secrets
        if not verify_webhook_signature(delivery.body, delivery.signature, secrets):
            log.warning("webhook rejected: bad signature (shop=%s)", domain or "?")
            return Outcome.BAD_SIGNATURE
        if not (domain and delivery.topic and delivery.webhook_id):
            return Outcome.MISSING_HEADERS
        if shop is None:
            log.info("webhook %s ignored: unknown shop %s", delivery.topic, domain)
            return Outcome.UNKNOWN_SHOP
        if not shop.installed and delivery.topic not in PRIVACY_TOPICS:
            return Outcome.SHOP_UNINSTALLED
        status, error = self._classify(delivery)
        outcome = Outcome.STORED if self._store(delivery, domain, shop.id, status, error) else Outcome.DUPLICATE
        log.info("webhook %s %s for %s (%s)", delivery.webhook_id, outcome, domain, delivery.topic)
        return outcome

    def _classify(self, delivery: Delivery) -> tuple[EventStatus, str | None]:
        # orjson: fast, and bounded whatever the body holds. It refuses nesting past 1024 levels, lone
        # surrogates, NaN and numbers beyond a double with its own decode error, where the standard library
        # raises RecursionError (a 500: nothing stored, and Shopify retrying for hours) or accepts them.
        try:
            payload = orjson.loads(delivery.body)
        except ValueError as exc:  # orjson.JSONDecodeError is one
            return EventStatus.MALFORMED, f"body is not valid JSON: {exc}"
        if not isinstance(payload, dict):
            return EventStatus.MALFORMED, "body is JSON but not an object"
        if delivery.topic not in self._handled_topics:
            return EventStatus.UNHANDLED, None
        return EventStatus.PENDING, None

    def _store(
        self,
        delivery: Delivery,
        domain: str,
        shop_id: int,
        status: EventStatus,
        error: str | None,
    ) -> bool:
        row = {
            "shop_domain": domain,
            "shop_id": shop_id,
            "topic": delivery.topic,
            "webhook_id": delivery.webhook_id,
            "event_id": delivery.event_id,
            "triggered_at": _instant_or_none(delivery.triggered_at),
            "api_version": delivery.api_version,
            "received_at": self._clock.now(),
            "body": delivery.body,
            "status": status,
            "attempts": 0,
            "last_error": error,
        }
        if self._writer is not None:
            with self._writer.connect() as connection:
                return connection.execute(self._insert, row).first() is not None
        with self._engine.begin() as connection:
            return connection.execute(self._insert, row).first() is not None  # None: a repeat, left as it was


def _instant_or_none(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        return None
