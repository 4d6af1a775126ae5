"""Ending journeys before they are due, all at once (the shop uninstalled)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from flows.reasons import Reason
from shopify_app.journeys.decisions import transition
from shopify_app.models import Journey, JourneyState

PENDING_STATES = (JourneyState.WAITING, JourneyState.INELIGIBLE)


def cancel_pending(session: Session, shop_id: int, reason: Reason, now: datetime) -> int:
    journeys = session.exec(
        select(Journey).where(Journey.shop_id == shop_id, col(Journey.state).in_(PENDING_STATES)).with_for_update()
    ).all()
    for journey in journeys:
        transition(session, journey, JourneyState.SKIPPED, reason, step="cancel", now=now)
    return len(journeys)
