"""Raw webhook bodies and storefront events hold customer data: they are kept for a limited time, then erased."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col

from shopify_app.models import EventStatus, PixelEvent, WebhookEvent


def purge_raw_bodies(session: Session, now: datetime, retention: timedelta) -> int:
    """Erase bodies received before `now - retention`, except of events still waiting to be handled."""
    result = session.execute(
        update(WebhookEvent)
        .where(col(WebhookEvent.received_at) < now - retention)
        .where(col(WebhookEvent.body).is_not(None))
        .where(col(WebhookEvent.status) != EventStatus.PENDING)
        .values(body=None, body_purged_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_pixel_events(session: Session, now: datetime, retention: timedelta) -> int:
    """Erase storefront events received before `now - retention`."""
    result = session.execute(delete(PixelEvent).where(col(PixelEvent.received_at) < now - retention))
    return int(result.rowcount)  # type: ignore[attr-defined]
