"""A customer's texted keywords: STOP (and its synonyms) withdraws SMS consent for that number on every
flow, at once; START re-subscribes it. Either is passed on to Shopify's own record of the customer's SMS
consent (`customerSmsMarketingConsentUpdate`), so the store and every other app agree."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from shopify_app.jobs.queue import enqueue
from shopify_app.models import Customer
from shopify_app.suppressions import UNSUBSCRIBED, lift_opt_out, suppress

SMS_CONSENT_JOB = "sms_consent"


def sms_opt_out(session: Session, shop_id: int, phone: str, now: datetime) -> None:
    """Nothing more is texted to `phone` (E.164) for this shop, on any flow; Shopify is told."""
    suppress(session, shop_id=shop_id, channel="sms", address=phone, reason=UNSUBSCRIBED, message_id=None, now=now)
    _tell_shopify(session, shop_id, phone, "UNSUBSCRIBED", now)


def sms_opt_in(session: Session, shop_id: int, phone: str, now: datetime) -> None:
    """The number asked to be texted again: its opt-out through Chorus is lifted; Shopify is told. A number a
    provider refused stays refused."""
    lift_opt_out(session, shop_id=shop_id, channel="sms", address=phone)
    _tell_shopify(session, shop_id, phone, "SUBSCRIBED", now)


def _tell_shopify(session: Session, shop_id: int, phone: str, state: str, now: datetime) -> None:
    customers = session.exec(select(Customer.customer_id).where(Customer.shop_id == shop_id, Customer.phone == phone))
    for customer_id in customers:
        enqueue(session, shop_id, SMS_CONSENT_JOB, now,
                {"customer_id": customer_id, "state": state, "at": now.isoformat()})  # fmt: skip
