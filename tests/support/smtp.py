"""A real SMTP server on loopback (aiosmtpd) that keeps every message's bytes exactly as received."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.net import free_port


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes  # as it came over the wire
    session: int = 0  # which SMTP session (connection) it came on, numbered from 1

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def part(self, content_type: str) -> str:
        for part in self.parsed().walk():
            if part.get_content_type() == content_type:
                return str(part.get_content()).replace("\r\n", "\n")
        raise AssertionError(f"no {content_type} part")


@dataclass
class Sink:
    """Collects messages; can be told to refuse recipients or to hang in DATA."""

    received: list[Received] = field(default_factory=list)
    data_started: threading.Event = field(default_factory=threading.Event)
    refuse_with: str | None = None  # e.g. "550 5.1.1 no such user"
    hang_in_data: bool = False
    sessions: dict[int, int] = field(default_factory=dict)  # id of aiosmtpd's session -> its number

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        number = self.sessions.setdefault(id(session), len(self.sessions) + 1)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, session=number)
        )
        self.data_started.set()
        if self.hang_in_data:
            await asyncio.sleep(3600)  # the client is killed meanwhile
        return "250 Message accepted"


@dataclass
class SmtpServer:
    sink: Sink
    port: int
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def _authenticator(username: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            username.encode(),
            password.encode(),
        )
        return AuthResult(success=ok)

    return check


@contextmanager
def smtp_server(
    *,
    sink: Sink | None = None,
    tls_directory: Path | None = None,
    implicit_tls: bool = False,
    require_starttls: bool = False,
    credentials: tuple[str, str] | None = None,
) -> Iterator[SmtpServer]:
    sink = sink or Sink()
    kwargs: dict[str, Any] = {}
    ca_file = None
    server_tls = None
    if tls_directory is not None:
        server_tls, ca_file = self_signed_tls(tls_directory)
    if credentials is not None:
        kwargs.update(authenticator=_authenticator(*credentials), auth_require_tls=True)
    if server_tls is not None and not implicit_tls:
        kwargs.update(tls_context=server_tls, require_starttls=require_starttls)
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_tls if implicit_tls else None,
        ready_timeout=10,
        **kwargs,
    )
    controller.start()
    try:
        yield SmtpServer(sink=sink, port=port, ca_file=ca_file)
    finally:
        controller.stop(no_assert=True)


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the CA file a client needs to trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "smtp-cert.pem"
    key_file = directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
