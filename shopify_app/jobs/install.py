"""What follows an installation: the webhook subscriptions Chorus manages itself."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from shopify_app.jobs.queue import JobFailed, enqueue
from shopify_app.jobs.sync import SYNC_JOB
from shopify_app.models import Job
from shopify_app.settings import Settings
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.subscriptions import desired_topics, ensure_subscriptions, webhook_uri
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled

log = logging.getLogger(__name__)


class InstallJob:
    def __init__(self, access: ShopifyAccess, settings: Settings) -> None:
        self._access = access
        self._settings = settings

    def __call__(self, job: Job, now: datetime) -> None:
        if self._settings.sync_on_install:
            with Session(self._access.runtime.engine) as session, session.begin():
                enqueue(session, job.shop_id, SYNC_JOB, now)
        if self._settings.webhooks_managed_by != "app":
            return  # shopify.app.toml declares them; creating them too would double every delivery
        try:
            api = self._access.admin_api(job.shop_id)
            result = ensure_subscriptions(api, desired_topics(self._settings), webhook_uri(self._settings))
        except ShopUninstalled:
            log.info("install job for shop %s: the shop uninstalled meanwhile", job.shop_id)
        except NoUsableToken as exc:
            raise JobFailed(str(exc)) from exc
        else:
            log.info(
                "shop %s: %d webhook subscriptions in place, %d stale removed",
                job.shop_id, len(result.kept), len(result.stale),
            )  # fmt: skip
