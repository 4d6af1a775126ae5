"""A shop's choices about its flows, stored: on or off, and per step its delay, on or off and channels.

A flow with no row for the shop runs with its definition's defaults. The migration that ships a new flow
writes a switched-off row for every shop installed before it, so existing shops opt in; new shops get it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from flows.definition import FlowDefinition, SendStep, validate_channels
from flows.durations import format_duration
from flows.journey import Status
from flows.reasons import Reason
from flows.tuning import FlowTuning, StepTuning
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.mirror.store import locked_row
from shopify_app.models import Journey, ShopFlow

MAX_DELAY = timedelta(days=365)


class UnknownFlow(LookupError):
    pass


class UnknownStep(LookupError):
    pass


class InvalidChange(ValueError):
    """A change that cannot apply; the message names the field."""


@dataclass(frozen=True)
class StepChange:
    """What to change in one step; None leaves it as it is."""

    delay: timedelta | None = None
    enabled: bool | None = None
    channels: tuple[str, ...] | None = None


def tuning_from_row(definition: FlowDefinition, row: ShopFlow | None) -> FlowTuning:
    if row is None:
        return FlowTuning(enabled=definition.default_enabled)
    steps = {}
    for step_id, stored in (row.steps or {}).items():
        seconds = stored.get("delay_seconds")
        channels = stored.get("channels")
        steps[step_id] = StepTuning(
            delay=timedelta(seconds=seconds) if isinstance(seconds, int) else None,
            enabled=stored.get("enabled", True) is not False,
            channels=tuple(channels) if isinstance(channels, list) and channels else None,
        )
    return FlowTuning(enabled=row.enabled, steps=steps)


def load_tuning(session: Session, shop_id: int, definition: FlowDefinition) -> FlowTuning:
    row = session.exec(select(ShopFlow).where(ShopFlow.shop_id == shop_id, ShopFlow.flow == definition.name)).first()
    return tuning_from_row(definition, row)


def load_tunings(session: Session, shop_id: int, catalog: FlowCatalog) -> dict[str, FlowTuning]:
    rows = {r.flow: r for r in session.exec(select(ShopFlow).where(ShopFlow.shop_id == shop_id))}
    return {d.name: tuning_from_row(d, rows.get(d.name)) for d in catalog}


def configure(
    session: Session,
    shop_id: int,
    catalog: FlowCatalog,
    flow: str,
    *,
    enabled: bool | None = None,
    steps: Mapping[str, StepChange] | None = None,
    now: datetime,
) -> FlowTuning:
    """Apply the changes, all or none. Journeys waiting at a step whose delay changed are looked at again
    at once, so that the new delay applies to them too."""
    definition = catalog.get(flow)
    if definition is None:
        raise UnknownFlow(f"unknown flow {flow!r}; known: {', '.join(catalog.names)}")
    changes = dict(steps or {})
    for step_id, change in changes.items():
        _check(definition, step_id, change)
    row = locked_row(
        session, ShopFlow, {"shop_id": shop_id, "flow": flow},
        {"enabled": definition.default_enabled, "steps": {}, "updated_at": now},
    )  # fmt: skip
    if enabled is not None:
        lapse = definition.trigger.after
        if enabled and not row.enabled and lapse is not None:
            row.swept_until = now - lapse  # switched on now: those who cross from now on, not the backlog
        row.enabled = enabled
    stored: dict[str, Any] = {k: dict(v) for k, v in (row.steps or {}).items()}
    for step_id, change in changes.items():
        entry = stored.setdefault(step_id, {})
        if change.delay is not None:
            entry["delay_seconds"] = int(change.delay.total_seconds())
        if change.enabled is not None:
            entry["enabled"] = change.enabled
        if change.channels is not None:
            entry["channels"] = list(change.channels)
    row.steps = stored
    row.updated_at = now
    rescheduled = [step_id for step_id, change in changes.items() if change.delay is not None]
    if rescheduled:
        session.execute(
            update(Journey)
            .where(col(Journey.shop_id) == shop_id, col(Journey.flow) == flow, col(Journey.step).in_(rescheduled))
            .where(col(Journey.state) == Status.WAITING, col(Journey.reason) == Reason.WAIT)
            .values(due_at=now)
        )
    return tuning_from_row(definition, row)


def describe(definition: FlowDefinition, tuning: FlowTuning) -> dict[str, Any]:
    """A flow as the merchant sees it (`GET /api/flows`, `chorus flows list --json`)."""
    steps = []
    for step in definition.steps:
        delay = tuning.delay(step)
        entry: dict[str, Any] = {
            "id": step.id,
            "kind": step.kind,
            "delay_minutes": int(delay.total_seconds() // 60),
            "delay": format_duration(delay),
            "anchor": step.wait.fact if step.wait.anchor == "fact" else step.wait.anchor,
        }
        if isinstance(step, SendStep):
            entry["enabled"] = tuning.step(step.id).enabled
            entry["channels"] = list(tuning.channels(step))
            entry["content"] = step.content
        steps.append(entry)
    first = definition.steps[0]
    return {
        "name": definition.name,
        "description": definition.description,
        "enabled": tuning.enabled,
        "trigger": definition.trigger.event,
        "subject": definition.subject,
        "delay_minutes": int(tuning.delay(first).total_seconds() // 60),
        "steps": steps,
    }


def _check(definition: FlowDefinition, step_id: str, change: StepChange) -> None:
    try:
        step = definition.step(step_id)
    except KeyError:
        known = ", ".join(s.id for s in definition.steps)
        raise UnknownStep(f"flow {definition.name} has no step {step_id!r}; its steps: {known}") from None
    if change.delay is not None and not timedelta(0) <= change.delay <= MAX_DELAY:
        raise InvalidChange(f"steps.{step_id}.delay_minutes: from 0 to {int(MAX_DELAY.total_seconds() // 60)}")
    if not isinstance(step, SendStep) and (change.enabled is not None or change.channels is not None):
        raise InvalidChange(f"steps.{step_id}: only a send step can be switched or given channels")
    if change.channels is not None:
        try:
            validate_channels(change.channels)
        except ValueError as exc:
            raise InvalidChange(f"steps.{step_id}.channels: {exc}") from None
