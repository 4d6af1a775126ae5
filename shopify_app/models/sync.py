"""How far the store sync has got, per shop and resource: the sync resumes from here after a crash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class SyncProgress(SQLModel, table=True):
    __tablename__ = "sync_progress"
    __table_args__ = (UniqueConstraint("shop_id", "mode", "resource"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    mode: str = Field(max_length=20)  # "backfill" (after install) | "reconcile" (periodic repair)
    resource: str = Field(max_length=20)  # "profile" | "products" | "customers" | "orders"
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)  # lower bound of this pass
    cursor: str | None = None  # the page to ask for next
    bulk_operation_id: str | None = None  # products of a large catalogue come as one bulk operation
    synced: int = 0
    done: bool = False
    started_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
