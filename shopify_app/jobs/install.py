"""What follows an installation: the store sync, and the webhook subscriptions Chorus manages itself.

A release that handles a new topic re-subscribes existing shops: the subscriptions job runs again for
every shop whose recorded topics differ from what this release handles (`due_subscription_updates`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shopify_app.jobs.queue import JobFailed, enqueue
from shopify_app.jobs.sync import SYNC_JOB
from shopify_app.models import Job, Shop
from shopify_app.settings import Settings
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.subscriptions import desired_topics, ensure_subscriptions, webhook_uri
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled

log = logging.getLogger(__name__)

SUBSCRIPTIONS_JOB = "subscriptions"


class InstallJob:
    def __init__(self, access: ShopifyAccess, settings: Settings) -> None:
        self._access = access
        self._settings = settings
        self._subscriptions = SubscriptionsJob(access, settings)

    def __call__(self, job: Job, now: datetime) -> None:
        if self._settings.sync_on_install:
            with Session(self._access.runtime.engine) as session, session.begin():
                enqueue(session, job.shop_id, SYNC_JOB, now)
        self._subscriptions(job, now)


class SubscriptionsJob:
    def __init__(self, access: ShopifyAccess, settings: Settings) -> None:
        self._access = access
        self._settings = settings

    def __call__(self, job: Job, now: datetime) -> None:
        if self._settings.webhooks_managed_by != "app":
            return  # shopify.app.toml declares them; creating them too would double every delivery
        topics = desired_topics(self._settings)
        try:
            api = self._access.admin_api(job.shop_id)
            result = ensure_subscriptions(api, topics, webhook_uri(self._settings))
        except ShopUninstalled:
            log.info("subscriptions job for shop %s: the shop uninstalled meanwhile", job.shop_id)
            return
        except NoUsableToken as exc:
            raise JobFailed(str(exc)) from exc
        with Session(self._access.runtime.engine) as session, session.begin():
            shop = session.get(Shop, job.shop_id, with_for_update=True)
            if shop is not None:
                shop.webhook_topics = topics_text(topics)
        log.info(
            "shop %s: %d webhook subscriptions in place, %d stale removed",
            job.shop_id, len(result.kept), len(result.stale),
        )  # fmt: skip


def topics_text(topics: tuple[str, ...]) -> str:
    return ",".join(sorted(topics))


def enqueue_subscription_updates(engine: Engine, settings: Settings, now: datetime) -> int:
    """Queue the subscriptions job for every installed shop subscribed to another release's topics (a shop
    still being installed has none recorded yet: its install job subscribes it)."""
    topics = desired_topics(settings)
    if not topics:
        return 0
    wanted = topics_text(topics)
    with Session(engine) as session, session.begin():
        shops = session.exec(
            select(Shop.id)
            .where(Shop.installed == True)  # noqa: E712
            .where(col(Shop.webhook_topics).is_not(None), col(Shop.webhook_topics) != wanted)
        ).all()
        for shop_id in shops:
            assert shop_id is not None
            enqueue(session, shop_id, SUBSCRIPTIONS_JOB, now)
    return len(shops)
