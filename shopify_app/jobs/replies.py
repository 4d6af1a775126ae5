"""Answering a customer who wrote HELP (or INFO) to the shop's WhatsApp number: the shop's help text, as free
text, which WhatsApp allows only inside the 24 hours after the customer's last message.

Meta's webhook must be answered at once, so the reply is a job. It names the customer's window row, not the
number: erasing the customer deletes the window, and the job then finds nothing to answer. A reply that may
have left (a timeout after the request was written) is never sent again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from connectors.delivery import DeliveryError, Failure
from connectors.whatsapp.cloud import TextMessage, WhatsAppAccount, WhatsAppSender
from shopify_app.http import http_session
from shopify_app.jobs.queue import enqueue
from shopify_app.messaging.accounts import secrets_of
from shopify_app.messaging.channels import help_text
from shopify_app.models import ChannelAccount, Job, Shop, WhatsAppWindow
from shopify_app.runtime import Runtime

log = logging.getLogger(__name__)

WHATSAPP_HELP_JOB = "whatsapp_help"
WINDOW = timedelta(hours=24)


def answer_help_later(session: Session, window: WhatsAppWindow, now: datetime) -> None:
    session.flush()  # the window's id
    assert window.id is not None
    enqueue(session, window.shop_id, WHATSAPP_HELP_JOB, now, {"window_id": window.id})


class WhatsAppHelpJob:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __call__(self, job: Job, now: datetime) -> None:
        runtime = self._runtime
        with Session(runtime.engine) as session:
            window = session.get(WhatsAppWindow, int(job.arguments["window_id"]))
            if window is None or window.shop_id != job.shop_id:
                return  # erased since, or never this shop's
            if now >= window.last_inbound_at + WINDOW:
                log.info("shop %s: a WhatsApp help reply came too late for the window; not sent", job.shop_id)
                return
            shop = session.get(Shop, job.shop_id)
            account = session.exec(
                select(ChannelAccount).where(
                    ChannelAccount.shop_id == job.shop_id, ChannelAccount.channel == "whatsapp"
                )
            ).first()
            if shop is None or account is None or account.provider != "meta":
                return  # disconnected since: nothing to answer with
            meta = WhatsAppAccount(account.settings["phone_number_id"],
                                   secrets_of(runtime.secret_box, account)["access_token"],
                                   runtime.settings.whatsapp_api_base_url,
                                   runtime.settings.whatsapp_api_version)  # fmt: skip
            reply = TextMessage(window.phone, help_text(shop.name or shop.domain, shop.email))
        try:
            WhatsAppSender(meta, http_session()).send(reply, now)
        except DeliveryError as exc:
            if exc.failure is Failure.NOT_SENT:
                raise  # certainly not sent: the queue tries again with backoff
            log.warning("shop %s: the WhatsApp help reply was not sent (%s)", job.shop_id, exc.failure)
