"""A merchant's own provider accounts: connected, listed, disconnected; their secrets encrypted at rest.

One account per shop and channel: SMS through Twilio, WhatsApp through Meta's Cloud API, email through
SendGrid (SMTP from the environment stays the deployment's default email channel). What a merchant gives is
checked field by field, every problem reported at once, before anything is stored. Secrets (auth token,
access token, app secret, verify token, API key) are encrypted as one value and never described back;
the rest (account SID, sender, phone number id, public key) is shown with the callback URLs the merchant
pastes into the provider's console.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)
from jinja2 import TemplateSyntaxError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from flows.phones import normalise_phone
from shopify_app.crypto import SecretBox
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.messaging.costs import ANY_COUNTRY, WHATSAPP_CATEGORIES, OwnRate, describe_rates
from shopify_app.messaging.render import LITERAL_LINK, has_literal_link, parameters_environment
from shopify_app.models import ChannelAccount, ChannelRate, Shop, WhatsAppTemplate

PROVIDERS = {"sms": ("twilio",), "whatsapp": ("meta",), "email": ("sendgrid",)}
MAX_VALUE_LENGTH = 1024
EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidAccount(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AccountForm:
    """A provider account as a merchant gave it, checked."""

    channel: str
    provider: str
    settings: dict[str, str]
    secrets: dict[str, str]


def _token(raw: str) -> str:
    if not re.fullmatch(r"[\x21-\x7e]+", raw):
        raise ValueError("expected printable characters without spaces")
    return raw


def _sid(prefix: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not re.fullmatch(prefix + r"[0-9a-fA-F]{32}", raw):
            raise ValueError(f"expected {prefix} followed by 32 hexadecimal digits")
        return raw

    return parse


def _e164(raw: str) -> str:
    number = normalise_phone(raw)
    if number is None:
        raise ValueError("expected a phone number in international form, such as +14155550123")
    return number


def _digits(raw: str) -> str:
    if not re.fullmatch(r"\d{1,30}", raw):
        raise ValueError("expected digits only")
    return raw


def _sendgrid_key(raw: str) -> str:
    if not re.fullmatch(r"SG\.[\w\-]+\.[\w\-]+", raw):
        raise ValueError("expected a SendGrid API key (SG.…)")
    return raw


def _address(raw: str) -> str:
    _name, address = parseaddr(raw)
    if not EMAIL_ADDRESS.fullmatch(address):
        raise ValueError("expected an email address")
    return address


def _ec_public_key(raw: str) -> str:
    """SendGrid's verification key, as its console shows it (base64 of DER) or as PEM; stored as base64 DER."""
    try:
        key = (
            load_pem_public_key(raw.encode())
            if raw.startswith("-----BEGIN")
            else load_der_public_key(base64.b64decode(raw, validate=True))
        )
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("expected the base64 ECDSA public key from SendGrid's event webhook settings") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an ECDSA P-256 public key")
    return base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


# Per channel: each field, whether it is a secret, and its parser. `from` is the sender.
_FIELDS: dict[str, dict[str, tuple[bool, Callable[[str], str]]]] = {
    "sms": {
        "account_sid": (False, _sid("AC")),
        "auth_token": (True, _token),
        "from": (False, _e164),
        "messaging_service_sid": (False, _sid("MG")),
    },
    "whatsapp": {
        "phone_number_id": (False, _digits),
        "access_token": (True, _token),
        "app_secret": (True, _token),
        "verify_token": (True, _token),
    },
    "email": {
        "api_key": (True, _sendgrid_key),
        "from": (False, _address),
        "event_public_key": (False, _ec_public_key),
    },
}
_REQUIRED = {
    "sms": ("account_sid", "auth_token"),
    "whatsapp": ("phone_number_id", "access_token", "app_secret", "verify_token"),
    "email": ("api_key", "from", "event_public_key"),
}


def parse_account(channel: str, values: Mapping[str, Any]) -> AccountForm:
    """The account these values describe; `InvalidAccount` lists every problem at once."""
    if channel not in PROVIDERS:
        raise InvalidAccount([f"unknown channel {channel!r}: expected one of {', '.join(PROVIDERS)}"])
    fields = _FIELDS[channel]
    provider = values.get("provider") or PROVIDERS[channel][0]
    problems: list[str] = []
    if provider not in PROVIDERS[channel]:
        problems.append(f"provider: {channel} is sent through {', '.join(PROVIDERS[channel])}, not {provider!r}")
    unknown = sorted(set(values) - set(fields) - {"provider"})
    if unknown:
        problems.append(f"unknown field(s) for {channel}: {', '.join(unknown)}")
    settings: dict[str, str] = {}
    hidden: dict[str, str] = {}
    for name, (secret, parse) in fields.items():
        raw = values.get(name)
        if raw is None or raw == "":
            if name in _REQUIRED[channel]:
                problems.append(f"{name} is required")
            continue
        if not isinstance(raw, str) or len(raw) > MAX_VALUE_LENGTH:
            problems.append(f"{name}: expected a string of at most {MAX_VALUE_LENGTH} characters")
            continue
        try:
            (hidden if secret else settings)[name] = parse(raw.strip())
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if channel == "sms":
        senders = [name for name in ("from", "messaging_service_sid") if values.get(name)]
        if len(senders) != 1:
            problems.append("give either from (a Twilio number) or messaging_service_sid, exactly one")
    if problems:
        raise InvalidAccount(problems)
    return AccountForm(channel, str(provider), settings, hidden)


def connect(session: Session, box: SecretBox, shop: Shop, form: AccountForm, now: datetime) -> ChannelAccount:
    """Store the account (replacing the channel's previous one) and give the shop its callback key."""
    assert shop.id is not None
    ensure_callback_key(shop)
    session.add(shop)
    account = session.exec(
        select(ChannelAccount).where(ChannelAccount.shop_id == shop.id, ChannelAccount.channel == form.channel)
    ).first() or ChannelAccount(shop_id=shop.id, channel=form.channel, provider=form.provider, secrets_ciphertext="",
                                connected_at=now, updated_at=now)  # fmt: skip
    account.provider = form.provider
    account.settings = dict(form.settings)
    account.secrets_ciphertext = box.encrypt(json.dumps(form.secrets, sort_keys=True))
    account.updated_at = now
    session.add(account)
    session.flush()
    return account


def disconnect(session: Session, shop_id: int, channel: str) -> bool:
    """Forget the channel's account and its secrets; whether there was one."""
    removed = session.execute(
        delete(ChannelAccount).where(ChannelAccount.shop_id == shop_id, ChannelAccount.channel == channel)  # type: ignore[arg-type]
    )
    return bool(removed.rowcount)  # type: ignore[attr-defined]


def accounts_of(session: Session, shop_id: int) -> dict[str, ChannelAccount]:
    rows = session.exec(select(ChannelAccount).where(ChannelAccount.shop_id == shop_id))
    return {account.channel: account for account in rows}


def secrets_of(box: SecretBox, account: ChannelAccount) -> dict[str, str]:
    value = json.loads(box.decrypt(account.secrets_ciphertext))
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def ensure_callback_key(shop: Shop) -> str:
    if not shop.callback_key:
        shop.callback_key = secrets.token_urlsafe(16)
    return shop.callback_key


def callback_urls(app_url: str, callback_key: str, channel: str, provider: str) -> dict[str, str]:
    """The URLs the merchant gives the provider, so that its callbacks reach this shop."""
    base = app_url.rstrip("/")
    if provider == "twilio":
        return {
            "status": f"{base}/channels/twilio/{callback_key}/status",
            "inbound": f"{base}/channels/twilio/{callback_key}/inbound",
        }
    if provider == "meta":
        return {"webhook": f"{base}/channels/whatsapp/{callback_key}"}
    if provider == "sendgrid":
        return {"events": f"{base}/channels/sendgrid/{callback_key}/events"}
    return {}


def templates_of(session: Session, shop_id: int) -> list[WhatsAppTemplate]:
    query = select(WhatsAppTemplate).where(WhatsAppTemplate.shop_id == shop_id)
    return list(session.exec(query.order_by(col(WhatsAppTemplate.flow), col(WhatsAppTemplate.step))))


def describe_channels(
    accounts: Mapping[str, ChannelAccount],
    shop: Shop,
    app_url: str,
    *,
    smtp_default: bool,
    templates: Sequence[WhatsAppTemplate] = (),
    rates: Sequence[ChannelRate] = (),
) -> list[dict[str, Any]]:
    """Every channel of the shop, connected or not, without a secret; WhatsApp with its steps' templates, the
    paid channels with the shop's own rates (set before or after connecting)."""
    described: list[dict[str, Any]] = []
    for channel in PROVIDERS:
        account = accounts.get(channel)
        if account is not None:
            described.append({
                "channel": channel,
                "state": "connected",
                "provider": account.provider,
                "settings": dict(account.settings),
                "callbacks": callback_urls(app_url, shop.callback_key or "", channel, account.provider),
                "connected_at": account.connected_at.isoformat(),
                "updated_at": account.updated_at.isoformat(),
            })  # fmt: skip
            if channel == "whatsapp":
                described[-1]["templates"] = [
                    {"flow": t.flow, "step": t.step, "name": t.name, "language": t.language, "params": list(t.params),
                     "category": t.category}
                    for t in templates
                ]  # fmt: skip
        elif channel == "email" and smtp_default:
            described.append({"channel": channel, "state": "connected", "provider": "smtp", "settings": {},
                              "callbacks": {}, "deployment_default": True})  # fmt: skip
        else:
            described.append({"channel": channel, "state": "not_connected"})
        if channel in ("sms", "whatsapp"):
            described[-1]["rates"] = describe_rates([r for r in rates if r.channel == channel])
    return described


MAX_CALLBACK_KEY = 64


@dataclass(frozen=True)
class CallbackTarget:
    """What a provider's callback URL names: the shop, and its account on the channel (if it has one)."""

    shop: Shop
    account: ChannelAccount | None

    @property
    def shop_id(self) -> int:
        assert self.shop.id is not None
        return self.shop.id


def callback_target(session: Session, key: str, channel: str, provider: str) -> CallbackTarget | None:
    """The shop the callback key names (None: no such key), with its account if it is this provider's."""
    if not key or len(key) > MAX_CALLBACK_KEY:
        return None
    shop = session.exec(select(Shop).where(Shop.callback_key == key)).first()
    if shop is None or shop.id is None:
        return None
    account = session.exec(
        select(ChannelAccount).where(ChannelAccount.shop_id == shop.id, ChannelAccount.channel == channel)
    ).first()
    return CallbackTarget(shop, account if account is not None and account.provider == provider else None)


TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
MAX_TEMPLATE_PARAMS = 20


def set_whatsapp_template(
    session: Session,
    shop: Shop,
    catalog: FlowCatalog,
    *,
    flow: str,
    step: str,
    name: str,
    language: str,
    params: Sequence[str],
    now: datetime,
    category: str = "marketing",
) -> WhatsAppTemplate:
    """Send the flow's step on WhatsApp as this approved template (of the category Meta approved it in, which
    prices it); `InvalidAccount` lists every problem."""
    assert shop.id is not None
    problems: list[str] = []
    definition = catalog.get(flow)
    if definition is None:
        problems.append(f"flow: unknown flow {flow!r}")
    elif not any(s.id == step for s in definition.send_steps):
        problems.append(f"step: {flow} has no send step {step!r}")
    if not TEMPLATE_NAME.fullmatch(name):
        problems.append("name: expected the template's name as Meta shows it (lower case, digits, _)")
    if not TEMPLATE_LANGUAGE.fullmatch(language):
        problems.append("language: expected a language code such as en_US or de")
    if category not in WHATSAPP_CATEGORIES:
        problems.append(f"category: expected one of {', '.join(WHATSAPP_CATEGORIES)}, as Meta approved the template")
    if len(params) > MAX_TEMPLATE_PARAMS:
        problems.append(f"params: at most {MAX_TEMPLATE_PARAMS}")
    env = parameters_environment()
    for number, param in enumerate(params, start=1):
        if not isinstance(param, str) or not param.strip() or len(param) > MAX_VALUE_LENGTH:
            problems.append(f"params[{number}]: expected a template of at most {MAX_VALUE_LENGTH} characters")
            continue
        try:
            tree = env.parse(param)
        except TemplateSyntaxError as exc:
            problems.append(f"params[{number}]: {exc.message}")
            continue
        if has_literal_link(tree):
            problems.append(f"params[{number}]: {LITERAL_LINK}")
    if problems:
        raise InvalidAccount(problems)
    row = session.exec(
        select(WhatsAppTemplate).where(
            WhatsAppTemplate.shop_id == shop.id, WhatsAppTemplate.flow == flow, WhatsAppTemplate.step == step
        )
    ).first() or WhatsAppTemplate(shop_id=shop.id, flow=flow, step=step, name=name, language=language, updated_at=now)
    row.name, row.language, row.params, row.updated_at = name, language, list(params), now
    row.category = category
    session.add(row)
    _changed(session, shop.id, "whatsapp", now)  # a channel built from the account takes the new template
    session.flush()
    return row


def _changed(session: Session, shop_id: int, channel: str, now: datetime) -> None:
    """Mark the channel's account changed, so that a channel built from it is built again (`ChannelDirectory`
    keeps one per account and `updated_at`): strictly later, even when the clock says the same instant."""
    account = accounts_of(session, shop_id).get(channel)
    if account is not None:
        account.updated_at = max(now, account.updated_at + timedelta(microseconds=1))
        session.add(account)


def rates_of(session: Session, shop_id: int, channel: str | None = None) -> list[ChannelRate]:
    query = select(ChannelRate).where(ChannelRate.shop_id == shop_id)
    if channel is not None:
        query = query.where(ChannelRate.channel == channel)
    order = (col(ChannelRate.channel), col(ChannelRate.country) == ANY_COUNTRY, col(ChannelRate.country),
             col(ChannelRate.category))  # fmt: skip
    return list(session.exec(query.order_by(*order)))


def set_rate(session: Session, shop_id: int, channel: str, rate: OwnRate, now: datetime) -> ChannelRate:
    """The shop pays `rate` for the channel's messages in its country and category; the next message is
    estimated at it."""
    row = session.exec(
        select(ChannelRate).where(
            ChannelRate.shop_id == shop_id, ChannelRate.channel == channel, ChannelRate.country == rate.country,
            ChannelRate.category == rate.category,
        )
    ).first() or ChannelRate(shop_id=shop_id, channel=channel, country=rate.country, category=rate.category,
                             amount=rate.amount, currency=rate.currency, updated_at=now)  # fmt: skip
    row.amount, row.currency, row.updated_at = rate.amount, rate.currency, now
    session.add(row)
    _changed(session, shop_id, channel, now)
    session.flush()
    return row


def replace_rates(session: Session, shop_id: int, channel: str, rates: Sequence[OwnRate], now: datetime) -> None:
    """The channel's own rates are these, and only these."""
    reset_rates(session, shop_id, channel, now)
    for rate in rates:
        session.add(ChannelRate(shop_id=shop_id, channel=channel, country=rate.country, category=rate.category,
                                amount=rate.amount, currency=rate.currency, updated_at=now))  # fmt: skip
    session.flush()


def reset_rates(session: Session, shop_id: int, channel: str, now: datetime, country: str | None = None) -> int:
    """Forget the shop's rates for the channel (in one country, every category, when given): the shipped ones
    apply again. How many there were."""
    query = delete(ChannelRate).where(col(ChannelRate.shop_id) == shop_id, col(ChannelRate.channel) == channel)
    if country is not None:
        query = query.where(col(ChannelRate.country) == country)
    removed = int(session.execute(query).rowcount)  # type: ignore[attr-defined]
    _changed(session, shop_id, channel, now)
    session.flush()
    return removed
