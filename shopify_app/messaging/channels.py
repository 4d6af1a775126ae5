"""The channels a message can go out on, as the send protocol sees them: render, then hand over.

Each wraps a connector (which knows no database and no flows) with what only the composition knows: the
templates, the shop's name and reply address, the signed unsubscribe link of the message.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from jinja2 import Template

from connectors.channel import Channel, Handover
from connectors.email.message import OutgoingEmail
from connectors.email.smtp import SmtpConfig, SmtpSender
from connectors.sms.segments import count_segments
from connectors.sms.twilio import OutgoingSms
from connectors.whatsapp.cloud import OutgoingWhatsApp, TemplateMessage
from flows.reasons import Reason
from shopify_app.messaging.costs import RateTable, shipped_rates
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.messaging.render import EmailTemplates, TextTemplates
from shopify_app.messaging.render import parameters_environment as _parameters_environment
from shopify_app.models import Shop
from shopify_app.settings import Settings


@dataclass(frozen=True)
class Envelope:
    """Who a message goes to and comes from, beyond what it says."""

    message_id: int
    address: str
    shop_name: str
    shop_email: str | None
    flow: str | None = None  # the flow and step it is sent for (None: a test message)
    step: str | None = None
    sms_segments: int = 2  # the longest SMS the step may send
    wording: str | None = None  # the shop's own template for this step on this channel


class Unrenderable(Exception):
    """This message cannot go out on this channel (another of the step's channels may carry it)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class OutboundChannel(Protocol):
    name: str

    def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
        """The message as this channel carries it, JSON-safe (it is stored on the message row); raises
        `Unrenderable` when it cannot be carried."""
        ...

    def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover: ...

    def sessions(self) -> AbstractContextManager[None]:
        """Connections kept open for the messages handed over inside the block."""
        ...


class EmailChannel:
    name = "email"

    def __init__(
        self, connector: Channel[OutgoingEmail], links: UnsubscribeLinks, sender_address: str, templates: EmailTemplates
    ) -> None:
        self._connector = connector
        self._links = links
        self._sender_address = sender_address
        self._templates = templates

    def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
        unsubscribe_url = self._links.url(envelope.message_id)
        context = {"content": content, "unsubscribe_url": unsubscribe_url}
        rendered = self._templates.render(content_id, context, envelope.wording)
        return {
            "subject": rendered.subject,
            "html": rendered.html,
            "text": rendered.text,
            "unsubscribe_url": unsubscribe_url,
        }

    def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover:
        email = OutgoingEmail(
            sender_name=envelope.shop_name,
            sender_address=self._sender_address,
            recipient=envelope.address,
            subject=str(payload["subject"]),
            text=str(payload["text"]),
            html=payload.get("html"),
            reply_to=envelope.shop_email,
            unsubscribe_url=str(payload.get("unsubscribe_url") or self._links.url(envelope.message_id)),
            reference=str(envelope.message_id),
        )
        return self._connector.send(email, now)

    def send_notice(self, notice: Notice, envelope: Envelope, now: datetime) -> Handover:
        """An email the person asked for (a link to confirm their opt-in): no marketing, no unsubscribe link."""
        email = OutgoingEmail(sender_name=envelope.shop_name, sender_address=self._sender_address,
                              recipient=envelope.address, subject=notice.subject, text=notice.text, html=notice.html,
                              reply_to=envelope.shop_email)  # fmt: skip
        return self._connector.send(email, now)

    def sessions(self) -> AbstractContextManager[None]:
        return self._connector.sessions()


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str
    html: str | None = None


SMS_OPT_OUT = "Reply STOP to opt out"


def help_text(shop_name: str, shop_email: str | None) -> str:
    """What a customer who texts HELP gets back, on SMS or WhatsApp."""
    contact = f" Questions: {shop_email}." if shop_email else ""
    return f"{shop_name}: marketing messages about your orders and offers.{contact} {SMS_OPT_OUT}."


class SmsChannel:
    """Marketing SMS: the shop's name first, the opt-out instruction last, at most as long as its step allows."""

    name = "sms"

    def __init__(
        self, connector: Channel[OutgoingSms], templates: TextTemplates, rates: RateTable | None = None
    ) -> None:
        self._connector = connector
        self._templates = templates
        self._rates = rates or shipped_rates("sms")  # the shop's own over the shipped

    def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
        said = self._templates.render(content_id, {"content": content}, envelope.wording)
        return sms_payload(envelope.shop_name, said, envelope.sms_segments)

    def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover:
        handover = self._connector.send(OutgoingSms(to=envelope.address, body=str(payload["body"])), now)
        if handover.cost is not None:
            return handover
        # Twilio prices a message only later: until then, what its segments cost.
        cost = self._rates.estimate(envelope.address, count=int(payload.get("segments") or 1))
        return replace(handover, cost=cost.amount, cost_currency=cost.currency)

    def sessions(self) -> AbstractContextManager[None]:
        return self._connector.sessions()


def sms_payload(shop_name: str, said: str, max_segments: int) -> dict[str, Any]:
    """What an SMS carries: the shop's name first, the opt-out instruction last; Unrenderable (too long) over
    the step's segments."""
    body = f"{shop_name}: {said}\n{SMS_OPT_OUT}"
    segments = count_segments(body)
    if segments.count > max_segments:
        raise Unrenderable(Reason.TOO_LONG, f"{segments.count} {segments.encoding} segments, at most {max_segments}")
    return {"body": body, "segments": segments.count, "encoding": segments.encoding}


@dataclass(frozen=True)
class TemplateChoice:
    """The approved WhatsApp template a step goes out as: its name, language and body parameters, and the
    category Meta approved it in (what it is priced at)."""

    name: str
    language: str
    params: tuple[str, ...]
    category: str = "marketing"


class WhatsAppChannel:
    """Marketing on WhatsApp: always an approved template, chosen per flow and step by the merchant, its
    parameters rendered from the message's content in the sandbox."""

    name = "whatsapp"

    def __init__(
        self,
        connector: Channel[OutgoingWhatsApp],
        choices: Mapping[tuple[str, str], TemplateChoice],
        rates: RateTable | None = None,
    ) -> None:
        self._connector = connector
        self._choices = choices
        self._rates = rates or shipped_rates("whatsapp")
        self._env = _parameters_environment()
        self._compiled: dict[str, Template] = {}  # each parameter compiled once

    def render(self, content_id: str, content: Any, envelope: Envelope) -> dict[str, Any]:
        choice = self._choices.get((envelope.flow or "", envelope.step or ""))
        if choice is None:
            raise Unrenderable(Reason.NO_TEMPLATE, f"no WhatsApp template is set for {envelope.flow}/{envelope.step}")
        context = parameter_context(content)
        try:
            values = [" ".join(self._parameter(p).render(context).split()) for p in choice.params]
        except Exception as exc:  # a merchant's parameter: whatever it got wrong, this channel skips the step
            raise Unrenderable(Reason.RENDER_FAILED, f"a template parameter failed: {type(exc).__name__}") from None
        if any(not value for value in values):
            raise Unrenderable(Reason.RENDER_FAILED, "a template parameter rendered empty")
        return {"template": choice.name, "language": choice.language, "parameters": values, "category": choice.category}

    def _parameter(self, source: str) -> Template:
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compiled[source] = self._env.from_string(source)
        return compiled

    def send(self, payload: Mapping[str, Any], envelope: Envelope, now: datetime) -> Handover:
        message = TemplateMessage(envelope.address, str(payload["template"]), str(payload["language"]),
                                  tuple(str(p) for p in payload.get("parameters", ())))  # fmt: skip
        handover = self._connector.send(message, now)
        if handover.cost is not None:
            return handover
        # Meta's answer carries no price: one message at its category's rate, until its statuses say otherwise.
        cost = self._rates.estimate(envelope.address, str(payload.get("category") or "marketing"))
        return replace(handover, cost=cost.amount, cost_currency=cost.currency)

    def sessions(self) -> AbstractContextManager[None]:
        return self._connector.sessions()


def parameter_context(content: Any) -> dict[str, Any]:
    """What a template parameter may name: the content's own fields, and the shop's name."""
    context: dict[str, Any] = (
        {f.name: getattr(content, f.name) for f in fields(content)} if is_dataclass(content) else {}
    )
    sender = context.get("sender")
    if sender is not None:
        context["shop_name"] = getattr(sender, "shop_name", None)
    return context


def envelope_for(
    shop: Shop,
    message_id: int,
    address: str,
    flow: str | None = None,
    step: str | None = None,
    sms_segments: int = 2,
    wording: str | None = None,
) -> Envelope:
    return Envelope(message_id, address, shop.name or shop.domain, shop.email, flow, step, sms_segments, wording)


def configured_names(settings: Settings) -> frozenset[str]:
    """The channels this deployment's settings set up (without building them)."""
    return frozenset({"email"} if settings.smtp_url else ())


def configured_channels(settings: Settings, templates: EmailTemplates | None = None) -> dict[str, OutboundChannel]:
    """Every channel this deployment can send on; email only when SMTP_URL is set."""
    channels: dict[str, OutboundChannel] = {}
    if settings.smtp_url:
        tls = ssl.create_default_context(cafile=settings.smtp_ca_file) if settings.smtp_ca_file else None
        channels["email"] = EmailChannel(
            SmtpSender(SmtpConfig.from_url(settings.smtp_url), tls=tls),
            UnsubscribeLinks(settings.secret_key, settings.app_url),
            settings.email_from or "",
            templates or EmailTemplates(),
        )
    return channels
