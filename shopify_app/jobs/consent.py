"""Telling Shopify about a consent change made through Chorus (an unsubscribe link, a texted STOP or START)."""

from __future__ import annotations

from datetime import datetime

from shopify_app.clock import parse_instant
from shopify_app.jobs.queue import JobFailed
from shopify_app.models import Job
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import UserErrorsError
from shopify_app.shopify.admin_queries import update_email_consent, update_sms_consent
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled


class EmailUnsubscribeJob:
    def __init__(self, access: ShopifyAccess) -> None:
        self._access = access

    def __call__(self, job: Job, now: datetime) -> None:
        customer_gid = f"gid://shopify/Customer/{int(job.arguments['customer_id'])}"
        try:
            update_email_consent(
                self._access.admin_api(job.shop_id),
                customer_gid,
                state="UNSUBSCRIBED",
                opt_in_level=None,
                changed_at=parse_instant(str(job.arguments["at"])),
            )
        except ShopUninstalled:
            return  # nothing to tell; Chorus's own suppression stands
        except (NoUsableToken, UserErrorsError) as exc:
            raise JobFailed(str(exc)) from exc


class SmsConsentJob:
    def __init__(self, access: ShopifyAccess) -> None:
        self._access = access

    def __call__(self, job: Job, now: datetime) -> None:
        customer_gid = f"gid://shopify/Customer/{int(job.arguments['customer_id'])}"
        state = str(job.arguments["state"])
        try:
            update_sms_consent(
                self._access.admin_api(job.shop_id),
                customer_gid,
                state=state,
                # A keyword texted by the customer is their own, single opt-in.
                opt_in_level="SINGLE_OPT_IN" if state == "SUBSCRIBED" else None,
                changed_at=parse_instant(str(job.arguments["at"])),
            )
        except ShopUninstalled:
            return
        except (NoUsableToken, UserErrorsError) as exc:
            raise JobFailed(str(exc)) from exc
