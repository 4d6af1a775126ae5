"""Message templates render in Jinja's sandbox: what a merchant's template may reach, and what it may not."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from flows.contents import CONTENTS, CartReminder, Item, Sender
from flows.examples import example_content
from flows.facts import ShopFacts
from shopify_app.messaging.render import EmailTemplates, TextTemplates, _environment
from shopify_app.messaging.wording import shipped_wording


@dataclass(frozen=True)
class Line:
    title: str

    def shout(self) -> str:
        return self.title.upper()


@pytest.mark.parametrize(
    "source",
    [
        "{{ line.shout.__func__.__globals__ }}",
        "{{ line.__class__.__mro__ }}",
        "{{ line.shout.__self__ }}",
        "{{ ''.__class__.mro() }}",
    ],
)
def test_internals_stay_out_of_reach_however_often_the_same_names_were_looked_up(source: str) -> None:
    env = _environment(autoescape=True)
    page = env.from_string("{{ line.title }} {{ line.shout() }}")
    for _ in range(3):  # verdicts are remembered per type and name: the remembered ones must be the same
        assert page.render(line=Line("lamp")) == "lamp LAMP"
        with pytest.raises((SecurityError, UndefinedError)):
            env.from_string(source).render(line=Line("lamp"))


def test_html_is_escaped_and_an_undefined_name_is_an_error() -> None:
    env = _environment(autoescape=True)
    assert env.from_string("{{ line.title }}").render(line=Line("<b>lamp</b>")) == "&lt;b&gt;lamp&lt;/b&gt;"
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()


def test_prices_read_as_the_shop_writes_them_and_other_currencies_keep_their_code() -> None:
    sender = Sender(
        "Lumen", "https://lumen.example", "1 Main St", currency="EUR", money_format="{{amount_with_comma_separator}} €"
    )
    items = (
        Item("Lamp", None, 1, Decimal("1234.5"), "EUR", None, None),
        Item("Shade", None, 1, Decimal("29"), "USD", None, None),
    )
    content = CartReminder(sender, "Ada", items, "https://lumen.example/recover", 0)

    text = EmailTemplates().render("abandoned_checkout.reminder", {"content": content, "unsubscribe_url": "u"}).text

    assert "Lamp x 1: 1.234,50 € each" in text
    assert "Shade x 1: 29.00 USD each" in text


@pytest.mark.parametrize("content_id", sorted(CONTENTS))
def test_every_shipped_wording_given_back_as_a_shops_own_renders_the_same_message(content_id: str) -> None:
    """What `GET .../content/<channel>` offers as a starting point is the shipped wording itself."""
    shop = ShopFacts(True, "Lumen Lamps", "1 Main St, Porto", "https://lumen.example", "UTC", "USD", "${{amount}}")
    context = {"content": example_content(content_id, shop), "unsubscribe_url": "https://chorus.example/u/1"}
    emails, texts = EmailTemplates(), TextTemplates("sms")

    def flat(text: str) -> str:
        return " ".join(text.split())

    shipped, own = (
        emails.render(content_id, context),
        emails.render(content_id, context, shipped_wording(content_id, "email")),
    )
    assert (flat(own.subject), flat(own.html), flat(own.text)) == (
        flat(shipped.subject),
        flat(shipped.html),
        flat(shipped.text),
    )
    assert texts.render(content_id, context, shipped_wording(content_id, "sms")) == texts.render(content_id, context)


def test_a_wording_cannot_take_the_unsubscribe_link_or_the_address_out_of_an_email() -> None:
    shop = ShopFacts(True, "Lumen Lamps", "1 Main St, Porto", None, "UTC", "USD", None)
    context = {"content": example_content("welcome.welcome_1", shop), "unsubscribe_url": "https://chorus.example/u/1"}
    bare = "{% block html %}{% endblock %}{% block text %}{% endblock %}"

    rendered = EmailTemplates().render("welcome.welcome_1", context, bare)

    for body in (rendered.html, rendered.text):
        assert "https://chorus.example/u/1" in body
        assert "1 Main St, Porto" in body
