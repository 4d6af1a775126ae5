"""Rendering messages from templates in Jinja2's sandbox.

Templates are treated as merchant-written: the sandbox refuses access to internals, HTML output is
autoescaped, and an undefined variable is an error rather than a silent blank. Each content id
(`flow.step`) has its folder (`templates/flow/step/`); a template is compiled once per process.

A merchant may word a step on a channel itself (its "wording"): one template in the same sandbox, for email
with the blocks `subject`, `html` and `text` (each optional, html and text together), placed in the shop's
layout, which keeps the greeting, the postal address and the unsubscribe link whatever the wording says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, Template, TemplateNotFound, TemplateSyntaxError, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

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


EMAIL_BLOCKS = ("subject", "html", "text")
MAX_COMPILED = 512  # merchants' wordings kept compiled per process


class _Compiled:
    """Templates compiled from source, kept (a few hundred: every shop's wordings), in one environment."""

    def __init__(self, env: SandboxedEnvironment) -> None:
        self.env = env
        self._kept: dict[str, Template] = {}

    def __call__(self, source: str) -> Template:
        template = self._kept.get(source)
        if template is None:
            if len(self._kept) >= MAX_COMPILED:
                self._kept.clear()
            template = self._kept[source] = self.env.from_string(source)
        return template


def _block(template: Template, name: str, context: Mapping[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(dict(context))))


class EmailTemplates:
    """The email templates of every content id, compiled on first use and kept."""

    def __init__(self) -> None:
        self._html = _environment(autoescape=True)
        self._text = _environment(autoescape=False)
        self._html_wordings = _Compiled(self._html)
        self._text_wordings = _Compiled(self._text)

    def has(self, content_id: str) -> bool:
        try:
            self._parts(content_id)
        except TemplateNotFound:
            return False
        return True

    def render(self, content_id: str, context: Mapping[str, Any], wording: str | None = None) -> RenderedEmail:
        """The email of `content_id`, in the merchant's `wording` where it has its own blocks."""
        subject, html, text = self._parts(content_id)
        rendered = RenderedEmail(
            subject=" ".join(subject.render(context).split()),  # a header: one line
            html=html.render(context),
            text=text.render(context),
        )
        if wording is None:
            return rendered
        as_html, as_text = self._html_wordings(wording), self._text_wordings(wording)
        if "subject" in as_text.blocks:
            rendered = replace(rendered, subject=" ".join(_block(as_text, "subject", context).split()))
        if "html" in as_html.blocks:
            html_body = Markup(_block(as_html, "html", context))  # noqa: S704  # escaped as it rendered
            rendered = replace(
                rendered,
                html=self._html.get_template("_wording.html").render({**context, "wording": html_body}),
                text=self._text.get_template("_wording.txt").render(
                    {**context, "wording": _block(as_text, "text", context).strip()}
                ),
            )
        return rendered

    def problems(self, wording: str) -> list[str]:
        """What is wrong with a merchant's email wording as a template (not yet what it renders to)."""
        found = _syntax_problems(self._html, wording)
        if found:
            return found
        blocks = self._html_wordings(wording).blocks
        if not any(name in blocks for name in EMAIL_BLOCKS):
            return ["an email wording sets at least one of the blocks subject, html and text"]
        if ("html" in blocks) != ("text" in blocks):
            return ["the html and text blocks say the same thing for different mail readers: give both or neither"]
        unknown = sorted(set(blocks) - set(EMAIL_BLOCKS))
        return [f"unknown block {name!r} (the blocks are subject, html and text)" for name in unknown]

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
        self._wordings = _Compiled(self._text)

    def has(self, content_id: str) -> bool:
        try:
            self._template(content_id)
        except TemplateNotFound:
            return False
        return True

    def render(self, content_id: str, context: Mapping[str, Any], wording: str | None = None) -> str:
        """The text of `content_id`, or the merchant's `wording` of it, as one paragraph."""
        template = self._wordings(wording) if wording is not None else self._template(content_id)
        return " ".join(template.render(context).split())

    def problems(self, wording: str) -> list[str]:
        """What is wrong with a merchant's wording as a template."""
        found = _syntax_problems(self._text, wording)
        if not found and self._wordings(wording).blocks:
            found = ["a text wording is the message itself, without blocks"]
        return found

    def _template(self, content_id: str) -> Template:
        return self._text.get_template(f"{content_id.replace('.', '/')}/{self._channel}.txt")


def _syntax_problems(env: SandboxedEnvironment, source: str) -> list[str]:
    """A template that does not parse, or that is a layout of its own (the shop's layout is always used)."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    if any(True for _ in tree.find_all(nodes.Extends)):
        return ["a wording cannot extend another template: the shop's layout is always used"]
    if has_literal_link(tree):
        return [LITERAL_LINK]
    stray = [n for n in tree.body if not isinstance(n, nodes.Block) and not _blank(n)]
    if any(isinstance(n, nodes.Block) for n in tree.body) and stray:
        return ["text outside the blocks would never be sent: put it inside subject, html or text"]
    return []


LITERAL_LINK = (
    "a link written out would go uncounted: use the content's links (content.recovery_url, item.url, "
    "content.sender.shop_url), which every message carries as short links"
)
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)")


def has_literal_link(tree: nodes.Template) -> bool:
    """A URL in the template's own text or string constants (not one that comes from the content)."""
    texts = [n.data for n in tree.find_all(nodes.TemplateData)]
    texts += [n.value for n in tree.find_all(nodes.Const) if isinstance(n.value, str)]
    return any(_LINK.search(text) for text in texts)


def _blank(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Output) and all(
        isinstance(part, nodes.TemplateData) and not part.data.strip() for part in node.nodes
    )
