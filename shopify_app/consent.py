"""Consent signals Chorus collects or acts on: each kept as proof (`consent_records`, append-only), its effect
applied at once, and, for email and SMS, passed on to Shopify's record of the customer, so that the store and
every other app agree.

A Chorus opt-out (an unsubscribe link, STOP) suppresses the address on the channel until an explicit opt-in
lifts it (`flows.consent.lifts_opt_out`); Shopify's own states come in through the mirror.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from flows.consent import (
    CHORUS_SOURCES,
    SINGLE_OPT_IN,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Source,
    lifts_opt_out,
    stands_as_opt_out,
)
from flows.keywords import Keyword
from shopify_app.jobs.queue import enqueue
from shopify_app.models import ConsentRecord, Customer
from shopify_app.suppressions import UNSUBSCRIBED as OPTED_OUT
from shopify_app.suppressions import lift_opt_out, suppress

# The jobs that tell Shopify; their names are those queued jobs were given before consent had sources.
EMAIL_CONSENT_JOB = "email_unsubscribe"
SMS_CONSENT_JOB = "sms_consent"
WRITE_BACK_JOBS = {"email": EMAIL_CONSENT_JOB, "sms": SMS_CONSENT_JOB}


def record_consent(
    session: Session,
    shop_id: int,
    *,
    channel: str,
    address: str,
    state: str,
    source: Source,
    at: datetime,
    level: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    message_id: int | None = None,
) -> ConsentRecord:
    """Keep the signal, apply it, and tell Shopify of a change made in Chorus."""
    address = address.strip().lower() if channel == "email" else address
    customers = _customers_at(session, shop_id, channel, address)
    row = ConsentRecord(
        shop_id=shop_id, customer_id=customers[0] if customers else None, address=address, channel=channel,
        state=state, opt_in_level=level, consent_updated_at=at, source=source, evidence=dict(evidence or {}),
        recorded_at=at,
    )  # fmt: skip
    session.add(row)
    if stands_as_opt_out(source, state):
        suppress(session, shop_id=shop_id, channel=channel, address=address, reason=OPTED_OUT,
                 message_id=message_id, now=at)  # fmt: skip
    elif lifts_opt_out(source, state, level):
        lift_opt_out(session, shop_id=shop_id, channel=channel, address=address)
    job = WRITE_BACK_JOBS.get(channel)
    if job is not None and source in CHORUS_SOURCES and state in (SUBSCRIBED, UNSUBSCRIBED):
        for customer_id in customers:
            enqueue(session, shop_id, job, at,
                    {"customer_id": customer_id, "state": state.upper(), "level": (level or "").upper() or None,
                     "at": at.isoformat()})  # fmt: skip
    return row


def _customers_at(session: Session, shop_id: int, channel: str, address: str) -> list[int]:
    """The shop's customers with this address on the channel (a number may be shared: each is told)."""
    if channel not in ("email", "sms", "whatsapp"):
        return []  # push and inbox are addressed by browser, not by anything a customer record holds
    column = col(Customer.email) if channel == "email" else col(Customer.phone)
    query = select(Customer.customer_id).where(Customer.shop_id == shop_id, column == address)
    return list(session.exec(query.order_by(col(Customer.customer_id))))


def record_keyword(
    session: Session, shop_id: int, channel: str, number: str, said: Keyword, provider_message_id: Any, at: datetime
) -> None:
    """A texted STOP or START (SMS, WhatsApp): the person's own word, kept with the provider's id of the message."""
    opted_in = said is Keyword.OPT_IN
    evidence: dict[str, Any] = {"keyword": str(said)}
    if isinstance(provider_message_id, str) and provider_message_id:
        evidence["provider_message_id"] = provider_message_id[:100]
    record_consent(session, shop_id, channel=channel, address=number, state=SUBSCRIBED if opted_in else UNSUBSCRIBED,
                   source=Source.KEYWORD, at=at, level=SINGLE_OPT_IN if opted_in else None,
                   evidence=evidence)  # fmt: skip
