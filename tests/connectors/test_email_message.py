"""An email's bytes, as any mail client reads them back: every text and header arrives as written, 7-bit and
within SMTP's line length, whatever the merchant's templates put in it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given
from hypothesis import strategies as st

from connectors.email.message import OutgoingEmail, build

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
# Any character a template can produce (lone surrogates are not text), line breaks of every kind included.
_BODY = st.lists(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=120)
    | st.sampled_from(["\n", "\r\n", "\r", " \n", "\t\n", ".", "=", "--=_", "\t"]),
    max_size=12,
).map("".join)
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> str:
    """Text as a mail client shows it: SMTP carries every line break as CRLF."""
    return _LINE_BREAKS.sub("\n", text)


def _content(message: EmailMessage, content_type: str) -> str:
    [part] = [p for p in message.walk() if p.get_content_type() == content_type]
    return str(part.get_content())


@given(text=_BODY, html=st.none() | _BODY, subject=st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=80))
def test_a_client_reads_back_every_body_as_written(text: str, html: str | None, subject: str) -> None:
    email = OutgoingEmail("Lümen Läden", "hello@mail.lumen.example", "ada@example.com", subject, text, html)
    message_id, data = build(email, NOW)
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None  # every line ends in CRLF, as SMTP requires
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == message_id
    assert parsed["Subject"] == " ".join(subject.split())
    assert _lines(_content(parsed, "text/plain")) == _lines(text)
    if html is None:
        assert not parsed.is_multipart()
    else:
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
        assert _lines(_content(parsed, "text/html")) == _lines(html)
