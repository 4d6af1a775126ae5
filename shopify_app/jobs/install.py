"""What follows an installation: the store sync, the webhook subscriptions Chorus manages itself, and the
shop's web pixel.

A release that handles a new topic re-subscribes existing shops: the subscriptions job runs again for
every shop whose recorded topics differ from what this release handles (`enqueue_subscription_updates`).
Likewise the web pixel job activates the pixel of every shop whose recorded pixel settings differ from
this release's (none recorded: installed before Chorus had a pixel), once (`enqueue_web_pixel_updates`).
A shop whose merchant has not approved the pixel's scopes yet is tried again daily: Shopify asks the
merchant to approve them on their next visit to the app, without telling Chorus.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from shopify_app.jobs.queue import JobFailed, enqueue
from shopify_app.jobs.sync import SYNC_JOB
from shopify_app.models import Job, JobStatus, Shop
from shopify_app.settings import Settings
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import AdminApiError
from shopify_app.shopify.subscriptions import desired_topics, ensure_subscriptions, webhook_uri
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled
from shopify_app.shopify.web_pixel import Activation, activate_shop_pixel, has_app_pixel, is_current
from shopify_app.shops import INSTALL_JOB

log = logging.getLogger(__name__)

SUBSCRIPTIONS_JOB = "subscriptions"
WEB_PIXEL_JOB = "web_pixel"
# How long a shop whose merchant has not granted the pixel's scopes (or whose last attempt was parked) waits
# before the next attempt.
PIXEL_RETRY = timedelta(days=1)


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
        self._activate_pixel(job.shop_id, now)

    def _activate_pixel(self, shop_id: int, now: datetime) -> None:
        """The pixel after the webhooks; its failing never fails the install (the doctor reports it)."""
        try:
            result = activate_shop_pixel(self._access, shop_id)
        except ShopUninstalled:
            return
        except NoUsableToken as exc:
            raise JobFailed(str(exc)) from exc
        except AdminApiError as exc:
            log.warning("shop %s: web pixel not activated on install (%s); the web pixel job retries", shop_id, exc)
            _enqueue_pixel_job(self._access.runtime.engine, shop_id, now)
            return
        _log_activation(shop_id, result.outcome, result.detail, now)
        if result.outcome is Activation.DENIED:
            _enqueue_pixel_job(self._access.runtime.engine, shop_id, now, after=now + PIXEL_RETRY)


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


class WebPixelJob:
    """Activate the shop's web pixel with this release's settings (after an upgrade, or a failed attempt)."""

    def __init__(self, access: ShopifyAccess) -> None:
        self._access = access

    def __call__(self, job: Job, now: datetime) -> None:
        try:
            result = activate_shop_pixel(self._access, job.shop_id)
        except ShopUninstalled:
            log.info("web pixel job for shop %s: the shop uninstalled meanwhile", job.shop_id)
            return
        except NoUsableToken as exc:
            raise JobFailed(str(exc)) from exc
        _log_activation(job.shop_id, result.outcome, result.detail, now)
        if result.outcome is Activation.DENIED:
            _enqueue_pixel_job(self._access.runtime.engine, job.shop_id, now, after=now + PIXEL_RETRY)


def _log_activation(shop_id: int, outcome: Activation, detail: str, now: datetime) -> None:
    if outcome is Activation.ACTIVE:
        log.info("shop %s: web pixel active", shop_id)
    elif outcome is Activation.DENIED:
        log.warning(
            "shop %s: web pixel not activated, the scopes granted lack write_pixels/read_customer_events (%s); "
            "next attempt at %s (`chorus shops doctor` says what the merchant must do)",
            shop_id, detail, now + PIXEL_RETRY,
        )  # fmt: skip


def _enqueue_pixel_job(engine: Engine, shop_id: int, now: datetime, *, after: datetime | None = None) -> None:
    with Session(engine) as session, session.begin():
        enqueue(session, shop_id, WEB_PIXEL_JOB, now, after=after)


def enqueue_web_pixel_updates(engine: Engine, settings: Settings, now: datetime) -> int:
    """Queue the web pixel job for every installed shop whose pixel is not recorded as running with this
    release's settings. Shops with an install or web pixel job waiting or running are left to it (a shop
    still being installed, or one waiting for its merchant to approve the scopes); so, for a day, is a shop
    whose last web pixel job was parked (e.g. INVALID_SETTINGS: the deployed extension is another version)."""
    waiting = col(Job.kind).in_((INSTALL_JOB, WEB_PIXEL_JOB)) & col(Job.status).in_(
        (JobStatus.PENDING, JobStatus.RUNNING)
    )
    parked = (
        (col(Job.kind) == WEB_PIXEL_JOB)
        & (col(Job.status) == JobStatus.PARKED)
        & (col(Job.finished_at) > now - PIXEL_RETRY)
    )
    busy = select(Job.shop_id).where(or_(waiting, parked))
    with Session(engine) as session, session.begin():
        shops = session.exec(
            select(Shop)
            .where(Shop.installed == True, col(Shop.id).not_in(busy))  # noqa: E712
            .where(col(Shop.scopes).is_not(None), Shop.scopes != "")  # a custom app's shop has no pixel
        ).all()
        due = [s.id for s in shops if has_app_pixel(s) and not is_current(s, settings.app_url)]
        for shop_id in due:
            assert shop_id is not None
            enqueue(session, shop_id, WEB_PIXEL_JOB, now)
    return len(due)


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
