"""Replaying past subjects through a flow as it is configured now: what would it have sent?

Each candidate brings the instant its trigger fired and a way to see its facts as of any instant. Its
journey is run through the engine from there, due time after due time, as if every message went out,
until it ends or the replay reaches `until`. Nothing is written or sent: this is arithmetic over facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows import engine
from flows.definition import FlowDefinition
from flows.engine import Precedents, SendOutcome
from flows.facts import Facts
from flows.journey import Advance, Performed, Status
from flows.reasons import Reason
from flows.tuning import FlowTuning


@dataclass(frozen=True)
class Candidate:
    subject: str
    customer: str | None  # the customer's key, for the flow's one-journey-per-customer rules
    triggered_at: datetime
    facts_at: Callable[[datetime], Facts]
    # When its facts changed (an order placed, shipped or cancelled, consent given or withdrawn): the journey
    # is looked at again then, as the store's webhooks move a live one, not only when its next step is due.
    changes_at: tuple[datetime, ...] = ()


@dataclass
class StepCount:
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    exited: Counter[str] = field(default_factory=Counter)
    waiting: int = 0


@dataclass
class Replay:
    flow: str
    entered: int = 0
    ineligible: Counter[str] = field(default_factory=Counter)
    steps: dict[str, StepCount] = field(default_factory=dict)

    def as_json(self, days: int) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "days": days,
            "entered": self.entered,
            "ineligible": dict(sorted(self.ineligible.items())),
            "steps": [
                {
                    "step": step,
                    "sent": count.sent,
                    "skipped": dict(sorted(count.skipped.items())),
                    "exited": dict(sorted(count.exited.items())),
                    "waiting": count.waiting,
                }
                for step, count in self.steps.items()
            ],
        }


def replay(definition: FlowDefinition, tuning: FlowTuning, candidates: Iterable[Candidate], until: datetime) -> Replay:
    result = Replay(definition.name, steps={step.id: StepCount() for step in definition.steps})
    ordered = sorted(candidates, key=lambda c: (c.triggered_at, c.subject))
    last_entry: dict[str, datetime] = {}
    active_until: dict[str, tuple[str, datetime]] = {}  # customer -> (subject, when its journey ends)
    for position, candidate in enumerate(ordered):
        at = candidate.triggered_at
        held = active_until.get(candidate.customer or "") if candidate.customer else None
        busy = (held[0],) if held is not None and held[1] > at and held[0] != candidate.subject else ()
        precedents = Precedents(last_entry_at=last_entry.get(candidate.subject), customer_active=busy)
        moved = engine.enter(definition, tuning, candidate.facts_at(at), candidate.subject, at, precedents=precedents)
        if moved is None:
            continue
        if moved.journey.status is Status.INELIGIBLE:
            result.ineligible[moved.journey.reason] += 1
            continue
        result.entered += 1
        last_entry[candidate.subject] = at
        # A newer subject of the same customer takes over in flows that say so: this journey ends then.
        ends_at = _replaced_at(definition, ordered, position) or until
        finished = _run(definition, tuning, candidate, moved, min(ends_at, until), result, superseded=ends_at < until)
        if candidate.customer:
            active_until[candidate.customer] = (candidate.subject, finished)
    return result


def _run(
    definition: FlowDefinition,
    tuning: FlowTuning,
    candidate: Candidate,
    moved: Advance,
    until: datetime,
    result: Replay,
    *,
    superseded: bool,
) -> datetime:
    """Follow one journey until it ends or `until`; returns when it ended (or `until`)."""
    at = candidate.triggered_at
    changes = sorted(c for c in candidate.changes_at if at < c <= until)
    for _ in range(4 * len(definition.steps) + 4 + len(changes)):  # each round moves a step or a change, or stops
        _count(moved, result)
        journey = moved.journey
        if moved.send is not None:
            result.steps[moved.send.step].sent += 1
            sent = engine.start_send(journey, moved.send)
            journey = engine.after_send(definition, sent, SendOutcome(Performed.SENT, at))
            moved = engine.advance(definition, tuning, journey, candidate.facts_at(at), at)
            continue
        if journey.status is Status.DONE:
            return at
        due = journey.due_at
        change = next((c for c in changes if c > at), None)
        if change is not None and (due is None or change < due) and journey.reason != Reason.NO_CHANNEL:
            at = change
            moved = engine.advance(definition, tuning, journey, candidate.facts_at(at), at)
            continue
        if due is None or due > until or journey.reason == Reason.NO_CHANNEL:
            if superseded and journey.step is not None and (due is None or due > until):
                result.steps[journey.step].exited[Reason.SUPERSEDED] += 1
                return until
            if journey.step is not None:
                result.steps[journey.step].waiting += 1
            return until
        at = max(at, due)
        moved = engine.advance(definition, tuning, journey, candidate.facts_at(at), at)
    return at


def _count(moved: Advance, result: Replay) -> None:
    for decision in moved.decisions:
        if decision.step is None or decision.step not in result.steps:
            continue
        if decision.outcome == "skipped":
            result.steps[decision.step].skipped[decision.reason] += 1
        elif decision.outcome in ("exited", "ended"):
            result.steps[decision.step].exited[decision.reason] += 1


def _replaced_at(definition: FlowDefinition, ordered: list[Candidate], position: int) -> datetime | None:
    if not definition.entry.replace_active:
        return None
    candidate = ordered[position]
    if candidate.customer is None:
        return None
    for later in ordered[position + 1 :]:
        if later.customer == candidate.customer and later.subject != candidate.subject:
            return later.triggered_at
    return None
