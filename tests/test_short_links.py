"""Every link of every message goes through `/l/<id>`: short (SMS stays short), counted when followed, and
redirecting only to the target stored with it."""

from __future__ import annotations

import re

import responses
from flask.testing import FlaskClient

from shopify_app.app import create_app
from shopify_app.models import Click, Link, Message, PrivacyRequest
from shopify_app.runtime import Runtime
from tests import test_sms_flow as sms
from tests.support.db import Db
from tests.support.pipeline import deliver
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import AFTER_DUE, abandon, run_worker

mail_runtime, smtp, store, sms_store, twilio = sms.mail_runtime, sms.smtp, sms.store, sms.sms_store, sms.twilio
RECOVERY = "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
SHORT = re.compile(r"https://chorus\.example/l/([A-Za-z0-9_-]+)")


def path_of(url: str) -> str:
    return url.removeprefix("https://chorus.example")


def test_an_emails_links_are_short_and_a_visit_is_counted_then_sent_to_the_stored_target(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)
    [received] = smtp.sink.received
    text, html = received.part("text/plain"), received.part("text/html")

    assert RECOVERY not in text + html
    ids = set(SHORT.findall(text))
    assert ids == set(SHORT.findall(html))  # the same links in both parts
    assert all(len(link_id) <= 10 for link_id in ids)
    assert "https://chorus.example/unsubscribe/" in text  # the signed unsubscribe link is no short link
    recovery = db.one(Link, Link.target == RECOVERY)
    message = db.one(Message)
    assert recovery.message_id == message.id
    client = create_app(store).test_client()

    visit = client.get(f"/l/{recovery.id}?next=https://evil.example", headers={"User-Agent": "Mail/1.0"})

    assert visit.status_code == 302
    assert visit.headers["Location"] == RECOVERY  # the stored target, whatever the request says
    assert visit.headers["Cache-Control"] == "no-store"
    [click] = db.all(Click)
    assert (click.message_id, click.channel, click.link_id, click.user_agent) == (
        message.id, "email", recovery.id, "Mail/1.0",
    )  # fmt: skip


def test_a_scanners_head_is_answered_but_not_counted_and_unknown_or_malformed_ids_are_404(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)
    link = db.one(Link, Link.target == RECOVERY)
    client: FlaskClient = create_app(store).test_client()

    assert client.head(f"/l/{link.id}").status_code == 302
    assert db.all(Click) == []
    for wrong in ("abcdefghij", "x" * 11, "..%2Fetc", "a b", "%00"):
        assert client.get(f"/l/{wrong}").status_code == 404, wrong
    assert db.all(Click) == []


def test_an_sms_carries_the_same_short_link(sms_store: Runtime, twilio: responses.RequestsMock, db: Db) -> None:
    twilio.post(sms.TWILIO, json=sms._created(), status=201)
    sms.abandon_by_sms(sms_store)

    run_worker(sms_store, sms.TEXTING)

    [form] = sms.sent_forms(twilio)
    [link_id] = SHORT.findall(form["Body"])
    assert db.one(Link, Link.id == link_id).target == RECOVERY
    assert RECOVERY not in form["Body"]
    visit = create_app(sms_store).test_client().get(f"/l/{link_id}")
    assert visit.headers["Location"] == RECOVERY
    assert db.one(Click).channel == "sms"


def test_erasing_the_customer_keeps_the_count_of_clicks_but_not_where_the_link_led_or_who_clicked(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store)
    run_worker(store, AFTER_DUE)
    link = db.one(Link, Link.target == RECOVERY)
    create_app(store).test_client().get(f"/l/{link.id}", headers={"User-Agent": "Mail/1.0"})
    deliver(store, "customers/data_request", {"customer": {"email": "ada@example.com"}, "data_request": {"id": 9}})
    run_worker(store, AFTER_DUE)
    export = db.one(PrivacyRequest).export
    assert export is not None
    assert [c["user_agent"] for c in export["clicks"]] == ["Mail/1.0"]

    deliver(store, "customers/redact", {"customer": {"email": "ada@example.com"}, "orders_to_redact": []})
    run_worker(store, AFTER_DUE)

    [click] = db.all(Click)
    assert click.user_agent is None
    assert db.one(Link, Link.id == link.id).target == "https://acme.myshopify.com"
    assert create_app(store).test_client().get(f"/l/{link.id}").headers["Location"] == "https://acme.myshopify.com"
