"""The SMTP connector against a real SMTP server on loopback: plain, STARTTLS, implicit TLS, failures."""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.delivery import DeliveryError, Failure
from connectors.email.message import OutgoingEmail
from connectors.email.smtp import SmtpConfig, SmtpSender
from tests.support.net import free_port
from tests.support.smtp import Sink, smtp_server

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
LONG_URL = "https://chorus.example/unsubscribe/" + "eyJtIjo0Mn0." + "x" * 120
EMAIL = OutgoingEmail(
    sender_name="Lumen Lamps",
    sender_address="hello@mail.lumen.example",
    recipient="ada@example.com",
    subject="You left something at Lumen Lamps",
    text="Hi Ada,\nYour lamp is waiting.\n",
    html="<p>Hi Ada,</p><p>Your lamp is waiting.</p>",
    reply_to="shop@lumen.example",
    unsubscribe_url=LONG_URL,
)


def sender(url: str, ca_file: Path | None = None, **options: Any) -> SmtpSender:
    tls = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    return SmtpSender(SmtpConfig.from_url(url), timeout=5, tls=tls, **options)


def test_plain_delivery_puts_exact_headers_and_both_parts_on_the_wire() -> None:
    with smtp_server() as server:
        handover = sender(server.url).send(EMAIL, NOW)

    [received] = server.sink.received
    assert (received.mail_from, received.recipients) == ("hello@mail.lumen.example", ["ada@example.com"])
    raw = received.data
    # One line each, unencoded, exactly as RFC 8058 requires.
    assert f"List-Unsubscribe: <{LONG_URL}>\r\n".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0]
    parsed = received.parsed()
    assert (handover.provider, parsed["Message-ID"]) == ("smtp", handover.provider_message_id)
    assert parsed["From"] == "Lumen Lamps <hello@mail.lumen.example>"
    assert parsed["Reply-To"] == "shop@lumen.example"
    assert parsed.get_content_type() == "multipart/alternative"
    assert received.part("text/plain") == EMAIL.text
    assert "<p>Your lamp is waiting.</p>" in received.part("text/html")


def test_starttls_with_credentials(tmp_path: Path) -> None:
    with smtp_server(tls_directory=tmp_path, require_starttls=True, credentials=("mailer", "s3cret/+")) as server:
        url = f"smtp://mailer:s3cret%2F%2B@127.0.0.1:{server.port}"
        sender(url, server.ca_file).send(EMAIL, NOW)
    assert len(server.sink.received) == 1


def test_wrong_credentials_are_not_sent(tmp_path: Path) -> None:
    with (
        smtp_server(tls_directory=tmp_path, require_starttls=True, credentials=("mailer", "right")) as server,
        pytest.raises(DeliveryError) as raised,
    ):
        sender(f"smtp://mailer:wrong@127.0.0.1:{server.port}", server.ca_file).send(EMAIL, NOW)
    assert raised.value.failure is Failure.NOT_SENT
    assert server.sink.received == []


def test_credentials_never_travel_without_starttls() -> None:
    with smtp_server() as server, pytest.raises(DeliveryError, match="does not offer STARTTLS") as raised:
        sender(f"smtp://mailer:secret@127.0.0.1:{server.port}").send(EMAIL, NOW)
    assert raised.value.failure is Failure.NOT_SENT
    assert server.sink.received == []


def test_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tls_directory=tmp_path, implicit_tls=True) as server:
        sender(f"smtps://127.0.0.1:{server.port}", server.ca_file).send(EMAIL, NOW)
    assert len(server.sink.received) == 1


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    with smtp_server(tls_directory=tmp_path, implicit_tls=True) as server, pytest.raises(DeliveryError) as raised:
        sender(f"smtps://127.0.0.1:{server.port}").send(EMAIL, NOW)  # the system store does not trust it
    assert raised.value.failure is Failure.NOT_SENT


@pytest.mark.parametrize(
    ("reply", "failure"),
    [("550 5.1.1 no such user", Failure.REFUSED), ("451 4.3.0 try again later", Failure.NOT_SENT)],
)
def test_a_refused_recipient(reply: str, failure: Failure) -> None:
    with smtp_server(sink=Sink(refuse_with=reply)) as server, pytest.raises(DeliveryError) as raised:
        sender(server.url).send(EMAIL, NOW)
    assert raised.value.failure is failure


def test_no_server_means_not_sent() -> None:
    with pytest.raises(DeliveryError) as raised:
        sender(f"smtp://127.0.0.1:{free_port()}").send(EMAIL, NOW)
    assert raised.value.failure is Failure.NOT_SENT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", SmtpConfig("127.0.0.1", 1025, implicit_tls=False)),
        ("smtp://u:p@mail.example", SmtpConfig("mail.example", 587, implicit_tls=False, username="u", password="p")),
        ("smtps://u:p@mail.example", SmtpConfig("mail.example", 465, implicit_tls=True, username="u", password="p")),
    ],
)
def test_urls(url: str, expected: SmtpConfig) -> None:
    assert SmtpConfig.from_url(url) == expected


def test_a_url_that_is_not_smtp_is_refused() -> None:
    with pytest.raises(ValueError, match="expected smtp:// or smtps://"):
        SmtpConfig.from_url("http://mail.example")


def test_one_session_carries_many_messages_inside_sessions() -> None:
    with smtp_server() as server:
        mailer = sender(server.url)
        with mailer.sessions():
            for number in range(5):
                mailer.send(replace(EMAIL, recipient=f"customer{number}@example.com"), NOW)
        mailer.send(EMAIL, NOW)  # outside: a session of its own, closed after
    assert [r.session for r in server.sink.received] == [1, 1, 1, 1, 1, 2]
    assert [r.recipients for r in server.sink.received][:2] == [["customer0@example.com"], ["customer1@example.com"]]


def test_a_session_is_renewed_after_its_share_of_messages() -> None:
    with smtp_server() as server:
        mailer = sender(server.url, messages_per_session=2)
        with mailer.sessions():
            for _ in range(5):
                mailer.send(EMAIL, NOW)
    assert [r.session for r in server.sink.received] == [1, 1, 2, 2, 3]


def test_a_refused_recipient_leaves_the_session_usable_for_the_next() -> None:
    sink = Sink()
    with smtp_server(sink=sink) as server:
        mailer = sender(server.url)
        with mailer.sessions():
            mailer.send(EMAIL, NOW)
            sink.refuse_with = "550 5.1.1 no such user"
            with pytest.raises(DeliveryError) as raised:
                mailer.send(replace(EMAIL, recipient="nobody@example.com"), NOW)
            sink.refuse_with = None
            mailer.send(EMAIL, NOW)
    assert raised.value.failure is Failure.REFUSED
    assert [(r.recipients, r.session) for r in sink.received] == [(["ada@example.com"], 1), (["ada@example.com"], 1)]


def test_a_session_the_server_dropped_while_idle_is_replaced_once() -> None:
    with smtp_server() as server:
        mailer = sender(server.url)
        with mailer.sessions():
            mailer.send(EMAIL, NOW)
            for connection in list(mailer._open):  # the server's idle timeout, as the client meets it
                assert connection.sock is not None
                connection.sock.shutdown(socket.SHUT_RDWR)
            mailer.send(EMAIL, NOW)
    assert [r.session for r in server.sink.received] == [1, 2]


def test_non_ascii_names_subjects_and_bodies_arrive_intact() -> None:
    email = replace(
        EMAIL,
        sender_name="Lümen Läden",
        subject="Ada, ton panier t'attend — 2 articles",
        text="Bonjour Ada,\nLa lampe «Étoile» coûte 79,00 €.\n",
        html="<p>La lampe «Étoile» coûte 79,00 €.</p>",
    )
    with smtp_server() as server:
        sender(server.url).send(email, NOW)
    [received] = server.sink.received
    assert received.data.isascii()  # 7-bit on the wire: encoded words and quoted-printable
    parsed = received.parsed()
    assert parsed["From"] == "Lümen Läden <hello@mail.lumen.example>"
    assert parsed["Subject"] == "Ada, ton panier t'attend — 2 articles"
    assert received.part("text/plain") == email.text
    assert "«Étoile» coûte 79,00 €" in received.part("text/html")


def test_a_body_with_very_long_lines_is_accepted_and_arrives_whole() -> None:
    email = replace(EMAIL, text="word " * 400, html="<p>" + "word " * 400 + "</p>")  # lines of 2,000 characters
    with smtp_server() as server:
        sender(server.url).send(email, NOW)
    [received] = server.sink.received
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
    assert received.part("text/plain") == email.text


def test_bodies_that_look_like_mime_boundaries_arrive_as_two_whole_parts() -> None:
    lines = "--=_\n--=_0123456789abcdef01234567\n=_=_ = _ ==\n--boundary--\n"
    email = replace(EMAIL, text=lines, html=f"<pre>{lines}</pre>")
    with smtp_server() as server:
        sender(server.url).send(email, NOW)
    [received] = server.sink.received
    parsed = received.parsed()
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert received.part("text/plain") == email.text
    assert received.part("text/html") == email.html
