"""Rendering messages from templates in Jinja2's sandbox.

Templates are treated as merchant-written: the sandbox refuses access to internals, HTML output is
autoescaped, and an undefined variable is an error rather than a silent blank. Each content id
(`flow.step`) has its folder (`templates/flow/step/`); a template is compiled once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, Template, TemplateNotFound, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from flows.money import format_money


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@pass_context
def money(context: Context, amount: Decimal | None, currency: str | None) -> str:
    """The price as the shop writes it (its money format) when it is in the shop's currency, else with the
    currency's code: "$79.00", or "79.00 EUR"."""
    if amount is None:
        return ""
    sender = getattr(context.get("content"), "sender", None)
    shop_format = getattr(sender, "money_format", None)
    if shop_format and currency is not None and currency == getattr(sender, "currency", None):
        return format_money(amount, shop_format)
    return f"{amount:,.2f} {currency}".strip() if currency else f"{amount:,.2f}"


class _Sandbox(SandboxedEnvironment):
    """The sandbox's verdict on an attribute depends only on the object's type and the attribute's name (a
    leading underscore, or an internal attribute of functions, methods, frames, generators and the like), so
    it is remembered per type and name: a message looks up dozens of attributes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._verdicts: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = super().is_safe_attribute(obj, attr, value)
        return verdict


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    env = _Sandbox(
        loader=PackageLoader("shopify_app.messaging", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # packaged files do not change under a running process
    )
    env.filters["money"] = money
    return env


def parameters_environment() -> SandboxedEnvironment:
    """The sandbox a merchant's short templates (WhatsApp parameters) render in: plain text, strict."""
    return _environment(autoescape=False)


class EmailTemplates:
    """The email templates of every content id, compiled on first use and kept."""

    def __init__(self) -> None:
        self._html = _environment(autoescape=True)
        self._text = _environment(autoescape=False)

    def has(self, content_id: str) -> bool:
        try:
            self._parts(content_id)
        except TemplateNotFound:
            return False
        return True

    def render(self, content_id: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject, html, text = self._parts(content_id)
        return RenderedEmail(
            subject=" ".join(subject.render(context).split()),  # a header: one line
            html=html.render(context),
            text=text.render(context),
        )

    def _parts(self, content_id: str) -> tuple[Template, Template, Template]:
        folder = content_id.replace(".", "/")
        return (
            self._text.get_template(f"{folder}/subject.txt"),
            self._html.get_template(f"{folder}/body.html"),
            self._text.get_template(f"{folder}/body.txt"),
        )


class TextTemplates:
    """One plain-text template per content id for a channel (`templates/flow/step/<channel>.txt`), compiled on
    first use and kept."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        self._text = _environment(autoescape=False)

    def has(self, content_id: str) -> bool:
        try:
            self._template(content_id)
        except TemplateNotFound:
            return False
        return True

    def render(self, content_id: str, context: Mapping[str, Any]) -> str:
        return " ".join(self._template(content_id).render(context).split())  # one paragraph

    def _template(self, content_id: str) -> Template:
        return self._text.get_template(f"{content_id.replace('.', '/')}/{self._channel}.txt")
