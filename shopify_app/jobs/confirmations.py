"""Emailing the link that confirms an opt-in (double opt-in).

A job, so that the form answers at once and a provider's hiccup is retried. The email is marked as being handed
over, in its own transaction, before it is: one that may have left (a timeout once the message was written) is
never sent again; one that certainly did not is tried again with the queue's backoff.
"""

from __future__ import annotations

import logging
from datetime import datetime

from markupsafe import escape
from sqlmodel import Session

from connectors.delivery import DeliveryError, Failure
from shopify_app.messaging.channels import EmailChannel, Notice, envelope_for
from shopify_app.messaging.directory import ChannelDirectory
from shopify_app.models import ConsentConfirmation, Job, Shop
from shopify_app.runtime import Runtime
from shopify_app.signup import confirmation_token

log = logging.getLogger(__name__)


def confirmation_notice(shop_name: str, url: str, channels: list[str]) -> Notice:
    what = " and ".join({"email": "emails", "sms": "text messages"}.get(c, c) for c in channels)
    text = (
        f"Please confirm that you would like {what} from {shop_name}:\n\n{url}\n\n"
        "If you did not ask for them, ignore this email: nothing will be sent."
    )
    html = (
        f"<p>Please confirm that you would like {escape(what)} from {escape(shop_name)}.</p>"
        f'<p><a href="{escape(url)}">Confirm</a></p>'
        "<p>If you did not ask for them, ignore this email: nothing will be sent.</p>"
    )
    return Notice(f"Confirm your subscription to {shop_name}", text, html)


class ConfirmationJob:
    def __init__(self, runtime: Runtime, directory: ChannelDirectory) -> None:
        self._runtime = runtime
        self._directory = directory

    def __call__(self, job: Job, now: datetime) -> None:
        runtime = self._runtime
        with Session(runtime.engine) as session, session.begin():
            row = session.get(ConsentConfirmation, int(job.arguments["confirmation_id"]), with_for_update=True)
            shop = session.get(Shop, job.shop_id)
            if row is None or shop is None or row.shop_id != job.shop_id or row.confirmed_at is not None:
                return  # erased, confirmed already, or never this shop's
            if row.sending_at is not None:
                log.warning("shop %s: a confirmation email may have left already; not sent again", job.shop_id)
                return
            if row.expires_at <= now:
                return
            self._directory.load(session, [shop])
            channel = self._directory.channel(job.shop_id, "email")
            if not isinstance(channel, EmailChannel):
                log.warning("shop %s: no email channel to send a confirmation with", job.shop_id)
                return
            row.sending_at = now
            token = confirmation_token(runtime.settings.secret_key, row.id or 0)
            url = f"{runtime.settings.app_url.rstrip('/')}/confirm/{token}"
            notice = confirmation_notice(shop.name or shop.domain, url, sorted(row.opt_ins))
            envelope = envelope_for(shop, 0, row.address)
            confirmation_id = row.id
        try:
            channel.send_notice(notice, envelope, now)
        except DeliveryError as exc:
            if exc.failure is Failure.NOT_SENT:
                with Session(runtime.engine) as session, session.begin():
                    again = session.get(ConsentConfirmation, confirmation_id)
                    if again is not None:
                        again.sending_at = None
                raise  # certainly not sent: the queue tries again with backoff
            log.warning("shop %s: a confirmation email was not sent (%s)", job.shop_id, exc.failure)
            return
        with Session(runtime.engine) as session, session.begin():
            sent = session.get(ConsentConfirmation, confirmation_id)
            if sent is not None:
                sent.sent_at = now
