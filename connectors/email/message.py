"""An outgoing email, and its exact bytes on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

# Python folds long headers at 78 characters and may turn an unbreakable one into an RFC 2047 encoded
# word, which breaks List-Unsubscribe for one-click clients. RFC 5322 allows lines of 998 characters.
WIRE_POLICY = SMTP.clone(max_line_length=998)


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


def build(email: OutgoingEmail, sent_at: datetime) -> tuple[str, bytes]:
    """The Message-ID and the exact bytes to transmit."""
    message = EmailMessage(policy=WIRE_POLICY)
    domain = email.sender_address.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(sent_at)
    message["From"] = Address(display_name=email.sender_name, addr_spec=email.sender_address)
    message["To"] = email.recipient
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message_id, message.as_bytes(policy=WIRE_POLICY)
