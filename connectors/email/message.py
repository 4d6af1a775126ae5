"""An outgoing email, and its exact bytes on the wire."""

from __future__ import annotations

import binascii
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any


# Python folds long headers at 78 characters and may turn an unbreakable one into an RFC 2047 encoded
# word, which breaks List-Unsubscribe for one-click clients. RFC 5322 allows lines of 998 characters.
# The compat32 policy takes headers as given (encoded words only where `Header` makes them): it builds a
# message several times faster than the default policy's header parsing, which a busy sender feels.
class _WirePolicy(Compat32):
    """compat32 on the wire, without its folding machinery for the headers that need none (plain ASCII, one
    line, within the line length): it costs more than the rest of building a message."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and "\r" not in value
            and "\n" not in value
            and len(name) + 2 + len(value) <= (self.max_line_length or 998)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


WIRE_POLICY = _WirePolicy(linesep="\r\n", max_line_length=998)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the generator takes for one


class _WireGenerator(BytesGenerator):
    """The standard generator, writing a body's lines in one piece: it writes each of a message's hundreds
    of lines on its own, which costs more than the rest of building the message. The bytes are the same."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            linesep = WIRE_POLICY.linesep  # the only policy it writes with
            self.write(lines.replace("\n", linesep) if "\r" not in lines else _LINE_BREAK.sub(linesep, lines))


@dataclass(frozen=True)
class OutgoingEmail:
    sender_name: str
    sender_address: str
    recipient: str
    subject: str
    text: str
    html: str | None
    reply_to: str | None = None
    # RFC 8058 one-click unsubscribe: an https URL that accepts a POST without cookies.
    unsubscribe_url: str | None = None
    reference: str | None = None  # the sender's own id of the message, for providers that carry one back


def build(email: OutgoingEmail, sent_at: datetime) -> tuple[str, bytes]:
    """The Message-ID and the exact bytes to transmit."""
    text = _part(email.text, "plain")
    message: Message[str, Any] = text
    if email.html is not None:
        # Both parts are quoted-printable, where "=_" never occurs (every "=" starts an escape of two hex
        # digits or a soft line break), so this boundary cannot clash with the text: the generator need not
        # search the parts for it (a regular expression compiled afresh for every message).
        message = MIMEMultipart("alternative", boundary=f"=_{secrets.token_hex(12)}", policy=WIRE_POLICY)
        message.attach(text)
        message.attach(_part(email.html, "html"))
    domain = email.sender_address.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(sent_at)
    message["From"] = formataddr((email.sender_name, email.sender_address), charset="utf-8")
    message["To"] = email.recipient
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = _header(email.subject)
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    out = io.BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=WIRE_POLICY).flatten(message)
    return message_id, out.getvalue()


def _part(body: str, subtype: str) -> MIMENonMultipart:
    """UTF-8 text as quoted-printable (readable in the raw message, 7-bit safe, and within SMTP's 998
    characters a line), encoded by binascii's C encoder rather than the email package's Python one."""
    part = MIMENonMultipart("text", subtype, policy=WIRE_POLICY, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    if "\r" in body:  # binascii keeps a lone CR as it is; every kind of line break is one line break
        body = _LINE_BREAK.sub("\n", body)
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _header(value: str) -> Any:
    """ASCII as it is; anything else as RFC 2047 encoded words. Line breaks never reach a header."""
    flat = " ".join(value.split())
    return flat if flat.isascii() else Header(flat, "utf-8")
