"""Telling Shopify about a consent change made through Chorus (an unsubscribe link, a texted STOP or START, a
sign-up form)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shopify_app.clock import parse_instant
from shopify_app.jobs.queue import JobFailed
from shopify_app.models import Job
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import AdminApi, UserErrorsError
from shopify_app.shopify.admin_queries import update_email_consent, update_sms_consent
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled


class ConsentWriteBackJob:
    """One customer's email or SMS consent, as the person gave it to Chorus, set on Shopify's record."""

    def __init__(self, access: ShopifyAccess, update: Callable[..., None]) -> None:
        self._access = access
        self._update = update

    def __call__(self, job: Job, now: datetime) -> None:
        customer_gid = f"gid://shopify/Customer/{int(job.arguments['customer_id'])}"
        # Jobs queued before they carried a state were unsubscribes; a keyword is the person's single opt-in.
        state = str(job.arguments.get("state") or "UNSUBSCRIBED")
        level = job.arguments.get("level") or ("SINGLE_OPT_IN" if state == "SUBSCRIBED" else None)
        try:
            api: AdminApi = self._access.admin_api(job.shop_id)
            self._update(api, customer_gid, state=state, opt_in_level=level,
                         changed_at=parse_instant(str(job.arguments["at"])))  # fmt: skip
        except ShopUninstalled:
            return  # nothing to tell; Chorus's own record stands
        except (NoUsableToken, UserErrorsError) as exc:
            raise JobFailed(str(exc)) from exc


def email_consent_job(access: ShopifyAccess) -> ConsentWriteBackJob:
    return ConsentWriteBackJob(access, update_email_consent)


def sms_consent_job(access: ShopifyAccess) -> ConsentWriteBackJob:
    return ConsentWriteBackJob(access, update_sms_consent)
