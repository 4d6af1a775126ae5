"""Sending over SMTP, configured by one URL.

`smtp://user:pass@host:587` (STARTTLS, required whenever credentials are given: they never travel in
clear), `smtps://user:pass@host:465` (TLS from the first byte), `smtp://127.0.0.1:1025` (plain, for a
local development server).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from connectors.channel import Handover
from connectors.delivery import AddressProblem, DeliveryError, Failure
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
    """Hands messages to one SMTP server.

    Inside `with sender.sessions():` each thread keeps its session open for the next message (up to
    `messages_per_session`), and every session is closed when the block ends; outside, each message has a
    session of its own. A reused session the server dropped meanwhile is replaced once, before the envelope:
    nothing can have been sent on it yet.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        timeout: float = 30.0,
        tls: ssl.SSLContext | None = None,
        messages_per_session: int = 100,
    ) -> None:
        self._config = config
        self._timeout = timeout
        self._tls = tls or ssl.create_default_context()
        self._messages_per_session = messages_per_session
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()
        self._lock = threading.Lock()
        self._scopes = 0

    @contextmanager
    def sessions(self) -> Iterator[None]:
        """Keep sessions open for many messages until the block ends."""
        with self._lock:
            self._scopes += 1
        try:
            yield
        finally:
            with self._lock:
                self._scopes -= 1
                last = self._scopes == 0
            if last:
                self.close()

    def send(self, email: OutgoingEmail, now: datetime) -> Handover:
        """Hand the message over; the hand-over names its Message-ID. Raises DeliveryError saying what is known."""
        message_id, data = build(email, now)
        connection = self._ready(email)
        # Only now can the message have left: an error without the server's answer is an unknown.
        try:
            code, reply = connection.data(data)
        except smtplib.SMTPDataError as exc:
            self._release(connection)
            raise _refusal(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(connection)
            raise DeliveryError(Failure.UNKNOWN, f"connection lost during DATA: {exc}") from exc
        if code != 250:
            self._release(connection)
            raise _refusal(code, reply)
        self._local.sent = getattr(self._local, "sent", 0) + 1
        if not self._scopes or self._local.sent >= self._messages_per_session:
            self._drop(connection)
        return Handover(provider="smtp", provider_message_id=message_id)

    def close(self) -> None:
        """Close every session this sender holds open."""
        with self._lock:
            sessions, self._open = list(self._open), set()
        for connection in sessions:
            _quit(connection)
        self._local = threading.local()

    def _ready(self, email: OutgoingEmail) -> smtplib.SMTP:
        """A session with the envelope of `email` accepted (MAIL FROM, RCPT TO)."""
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None) if self._scopes else None
        if connection is not None:
            try:
                self._envelope(connection, email)
                return connection
            except DeliveryError as exc:
                if not isinstance(exc.__cause__, (OSError, smtplib.SMTPServerDisconnected)):
                    self._release(connection)
                    raise
                self._drop(connection)  # dropped while idle: a new session, once
        connection = self._session()
        try:
            self._envelope(connection, email)
        except DeliveryError as exc:
            if isinstance(exc.__cause__, (OSError, smtplib.SMTPException)):
                self._drop(connection)
            else:
                self._release(connection)
            raise
        return connection

    def _session(self) -> smtplib.SMTP:
        try:
            connection = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(Failure.NOT_SENT, f"cannot connect to {self._config.host}: {exc}") from exc
        self._local.connection, self._local.sent = connection, 0
        with self._lock:
            self._open.add(connection)
        return connection

    def _release(self, connection: smtplib.SMTP) -> None:
        """After a refusal: inside `sessions()` the session stays, its envelope cleared; else it is closed."""
        if not self._scopes:
            self._drop(connection)
            return
        try:
            connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop(connection)

    def _drop(self, connection: smtplib.SMTP) -> None:
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            self._open.discard(connection)
        _quit(connection)

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


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


def _refusal(code: int, reply: bytes | str, *, sender: bool = False) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    # 5xx about the recipient or the content is final; 4xx, and any refusal of our own sender address
    # (a configuration problem), may pass.
    if 500 <= code < 600 and not sender:
        return DeliveryError(Failure.REFUSED, f"{code} {text}", problem=AddressProblem.INVALID)
    return DeliveryError(Failure.NOT_SENT, f"{code} {text}")
