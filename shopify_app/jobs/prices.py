"""Replacing an SMS's estimated cost by what Twilio charged, once Twilio has priced it (minutes after it went
out; its status callbacks carry no price)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from connectors.sms.twilio import TwilioAccount, message_price
from shopify_app.http import http_session
from shopify_app.jobs.queue import JobFailed, enqueue
from shopify_app.messaging.accounts import secrets_of
from shopify_app.models import ChannelAccount, Job, Message
from shopify_app.runtime import Runtime

TWILIO_PRICE_JOB = "twilio_price"
PRICED_AFTER = timedelta(minutes=10)  # Twilio prices a message some minutes after its final status


def ask_price_later(session: Session, message: Message, now: datetime) -> None:
    assert message.id is not None
    enqueue(session, message.shop_id, TWILIO_PRICE_JOB, now, {"message_id": message.id}, after=now + PRICED_AFTER)


class TwilioPriceJob:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __call__(self, job: Job, now: datetime) -> None:
        runtime = self._runtime
        with Session(runtime.engine) as session, session.begin():
            message = session.get(Message, int(job.arguments["message_id"]))
            if message is None or message.shop_id != job.shop_id or not message.provider_message_id:
                return  # erased, or never this shop's: nothing to price
            account = session.exec(
                select(ChannelAccount).where(ChannelAccount.shop_id == job.shop_id, ChannelAccount.channel == "sms")
            ).first()
            if account is None or account.provider != "twilio":
                return  # disconnected since: the estimate stands
            twilio = TwilioAccount(
                account.settings["account_sid"], secrets_of(runtime.secret_box, account)["auth_token"],
                from_number=account.settings.get("from"),
                messaging_service_sid=account.settings.get("messaging_service_sid"),
                base_url=runtime.settings.twilio_api_base_url,
            )  # fmt: skip
            sid = message.provider_message_id
        try:
            cost, currency = message_price(twilio, http_session(), sid)  # PriceUnknown: retried with backoff
        except ValueError as exc:
            raise JobFailed(str(exc)) from exc
        with Session(runtime.engine) as session, session.begin():
            priced = session.get(Message, int(job.arguments["message_id"]), with_for_update=True)
            if priced is not None:
                priced.cost, priced.cost_currency = cost, currency
