"""Sending over SMTP, configured by one URL.

`smtp://user:pass@host:587` (STARTTLS, required whenever credentials are given: they never travel in
clear), `smtps://user:pass@host:465` (TLS from the first byte), `smtp://127.0.0.1:1025` (plain, for a
local development server).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from connectors.channel import Handover
from connectors.delivery import DeliveryError, Failure
from connectors.email.message import OutgoingEmail, build


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def starttls(self) -> bool:
        return self.username is not None and not self.implicit_tls

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"expected smtp:// or smtps://, got {parts.scheme or 'no scheme'}")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        implicit_tls = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        default_port = 465 if implicit_tls else (587 if username else 25)
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            implicit_tls=implicit_tls,
            username=username,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpSender:
    def __init__(self, config: SmtpConfig, *, timeout: float = 30.0, tls: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._timeout = timeout
        self._tls = tls or ssl.create_default_context()

    def send(self, email: OutgoingEmail, now: datetime) -> Handover:
        """Hand the message over; the hand-over names its Message-ID. Raises DeliveryError saying what is known."""
        message_id, data = build(email, now)
        try:
            connection = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(Failure.NOT_SENT, f"cannot connect to {self._config.host}: {exc}") from exc
        with connection:
            self._envelope(connection, email)
            # Only now can the message have left: an error without the server's answer is an unknown.
            try:
                code, reply = connection.data(data)
            except smtplib.SMTPDataError as exc:
                raise _refusal(exc.smtp_code, exc.smtp_error) from exc
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryError(Failure.UNKNOWN, f"connection lost during DATA: {exc}") from exc
        if code != 250:
            raise _refusal(code, reply)
        return Handover(provider="smtp", provider_message_id=message_id)

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        if config.implicit_tls:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=self._timeout, context=self._tls
            )
        else:
            connection = smtplib.SMTP(config.host, config.port, timeout=self._timeout)
        try:
            connection.ehlo()
            if config.starttls:
                if not connection.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS; refusing to log in")
                connection.starttls(context=self._tls)
                connection.ehlo()
            if config.username is not None:
                connection.login(config.username, config.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _envelope(self, connection: smtplib.SMTP, email: OutgoingEmail) -> None:
        try:
            code, reply = connection.mail(email.sender_address)
            if code != 250:
                raise _refusal(code, reply, sender=True)
            code, reply = connection.rcpt(email.recipient)
            if code not in (250, 251):
                raise _refusal(code, reply)
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(Failure.NOT_SENT, f"envelope failed: {exc}") from exc


def _refusal(code: int, reply: bytes | str, *, sender: bool = False) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    # 5xx about the recipient or the content is final; 4xx, and any refusal of our own sender address
    # (a configuration problem), may pass.
    if 500 <= code < 600 and not sender:
        return DeliveryError(Failure.REFUSED, f"{code} {text}")
    return DeliveryError(Failure.NOT_SENT, f"{code} {text}")
