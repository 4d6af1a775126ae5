"""What the journey tests read back and tell the store, shared by the flows' end-to-end tests."""

from __future__ import annotations

from datetime import datetime

from shopify_app.models import Decision
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
