"""The channels each shop can send on: the deployment's own (email over SMTP) and the provider accounts the
shop connected (SMS through its Twilio account).

A shop's connected account takes the place of the deployment's channel of the same name. Channels built
from an account are kept until the account changes (its `updated_at`, which setting one of the channel's
WhatsApp templates or the shop's rates for it moves too), so a batch does not decrypt and connect again for
every message, and the next message after a change is rendered and priced as changed; a disconnected account
is forgotten the next time its shop is loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from connectors.channel import Handover
from connectors.email.sendgrid import SendGridAccount, SendGridSender
from connectors.sms.twilio import TwilioAccount, TwilioSms
from connectors.whatsapp.cloud import WhatsAppAccount, WhatsAppSender
from flows.phones import normalise_phone
from shopify_app.crypto import DecryptionError, SecretBox
from shopify_app.http import http_session
from shopify_app.messaging.accounts import EMAIL_ADDRESS, callback_urls, secrets_of
from shopify_app.messaging.channels import (
    SMS_OPT_OUT,
    EmailChannel,
    OutboundChannel,
    SmsChannel,
    TemplateChoice,
    WhatsAppChannel,
    configured_channels,
    configured_names,
    envelope_for,
)
from shopify_app.messaging.costs import shop_rates
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.messaging.render import EmailTemplates, TextTemplates
from shopify_app.models import ChannelAccount, Shop, WhatsAppTemplate
from shopify_app.settings import Settings

log = logging.getLogger(__name__)

# The providers Chorus sends through, by channel; an account of another (connected ahead of its connector)
# reaches no one yet.
SENDABLE = {"sms": frozenset({"twilio"}), "email": frozenset({"sendgrid"}), "whatsapp": frozenset({"meta"})}

AccountChannel = Callable[[Session, ChannelAccount, Shop], OutboundChannel]


def connected_channels(session: Session, shop_id: int) -> frozenset[str]:
    """The channels the shop's own accounts can send on."""
    rows = session.exec(
        select(ChannelAccount.channel, ChannelAccount.provider).where(ChannelAccount.shop_id == shop_id)
    )
    return frozenset(channel for channel, provider in rows if provider in SENDABLE.get(channel, ()))


def reachable_channels(session: Session, settings: Settings, shop_id: int) -> frozenset[str]:
    """The channels the deployment and the shop's own accounts set up (without building them)."""
    return configured_names(settings) | connected_channels(session, shop_id)


class ChannelDirectory:
    def __init__(self, deployment: Mapping[str, OutboundChannel], build: AccountChannel | None = None) -> None:
        self._deployment = dict(deployment)
        self._build = build
        self._by_shop: dict[int, dict[str, OutboundChannel]] = {}
        self._built: dict[tuple[int, datetime], OutboundChannel] = {}
        self._lock = threading.Lock()

    @property
    def deployment(self) -> frozenset[str]:
        return frozenset(self._deployment)

    def configured(self, session: Session, shop: Shop) -> frozenset[str]:
        """Which channels can reach the shop's customers now."""
        assert shop.id is not None
        self.load(session, [shop])
        return frozenset(self._deployment) | frozenset(self._by_shop.get(shop.id, {}))

    def load(self, session: Session, shops: Iterable[Shop]) -> None:
        """Read (again) the accounts of these shops."""
        if self._build is None:
            return
        wanted = {shop.id: shop for shop in shops if shop.id is not None}
        if not wanted:
            return
        found: dict[int, dict[str, OutboundChannel]] = {shop_id: {} for shop_id in wanted}
        for account in session.exec(select(ChannelAccount).where(col(ChannelAccount.shop_id).in_(wanted))):
            if account.provider not in SENDABLE.get(account.channel, ()):
                continue
            channel = self._channel_of(session, account, wanted[account.shop_id])
            if channel is not None:
                found[account.shop_id][account.channel] = channel
        with self._lock:
            self._by_shop.update(found)

    def channel(self, shop_id: int, name: str) -> OutboundChannel | None:
        """The channel `name` of the shop, as last loaded."""
        return self._by_shop.get(shop_id, {}).get(name) or self._deployment.get(name)

    def _channel_of(self, session: Session, account: ChannelAccount, shop: Shop) -> OutboundChannel | None:
        assert account.id is not None
        assert self._build is not None
        key = (account.id, account.updated_at)
        with self._lock:
            known = self._built.get(key)
        if known is not None:
            return known
        try:
            built = self._build(session, account, shop)
        except (DecryptionError, KeyError, ValueError) as exc:
            # Sends on this channel wait (not configured) until the merchant connects the account again.
            log.error("shop %s: the %s account cannot be used: %s", shop.id, account.channel, type(exc).__name__)
            return None
        with self._lock:
            self._built = {k: v for k, v in self._built.items() if k[0] != account.id}
            self._built[key] = built
        return built


def directory_for(settings: Settings, box: SecretBox) -> ChannelDirectory:
    """This deployment's channels, and each shop's own."""
    return ChannelDirectory(configured_channels(settings), account_channels(settings, box))


class CannotTest(ValueError):
    """The test message cannot be sent: the channel is not set up, or the address is not one for it."""


def send_test_message(
    directory: ChannelDirectory, session: Session, shop: Shop, channel: str, to: str, now: datetime
) -> Handover:
    """One test message to `to` on the shop's channel, as it would go out: consent and quiet hours do not apply,
    and it is no message of any journey, so nothing counts it. Raises CannotTest, or DeliveryError from the
    provider."""
    assert shop.id is not None
    directory.load(session, [shop])
    via = directory.channel(shop.id, channel) if channel in directory.configured(session, shop) else None
    if via is None:
        raise CannotTest(f"{channel} is not set up for {shop.domain}")
    name = shop.name or shop.domain
    said = "this is a test message from Chorus, sent from its settings."
    if channel in ("sms", "whatsapp"):
        address = normalise_phone(to)
        if address is None:
            raise CannotTest("expected a phone number in international form, such as +14155550123")
        payload: dict[str, Any] = {"body": f"{name}: {said}\n{SMS_OPT_OUT}"}
        if channel == "whatsapp":  # outside a conversation only a template goes: Meta's own test template
            payload = {"template": "hello_world", "language": "en_US", "parameters": []}
    else:
        address = to.strip().lower()
        if not EMAIL_ADDRESS.fullmatch(address):
            raise CannotTest("expected an email address")
        text = f"{name}: {said}"
        payload = {"subject": f"{name}: a test message", "text": text, "html": None, "unsubscribe_url": None}
    return via.send(payload, envelope_for(shop, 0, address), now)


def account_channels(settings: Settings, box: SecretBox) -> AccountChannel:
    """How a shop's connected account becomes a channel."""
    templates = TextTemplates("sms")
    emails = EmailTemplates()
    links = UnsubscribeLinks(settings.secret_key, settings.app_url)

    def build(session: Session, account: ChannelAccount, shop: Shop) -> OutboundChannel:
        if not shop.callback_key:  # given with the shop's first account: never missing once one is connected
            raise ValueError("the shop has no callback key")
        secrets = secrets_of(box, account)
        if account.channel == "whatsapp":
            meta = WhatsAppAccount(account.settings["phone_number_id"], secrets["access_token"],
                                   settings.whatsapp_api_base_url, settings.whatsapp_api_version)  # fmt: skip
            return WhatsAppChannel(WhatsAppSender(meta, http_session()), template_choices(session, shop.id or 0),
                                   shop_rates(session, shop.id or 0, "whatsapp"))  # fmt: skip
        if account.channel == "email":
            sendgrid = SendGridAccount(api_key=secrets["api_key"], base_url=settings.sendgrid_api_base_url)
            return EmailChannel(SendGridSender(sendgrid, http_session()), links, account.settings["from"], emails)
        callbacks = callback_urls(settings.app_url, shop.callback_key, account.channel, account.provider)
        twilio = TwilioAccount(
            account_sid=account.settings["account_sid"],
            auth_token=secrets["auth_token"],
            from_number=account.settings.get("from"),
            messaging_service_sid=account.settings.get("messaging_service_sid"),
            status_callback=callbacks["status"],
            base_url=settings.twilio_api_base_url,
        )
        return SmsChannel(TwilioSms(twilio, http_session()), templates, shop_rates(session, shop.id or 0, "sms"))

    return build


def template_choices(session: Session, shop_id: int) -> dict[tuple[str, str], TemplateChoice]:
    """The shop's WhatsApp template for each flow and step it set one for."""
    rows = session.exec(select(WhatsAppTemplate).where(WhatsAppTemplate.shop_id == shop_id))
    return {(t.flow, t.step): TemplateChoice(t.name, t.language, tuple(t.params), t.category) for t in rows}
