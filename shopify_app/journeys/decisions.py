"""Moving a journey to a new state, with the decision and its reason recorded alongside."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from flows.reasons import Reason
from shopify_app.models import Decision, Journey, JourneyState


def transition(
    session: Session,
    journey: Journey,
    state: JourneyState,
    reason: Reason,
    *,
    step: str,
    now: datetime,
    due_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    journey.state = state
    journey.reason = reason
    journey.due_at = due_at
    journey.updated_at = now
    assert journey.id is not None
    session.add(
        Decision(
            shop_id=journey.shop_id,
            journey_id=journey.id,
            flow=journey.flow,
            step=step,
            outcome=state,
            reason=reason,
            detail=detail or {},
            decided_at=now,
        )
    )
