"""Configuration, parsed once from the environment into one typed, immutable object.

Everything that reads an environment variable lives here; the rest of the code receives `Settings`.
A bad configuration stops the process at start with every problem listed at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import TypeVar
from urllib.parse import urlsplit

from connectors.email.smtp import SmtpConfig
from shopify_app.db.engine import POOLERS, with_pooler

DEFAULT_DATABASE_URL = "sqlite:///chorus.db"
DEFAULT_API_VERSION = "2026-10"
# What the flows need: customers and their consent (and updating it on unsubscribe), orders and
# checkouts, products and stock; and the web pixel: activating it (webPixelCreate and webPixelUpdate
# require both write_pixels and read_customer_events).
DEFAULT_SCOPES = (
    "read_customers",
    "write_customers",
    "read_orders",
    "read_products",
    "read_inventory",
    "write_pixels",
    "read_customer_events",
)
MIB = 1024 * 1024

T = TypeVar("T")


class ConfigError(Exception):
    """The environment does not describe a runnable Chorus; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    shopify_api_key: str
    shopify_api_secret: str = field(repr=False)
    app_url: str
    encryption_keys: tuple[str, ...] = field(repr=False)
    secret_key: str = field(repr=False)
    # Accepted next to the current secret while a rotation is under way.
    shopify_api_secret_previous: str | None = field(default=None, repr=False)
    # The URL every engine is built from; with a pooler it names it too (see `shopify_app.db.engine`).
    database_url: str = "sqlite:///chorus.db"
    database_pooler: str = "none"  # "pgbouncer": PgBouncer in transaction pooling mode in front of PostgreSQL
    port: int = 8000
    web_concurrency: int = 2
    webhook_max_body_bytes: int = 8 * MIB
    raw_body_retention_days: int = 30
    worker_poll_seconds: float = 2.0
    worker_batch_size: int = 1000
    event_claim_lease_seconds: int = 300  # a claim not finished by then was abandoned (its worker died)
    event_max_claims: int = 3  # claims without finishing before an event (or job) is parked
    event_max_attempts: int = 8
    event_retry_base_seconds: float = 30.0
    log_level: str = "INFO"
    smtp_url: str | None = field(default=None, repr=False)  # None: no email is sent
    smtp_ca_file: str | None = None  # a private CA for the SMTP server's certificate
    email_from: str | None = None  # the address; the display name is the shop's name
    message_lease_seconds: int = 300
    send_concurrency: int = 4  # hand-overs in flight per channel and worker
    demo_mode: bool = False  # set by `chorus demo` only
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    shopify_api_version: str = DEFAULT_API_VERSION
    # Replaces https://{shop} in server-to-server calls (tests, local fakes); may contain "{shop}".
    shopify_admin_base_url: str | None = None
    webhooks_managed_by: str = "app"  # "app": created on install through the API; "toml": shopify.app.toml
    sync_on_install: bool = True  # backfill the mirror right after an install (else: `chorus shops sync`)
    sync_history_days: int = 365  # how far back the backfill fetches orders and customers
    sync_bulk_threshold: int = 5000  # a catalogue with more products is fetched by a bulk operation
    reconcile_interval_minutes: int = 60
    flows_dir: str | None = None  # operators' own flow definitions (*.toml), next to the shipped ones
    # The providers' API hosts, replaced by a local fake in tests and demos.
    twilio_api_base_url: str = "https://api.twilio.com"
    whatsapp_api_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v23.0"
    sendgrid_api_base_url: str = "https://api.sendgrid.com"
    # How many X-Forwarded-For hops in front of the app to believe (Heroku's router: 1); 0: the connecting peer
    # is the client. Only rate limits and consent evidence use the client's address.
    trusted_proxy_count: int = 0
    pixel_retention_days: int = 90  # storefront events are erased after this many days

    def admin_base_url(self, shop_domain: str) -> str:
        """Where the shop's OAuth and Admin API endpoints live, without a trailing slash."""
        if self.shopify_admin_base_url:
            return self.shopify_admin_base_url.replace("{shop}", shop_domain).rstrip("/")
        return f"https://{shop_domain}"

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The app's client secrets a Shopify signature may have been made with, newest first."""
        if self.shopify_api_secret_previous:
            return (self.shopify_api_secret, self.shopify_api_secret_previous)
        return (self.shopify_api_secret,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _Reader(env)
        api_secret = reader.required("SHOPIFY_API_SECRET", "the app's client secret (Partner Dashboard)")
        secret_key = reader.required("SECRET_KEY", "a random string of 32+ characters that signs links")
        if secret_key and len(secret_key) < 32:
            reader.problem("SECRET_KEY must be at least 32 characters long")
        if secret_key and secret_key == api_secret:
            reader.problem("SECRET_KEY must differ from SHOPIFY_API_SECRET")
        database_url = normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
        database_pooler = reader.parsed("DATABASE_POOLER", "none", _database_pooler)
        if database_pooler != "none":
            if database_url.startswith("postgresql"):
                database_url = with_pooler(database_url, database_pooler)
            else:
                reader.problem(f"DATABASE_POOLER={database_pooler} needs a PostgreSQL DATABASE_URL")
        settings = cls(
            shopify_api_key=reader.required("SHOPIFY_API_KEY", "the app's client id (Partner Dashboard)"),
            shopify_api_secret=api_secret,
            shopify_api_secret_previous=env.get("SHOPIFY_API_SECRET_PREVIOUS") or None,
            app_url=reader.parsed("APP_URL", None, _parse_app_url, "the public https URL of this deployment"),
            encryption_keys=reader.parsed(
                "ENCRYPTION_KEY", None, _parse_fernet_keys, "comma-separated Fernet keys, newest first"
            ),
            secret_key=secret_key,
            database_url=database_url,
            database_pooler=database_pooler,
            port=reader.parsed("PORT", 8000, _positive_int),
            web_concurrency=reader.parsed("WEB_CONCURRENCY", 2, _positive_int),
            webhook_max_body_bytes=reader.parsed("WEBHOOK_MAX_BODY_BYTES", 8 * MIB, _positive_int),
            raw_body_retention_days=reader.parsed("RAW_BODY_RETENTION_DAYS", 30, _positive_int),
            worker_poll_seconds=reader.parsed("WORKER_POLL_SECONDS", 2.0, _positive_float),
            worker_batch_size=reader.parsed("WORKER_BATCH_SIZE", 1000, _positive_int),
            event_claim_lease_seconds=reader.parsed("EVENT_CLAIM_LEASE_SECONDS", 300, _positive_int),
            event_max_claims=reader.parsed("EVENT_MAX_CLAIMS", 3, _positive_int),
            event_max_attempts=reader.parsed("EVENT_MAX_ATTEMPTS", 8, _positive_int),
            event_retry_base_seconds=reader.parsed("EVENT_RETRY_BASE_SECONDS", 30.0, _positive_float),
            log_level=reader.parsed("LOG_LEVEL", "INFO", _log_level),
            smtp_url=reader.parsed("SMTP_URL", None, _smtp_url, optional=True),
            smtp_ca_file=env.get("SMTP_CA_FILE") or None,
            email_from=reader.parsed("EMAIL_FROM", None, _email_address, optional=True),
            message_lease_seconds=reader.parsed("MESSAGE_LEASE_SECONDS", 300, _positive_int),
            send_concurrency=reader.parsed("SEND_CONCURRENCY", 4, _positive_int),
            scopes=reader.parsed("SCOPES", DEFAULT_SCOPES, _scopes),
            shopify_api_version=reader.parsed("SHOPIFY_API_VERSION", DEFAULT_API_VERSION, _api_version),
            shopify_admin_base_url=reader.parsed("SHOPIFY_ADMIN_BASE_URL", None, _base_url, optional=True),
            webhooks_managed_by=reader.parsed("WEBHOOKS_MANAGED_BY", "app", _webhooks_managed_by),
            sync_on_install=reader.parsed("SYNC_ON_INSTALL", True, _boolean),
            sync_history_days=reader.parsed("SYNC_HISTORY_DAYS", 365, _positive_int),
            sync_bulk_threshold=reader.parsed("SYNC_BULK_THRESHOLD", 5000, _positive_int),
            reconcile_interval_minutes=reader.parsed("RECONCILE_INTERVAL_MINUTES", 60, _positive_int),
            flows_dir=reader.parsed("FLOWS_DIR", None, _directory, optional=True),
            twilio_api_base_url=reader.parsed("TWILIO_API_BASE_URL", "https://api.twilio.com", _base_url),
            whatsapp_api_base_url=reader.parsed("WHATSAPP_API_BASE_URL", "https://graph.facebook.com", _base_url),
            whatsapp_api_version=reader.parsed("WHATSAPP_API_VERSION", "v23.0", _graph_version),
            sendgrid_api_base_url=reader.parsed("SENDGRID_API_BASE_URL", "https://api.sendgrid.com", _base_url),
            trusted_proxy_count=reader.parsed("TRUSTED_PROXY_COUNT", 0, _count),
            pixel_retention_days=reader.parsed("PIXEL_RETENTION_DAYS", 90, _positive_int),
        )
        if settings.smtp_url and not settings.email_from:
            reader.problem("EMAIL_FROM is required when SMTP_URL is set: the address messages are sent from")
        reader.raise_if_problems()
        return settings


def normalise_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` form and pick the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: list[str] = []

    def problem(self, text: str) -> None:
        self._problems.append(text)

    def required(self, name: str, meaning: str) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            self.problem(f"{name} is required: {meaning}")
        return value

    def parsed(
        self, name: str, default: T | None, parse: Callable[[str], T], meaning: str = "", *, optional: bool = False
    ) -> T:
        raw = self._env.get(name, "").strip()
        if not raw:
            if default is None and not optional:
                self.problem(f"{name} is required: {meaning}")
            return default  # type: ignore[return-value]  # only read when there are no problems
        try:
            return parse(raw)
        except ValueError as exc:
            self.problem(f"{name}: {exc}")
            return default  # type: ignore[return-value]

    def raise_if_problems(self) -> None:
        if self._problems:
            raise ConfigError(self._problems)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive number, got {value}")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive number, got {value}")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None
    if not 0 <= value <= 10:
        raise ValueError(f"expected a number from 0 to 10, got {value}")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _scopes(raw: str) -> tuple[str, ...]:
    scopes = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not scopes or not all(re.fullmatch(r"(unauthenticated_)?(read|write)_[a-z_]+", s) for s in scopes):
        raise ValueError(f"expected comma-separated access scopes like read_orders,write_customers, got {raw!r}")
    return scopes


def _api_version(raw: str) -> str:
    if not re.fullmatch(r"\d{4}-(01|04|07|10)|unstable", raw):
        raise ValueError(f"expected a version like 2026-10, got {raw!r}")
    return raw


def _graph_version(raw: str) -> str:
    if not re.fullmatch(r"v\d{1,3}\.\d", raw):
        raise ValueError(f"expected a Graph API version like v23.0, got {raw!r}")
    return raw


def _base_url(raw: str) -> str:
    parts = urlsplit(raw.replace("{shop}", "shop.myshopify.com"))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:9000, got {raw!r}")
    return raw.rstrip("/")


def _webhooks_managed_by(raw: str) -> str:
    if raw not in {"app", "toml"}:
        raise ValueError(f"expected app or toml, got {raw!r}")
    return raw


def _database_pooler(raw: str) -> str:
    value = raw.lower()
    if value not in POOLERS:
        raise ValueError(f"expected {' or '.join(POOLERS)}, got {raw!r}")
    return value


def _directory(raw: str) -> str:
    if not os.path.isdir(raw):
        raise ValueError(f"expected a folder of flow definitions, but {raw!r} is not a directory")
    return raw


def _smtp_url(raw: str) -> str:
    SmtpConfig.from_url(raw)  # raises ValueError with what is wrong
    return raw


def _email_address(raw: str) -> str:
    _name, address = parseaddr(raw)
    if "@" not in address:
        raise ValueError(f"expected an email address, got {raw!r}")
    return address


def _parse_app_url(raw: str) -> str:
    parts = urlsplit(raw)
    local = parts.hostname in {"localhost", "127.0.0.1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError(f"expected an https:// URL (http only for localhost), got {raw!r}")
    if not parts.hostname:
        raise ValueError(f"expected a URL with a host, got {raw!r}")
    return raw.rstrip("/")


def _parse_fernet_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                f"key #{position} is not a Fernet key (32 url-safe base64 bytes); "
                "create one with `chorus keys generate`"
            )
    if not keys:
        raise ValueError("no key given")
    return keys
