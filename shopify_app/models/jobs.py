"""Background work that talks to Shopify (subscriptions on install, store sync): run outside any event
transaction, at least once, so every job is written to be repeatable."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"  # claimed; if its lease runs out, the worker died and the job is claimed again
    DONE = "done"
    PARKED = "parked"  # failed too often; `chorus jobs` shows why


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "status", "run_after"),
        Index("ix_jobs_shop_kind", "shop_id", "kind", "status"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    kind: str = Field(max_length=40)
    status: str = Field(default=JobStatus.PENDING, max_length=20)
    arguments: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    attempts: int = 0
    run_after: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claims: int = 0  # claims since it last finished or failed cleanly: more than one, and its worker died
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
