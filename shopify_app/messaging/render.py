"""Rendering email from templates in Jinja2's sandbox.

Templates are treated as merchant-written: the sandbox refuses access to internals, HTML output is
autoescaped, and an undefined variable is an error rather than a silent blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    html: str
    text: str

    @classmethod
    def packaged(cls, name: str) -> EmailTemplate:
        folder = resources.files("shopify_app.messaging") / "templates" / name
        return cls(
            subject=(folder / "subject.txt").read_text(encoding="utf-8"),
            html=(folder / "body.html").read_text(encoding="utf-8"),
            text=(folder / "body.txt").read_text(encoding="utf-8"),
        )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def money(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return ""
    return f"{amount:,.2f} {currency}".strip() if currency else f"{amount:,.2f}"


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = money
    return env


_HTML = _environment(autoescape=True)
_TEXT = _environment(autoescape=False)


def render_email(template: EmailTemplate, context: Mapping[str, Any]) -> RenderedEmail:
    subject = _TEXT.from_string(template.subject).render(context)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # a header: one line
        html=_HTML.from_string(template.html).render(context),
        text=_TEXT.from_string(template.text).render(context),
    )
