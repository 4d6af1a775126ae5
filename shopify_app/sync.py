"""Knowing the store: the backfill after an install, and the periodic reconciliation that repairs what
late or lost webhooks missed.

Both read pages from the Admin API and write them through the same mirror writers as webhooks, so an
older record never overwrites a newer one. What they repair moves the journeys it touches (a fulfilment or
an unsubscribe a webhook missed), but never starts one: only the store's own events enrol. Each page is
written together with the cursor of the next in one transaction: a crash loses at most the page in flight,
and the next run resumes from the cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from shopify_app.db.engine import read_only
from shopify_app.events.context import MirrorWrite
from shopify_app.journeys.hooks import for_runtime
from shopify_app.mirror.customers import write_customer
from shopify_app.mirror.orders import write_order
from shopify_app.mirror.products import write_product
from shopify_app.models import Job, Shop, SyncProgress
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import AdminApi
from shopify_app.shopify.sync_queries import (
    CustomerRecord,
    OrderRecord,
    ProductRecord,
    ShopProfile,
    bulk_operation,
    bulk_products,
    customers_page,
    orders_page,
    products_count,
    products_page,
    shop_profile,
    start_bulk_products,
)
from shopify_app.shops import write_profile

log = logging.getLogger(__name__)

BACKFILL, RECONCILE = "backfill", "reconcile"
RESOURCES = ("profile", "products", "customers", "orders")
# Reconciliation looks a little further back than its last start, for clocks and slow writes.
RECONCILE_OVERLAP = timedelta(minutes=5)
BULK_CHUNK = 200  # products written per transaction when a bulk operation's results are read


@dataclass(frozen=True)
class Progress:
    resource: str
    synced: int
    done: bool


@dataclass(frozen=True)
class SliceResult:
    finished: bool  # the whole pass is complete
    waiting: bool = False  # a bulk operation is still running at Shopify: come back later


ProgressCallback = Callable[[Progress], None]


class StoreSync:
    def __init__(
        self, access: ShopifyAccess, *, page_budget: int = 20, on_progress: ProgressCallback | None = None
    ) -> None:
        self._access = access
        self._journeys = for_runtime(access.runtime)
        self._runtime = access.runtime
        self._settings = access.runtime.settings
        self._page_budget = page_budget
        self._on_progress = on_progress or (lambda _progress: None)

    def run_slice(self, shop_id: int, mode: str, now: datetime) -> SliceResult:
        """Advance the pass by up to `page_budget` pages."""
        self._ensure_pass(shop_id, mode, now)
        api = self._access.admin_api(shop_id)
        budget = self._page_budget
        for row in self._rows(shop_id, mode):
            if row.done:
                continue
            budget, waiting = self._advance(api, row, budget, now)
            if waiting:
                return SliceResult(finished=False, waiting=True)
            if budget <= 0 and not row.done:
                return SliceResult(finished=False)
        return SliceResult(finished=all(r.done for r in self._rows(shop_id, mode)))

    def restart(self, shop_id: int, mode: str) -> None:
        with Session(self._runtime.engine) as session, session.begin():
            for row in session.exec(
                select(SyncProgress).where(SyncProgress.shop_id == shop_id, SyncProgress.mode == mode)
            ):
                session.delete(row)

    def _ensure_pass(self, shop_id: int, mode: str, now: datetime) -> None:
        """Create the pass's rows; a finished reconciliation starts over from where the last one started."""
        history = now - timedelta(days=self._settings.sync_history_days)
        with Session(self._runtime.engine) as session, session.begin():
            rows = {
                r.resource: r
                for r in session.exec(
                    select(SyncProgress).where(SyncProgress.shop_id == shop_id, SyncProgress.mode == mode)
                )
            }
            finished = len(rows) == len(RESOURCES) and all(r.done for r in rows.values())
            if mode == RECONCILE and finished:
                last_start = min(r.started_at for r in rows.values())
                for row in rows.values():
                    row.since, row.cursor, row.bulk_operation_id = last_start - RECONCILE_OVERLAP, None, None
                    row.synced, row.done, row.started_at, row.updated_at = 0, False, now, now
                return
            if mode == RECONCILE:
                # The first reconciliation covers everything since the backfill began reading the store.
                backfill_start = session.exec(
                    select(func.min(SyncProgress.started_at)).where(
                        SyncProgress.shop_id == shop_id, SyncProgress.mode == BACKFILL
                    )
                ).one()
                history = (backfill_start or now) - RECONCILE_OVERLAP
            for resource in RESOURCES:
                if resource not in rows:
                    since = None if mode == BACKFILL and resource == "products" else history
                    session.add(
                        SyncProgress(
                            shop_id=shop_id, mode=mode, resource=resource, since=since, started_at=now, updated_at=now
                        )
                    )

    def _advance(self, api: AdminApi, row: SyncProgress, budget: int, now: datetime) -> tuple[int, bool]:
        """Pages of one resource until it is done or the budget is spent; (budget left, waiting)."""
        if row.resource == "profile":
            self._commit_page(row, now, None, [shop_profile(api)])
            return budget - 1, False
        if row.resource == "products" and row.mode == BACKFILL and (row.bulk_operation_id or self._large(api, row)):
            return budget - 1, self._bulk_products(api, row, now)
        while budget > 0:
            budget -= 1
            records, next_cursor = self._fetch(api, row)
            self._commit_page(row, now, next_cursor, records)
            if next_cursor is None:
                break
        return budget, False

    def _fetch(self, api: AdminApi, row: SyncProgress) -> tuple[list[Any], str | None]:
        if row.resource == "products":
            page: Any = products_page(api, after=row.cursor, updated_since=row.since)
        elif row.resource == "customers":
            page = customers_page(api, after=row.cursor, updated_since=row.since)
        elif row.mode == BACKFILL:
            page = orders_page(api, after=row.cursor, created_since=row.since, updated_since=None)
        else:
            page = orders_page(api, after=row.cursor, created_since=None, updated_since=row.since)
        return list(page.items), page.next_cursor

    def _commit_page(self, row: SyncProgress, now: datetime, next_cursor: str | None, records: Sequence[Any]) -> None:
        """The page's records and the cursor of the next page, in one transaction."""
        with Session(self._runtime.engine, expire_on_commit=False) as session, session.begin():
            shop = session.get(Shop, row.shop_id)
            stored = session.get(SyncProgress, row.id, with_for_update=True)
            if shop is None or stored is None:
                return
            write = MirrorWrite(session, shop, now, now, source=f"sync/{row.mode}")
            for record in records:
                _write(write, record)
                self._move_journeys(session, shop, record, now)
            stored.cursor = next_cursor
            stored.synced += len(records)
            stored.done = next_cursor is None
            stored.updated_at = now
            row.cursor, row.synced, row.done = stored.cursor, stored.synced, stored.done
        self._on_progress(Progress(row.resource, row.synced, row.done))

    def _move_journeys(self, session: Session, shop: Shop, record: Any, now: datetime) -> None:
        match record:
            case OrderRecord():
                subject, customer_id, email = str(record.order_id), record.customer_id, record.email
            case CustomerRecord():
                subject, customer_id, email = str(record.customer_id), record.customer_id, record.email
            case _:
                return
        self._journeys.touch(session, shop, now, subjects=[subject], customer_id=customer_id, email=email)

    def _large(self, api: AdminApi, row: SyncProgress) -> bool:
        return row.cursor is None and row.synced == 0 and products_count(api) > self._settings.sync_bulk_threshold

    def _bulk_products(self, api: AdminApi, row: SyncProgress, now: datetime) -> bool:
        """Start, poll or read the bulk operation. True while Shopify is still working on it."""
        if row.bulk_operation_id is None:
            operation = start_bulk_products(api)
            self._set_bulk(row, operation.id)
            log.info("shop %s: bulk operation %s started for the catalogue", row.shop_id, operation.id)
            return True
        operation = bulk_operation(api, row.bulk_operation_id)
        if operation.status in ("created", "running"):
            return True
        if operation.status != "completed" or operation.url is None:
            # Failed, cancelled or expired: read the catalogue page by page instead.
            log.warning("shop %s: bulk operation %s %s; paging instead", row.shop_id, operation.id, operation.status)
            self._set_bulk(row, None)
            self._advance_without_bulk(api, row, now)
            return False
        # Resumable: the products already written are skipped when the file is read again.
        chunk: list[ProductRecord] = []
        for index, product in enumerate(bulk_products(self._access.http, operation.url)):
            if index < row.synced:
                continue
            chunk.append(product)
            if len(chunk) == BULK_CHUNK:
                self._commit_page(row, now, "bulk", chunk)
                chunk = []
        self._commit_page(row, now, None, chunk)
        return False

    def _advance_without_bulk(self, api: AdminApi, row: SyncProgress, now: datetime) -> None:
        while True:
            records, next_cursor = self._fetch(api, row)
            self._commit_page(row, now, next_cursor, records)
            if next_cursor is None:
                return

    def _set_bulk(self, row: SyncProgress, operation_id: str | None) -> None:
        with Session(self._runtime.engine) as session, session.begin():
            stored = session.get(SyncProgress, row.id, with_for_update=True)
            if stored is not None:
                stored.bulk_operation_id, stored.cursor, stored.synced = operation_id, None, 0
        row.bulk_operation_id, row.cursor, row.synced = operation_id, None, 0

    def _rows(self, shop_id: int, mode: str) -> list[SyncProgress]:
        order = {resource: position for position, resource in enumerate(RESOURCES)}
        with Session(read_only(self._runtime.engine), expire_on_commit=False) as session:
            rows = session.exec(
                select(SyncProgress).where(SyncProgress.shop_id == shop_id, SyncProgress.mode == mode)
            ).all()
        return sorted(rows, key=lambda r: order[r.resource])


def _write(write: MirrorWrite, record: Any) -> None:
    match record:
        case ProductRecord():
            write_product(write, record)
        case CustomerRecord():
            write_customer(write, record)
        case OrderRecord():
            write_order(write, record)
        case ShopProfile():
            write_profile(write.shop, record, write.now, write.now)
        case _:
            raise TypeError(f"nothing writes a {type(record).__name__}")


def progress_of(session: Session, shop_id: int, mode: str = BACKFILL) -> dict[str, dict[str, Any]]:
    """What GET /api/shop and the CLI show."""
    rows = session.exec(
        select(SyncProgress)
        .where(SyncProgress.shop_id == shop_id, SyncProgress.mode == mode)
        .order_by(col(SyncProgress.id))
    )
    return {r.resource: {"synced": r.synced, "done": r.done, "updated_at": r.updated_at.isoformat()} for r in rows}


def due_reconciliations(session: Session, now: datetime, interval: timedelta) -> list[int]:
    """Installed shops whose backfill is complete and whose last reconciliation started `interval` ago."""
    due = []
    for shop_id in session.exec(select(Shop.id).where(col(Shop.installed).is_(True))):
        assert shop_id is not None
        rows = session.exec(select(SyncProgress).where(SyncProgress.shop_id == shop_id)).all()
        backfill = [r for r in rows if r.mode == BACKFILL]
        reconcile = [r for r in rows if r.mode == RECONCILE]
        if len(backfill) < len(RESOURCES) or not all(r.done for r in backfill):
            continue
        last_start = min((r.started_at for r in reconcile), default=max(r.updated_at for r in backfill))
        recent_job = session.exec(
            select(Job.id).where(Job.shop_id == shop_id, Job.kind == "reconcile", col(Job.created_at) > now - interval)
        ).first()
        # A job asked for within the interval (waiting, running, or even failed) is enough.
        if now - last_start >= interval and recent_job is None:
            due.append(shop_id)
    return due
