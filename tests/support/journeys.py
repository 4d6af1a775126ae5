"""What the journey tests read back and tell the store, shared by the flows' end-to-end tests."""

from __future__ import annotations

import re
from datetime import datetime

from shopify_app.models import Decision, Link
from shopify_app.runtime import Runtime
from tests.support.db import Db
from tests.support.fake_store import iso
from tests.support.pipeline import deliver
from tests.support.smtp import SmtpServer


def flow_decisions(db: Db, flow: str) -> list[tuple[str | None, str, str]]:
    """(step, outcome, reason) of every decision of the flow, oldest first."""
    return [(d.step, d.outcome, d.reason) for d in db.all(Decision, Decision.flow == flow)]


def subjects(smtp: SmtpServer) -> list[str]:
    """The subject of every message the SMTP server received, in order."""
    return [str(r.parsed()["Subject"]) for r in smtp.sink.received]


def withdraw_email_consent(runtime: Runtime, customer_id: int, email: str, at: datetime) -> None:
    """The customer unsubscribes from the shop's emails (Shopify's consent webhook)."""
    consent = {"state": "unsubscribed", "opt_in_level": "single_opt_in", "consent_updated_at": iso(at)}
    body = {"customer_id": customer_id, "email_address": email, "email_marketing_consent": consent}
    deliver(runtime, "customers_email_marketing_consent/update", body, triggered_at=iso(at))


SHORT_LINK = re.compile(r"https://chorus\.example/l/([A-Za-z0-9_-]{1,10})")


def followed(db: Db, text: str) -> str:
    """The text with each short link replaced by the target stored for it (every one of them must exist)."""
    targets = {link.id: link.target for link in db.all(Link)}
    return SHORT_LINK.sub(lambda found: targets[found.group(1)], text)
