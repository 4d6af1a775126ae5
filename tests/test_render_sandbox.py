"""Message templates render in Jinja's sandbox: what a merchant's template may reach, and what it may not."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from shopify_app.messaging.render import _environment


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
