"""A merchant's own wording of a flow's step on one channel, in place of the shipped template."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopify_app.db.types import BigId, UTCDateTime


class ContentOverride(SQLModel, table=True):
    __tablename__ = "content_overrides"
    __table_args__ = (UniqueConstraint("shop_id", "flow", "step", "channel"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    shop_id: int = Field(foreign_key="shops.id", sa_type=BigId, ondelete="CASCADE")
    flow: str = Field(max_length=50)
    step: str = Field(max_length=50)
    channel: str = Field(max_length=20)
    # A template in the sandbox: for email the blocks `subject`, `html` and `text`; for SMS the body.
    source: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)
