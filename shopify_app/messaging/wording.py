"""A merchant's own wording of a flow's step on a channel: checked when saved, rendered in place of the
shipped template from the next message on.

A wording is checked twice before it is kept: as a template (it parses, it has the blocks its channel
reads), then by rendering it for an example customer through the same code a real message goes through,
so that a field the content does not have, or an SMS that would not fit, is refused here and not found on a
customer. What still fails at send time (a product without an image the wording assumed) skips the channel
with the reason, as any rendering error does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy import select as rows_of
from sqlmodel import Session, select

from flows.definition import SendStep
from flows.examples import example_content
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.journeys.facts import shop_facts
from shopify_app.messaging.channels import Unrenderable, sms_payload
from shopify_app.messaging.render import EmailTemplates, TextTemplates
from shopify_app.models import ContentOverride, Shop

_OVERRIDES: Table = ContentOverride.__table__  # type: ignore[attr-defined]
# The channels whose words are the merchant's to choose; WhatsApp says what its approved template says.
WORDED_CHANNELS = ("email", "sms")
MAX_SOURCE = {"email": 64 * 1024, "sms": 2 * 1024}

# (shop id, flow, step, channel) -> the wording's source
Wordings = Mapping[tuple[int, str, str, str], str]


class InvalidWording(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotWorded(LookupError):
    """No such flow, send step or worded channel: the route answers 404."""


@dataclass(frozen=True)
class Described:
    flow: str
    step: str
    channel: str
    source: str | None  # the shop's own wording; None: the shipped one is used
    updated_at: datetime | None
    preview: dict[str, Any]  # what the example customer would get, with the wording in force

    def as_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "step": self.step,
            "channel": self.channel,
            "template": self.source,
            "default": shipped_wording(f"{self.flow}.{self.step}", self.channel),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "preview": self.preview,
        }


@cache
def _renderers() -> tuple[EmailTemplates, TextTemplates]:
    return EmailTemplates(), TextTemplates("sms")


def send_step(catalog: FlowCatalog, flow: str, step: str, channel: str) -> SendStep:
    definition = catalog.get(flow)
    found = next((s for s in definition.send_steps if s.id == step), None) if definition else None
    if found is None:
        raise NotWorded(f"{flow!r} has no send step {step!r}")
    if channel not in WORDED_CHANNELS:
        hint = " (a WhatsApp message is its approved template: map it with the WhatsApp templates)"
        raise NotWorded(f"no wording for channel {channel!r}{hint if channel == 'whatsapp' else ''}")
    return found


def preview(shop: Shop, step: SendStep, channel: str, source: str | None) -> dict[str, Any]:
    """The step on `channel` for the example customer, in `source` (None: the shipped wording); raises
    InvalidWording with what is wrong."""
    emails, texts = _renderers()
    if source is not None:
        if len(source) > MAX_SOURCE[channel]:
            raise InvalidWording([f"at most {MAX_SOURCE[channel]} characters"])
        problems = (emails if channel == "email" else texts).problems(source)
        if problems:
            raise InvalidWording(problems)
    content = example_content(step.content, shop_facts(shop))
    name = shop.name or shop.domain
    try:
        if channel == "email":
            rendered = emails.render(step.content, {"content": content, "unsubscribe_url": "#unsubscribe"}, source)
            return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
        return sms_payload(name, texts.render(step.content, {"content": content}, source), step.sms_segments)
    except Unrenderable as exc:
        raise InvalidWording([f"for the example customer: {exc.detail}"]) from None
    except Exception as exc:  # the merchant's template: whatever it got wrong is theirs to read, in plain words
        raise InvalidWording([f"rendering it for the example customer failed: {exc}"]) from None


def describe_wording(
    session: Session, shop: Shop, catalog: FlowCatalog, flow: str, step: str, channel: str
) -> Described:
    found = send_step(catalog, flow, step, channel)
    row = _row(session, shop, flow, step, channel)
    source = row.source if row is not None else None
    try:
        shown = preview(shop, found, channel, source)
    except InvalidWording as exc:  # saved before the shipped content changed: shown, with what is now wrong
        shown = {"problems": exc.problems}
    return Described(flow, step, channel, source, row.updated_at if row else None, shown)


def set_wording(
    session: Session, shop: Shop, catalog: FlowCatalog, flow: str, step: str, channel: str, source: str, now: datetime
) -> Described:
    """Keep the shop's wording of the step on `channel` once it renders for the example customer; raises
    InvalidWording (nothing kept) or NotWorded. The caller holds the shop's row locked."""
    assert shop.id is not None
    found = send_step(catalog, flow, step, channel)
    shown = preview(shop, found, channel, source)
    row = _row(session, shop, flow, step, channel)
    if row is None:
        row = ContentOverride(shop_id=shop.id, flow=flow, step=step, channel=channel, source=source, updated_at=now)
    row.source, row.updated_at = source, now
    session.add(row)
    session.flush()
    return Described(flow, step, channel, source, now, shown)


def reset_wording(session: Session, shop: Shop, catalog: FlowCatalog, flow: str, step: str, channel: str) -> bool:
    """Back to the shipped wording; False when the shop had none of its own."""
    send_step(catalog, flow, step, channel)
    removed = session.execute(
        delete(_OVERRIDES).where(
            _OVERRIDES.c.shop_id == shop.id,
            _OVERRIDES.c.flow == flow,
            _OVERRIDES.c.step == step,
            _OVERRIDES.c.channel == channel,
        )
    )
    return bool(removed.rowcount)  # type: ignore[attr-defined]


def wordings_for(session: Session, shop_ids: Collection[int]) -> Wordings:
    """Every wording of these shops, for a batch of messages: one query."""
    if not shop_ids:
        return {}
    o = _OVERRIDES.c
    rows = session.execute(
        rows_of(o.shop_id, o.flow, o.step, o.channel, o.source).where(o.shop_id.in_(sorted(shop_ids)))
    )
    return {(r.shop_id, r.flow, r.step, r.channel): r.source for r in rows}


def _row(session: Session, shop: Shop, flow: str, step: str, channel: str) -> ContentOverride | None:
    return session.exec(
        select(ContentOverride).where(
            ContentOverride.shop_id == shop.id,
            ContentOverride.flow == flow,
            ContentOverride.step == step,
            ContentOverride.channel == channel,
        )
    ).first()


@cache
def shipped_wording(content_id: str, channel: str) -> str | None:
    """The shipped wording as a merchant's file would say it: a starting point for their own."""
    folder = files("shopify_app.messaging").joinpath("templates", *content_id.split("."))
    if channel == "sms":
        sms = folder.joinpath("sms.txt")
        return sms.read_text(encoding="utf-8") if sms.is_file() else None
    parts = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}
    blocks = []
    for name, file in parts.items():
        text = folder.joinpath(file).read_text(encoding="utf-8")
        body = _inner_block(text) if name != "subject" else text.strip()
        blocks.append(f"{{% block {name} %}}\n{body}\n{{% endblock %}}")
    return "\n".join(blocks) + "\n"


def _inner_block(template: str) -> str:
    """The `body` block of a shipped email template (without its layout)."""
    start = template.index("{% block body %}") + len("{% block body %}")
    return template[start : template.rindex("{% endblock %}")].strip("\n")
