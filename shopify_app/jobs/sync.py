"""The store sync as background jobs: the backfill after an install, the periodic reconciliation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from shopify_app.jobs.queue import JobFailed, JobOutcome, enqueue
from shopify_app.models import Job
from shopify_app.shopify.tokens import NoUsableToken, ShopUninstalled
from shopify_app.sync import BACKFILL, RECONCILE, StoreSync, due_reconciliations

SYNC_JOB, RECONCILE_JOB = "sync", "reconcile"


class SyncJob:
    def __init__(self, sync: StoreSync, mode: str) -> None:
        self._sync = sync
        self._mode = mode

    def __call__(self, job: Job, now: datetime) -> JobOutcome:
        try:
            result = self._sync.run_slice(job.shop_id, self._mode, now)
        except ShopUninstalled:
            return JobOutcome.DONE
        except NoUsableToken as exc:
            raise JobFailed(str(exc)) from exc
        if result.finished:
            return JobOutcome.DONE
        return JobOutcome.WAIT if result.waiting else JobOutcome.CONTINUE


def backfill_job(sync: StoreSync) -> SyncJob:
    return SyncJob(sync, BACKFILL)


def reconcile_job(sync: StoreSync) -> SyncJob:
    return SyncJob(sync, RECONCILE)


def enqueue_reconciliations(engine: Engine, now: datetime, interval: timedelta) -> int:
    with Session(engine) as session, session.begin():
        shops = due_reconciliations(session, now, interval)
        for shop_id in shops:
            enqueue(session, shop_id, RECONCILE_JOB, now)
    return len(shops)
