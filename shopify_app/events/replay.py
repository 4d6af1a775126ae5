"""Putting parked (or unhandled) events back in the queue, e.g. after a fix was deployed."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import update
from sqlmodel import Session, col

from shopify_app.models import EventStatus, WebhookEvent


def requeue_events(
    session: Session,
    *,
    statuses: Collection[EventStatus] = (EventStatus.PARKED,),
    ids: Collection[int] = (),
    topic: str | None = None,
    shop_domain: str | None = None,
) -> int:
    """Mark matching events pending with a fresh retry budget; events whose body was purged stay put."""
    statement = (
        update(WebhookEvent)
        .where(col(WebhookEvent.status).in_(list(statuses)))
        .where(col(WebhookEvent.body).is_not(None))
        .values(status=EventStatus.PENDING, attempts=0, next_attempt_at=None, last_error=None)
    )
    if ids:
        statement = statement.where(col(WebhookEvent.id).in_(list(ids)))
    if topic:
        statement = statement.where(col(WebhookEvent.topic) == topic)
    if shop_domain:
        statement = statement.where(col(WebhookEvent.shop_domain) == shop_domain)
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
