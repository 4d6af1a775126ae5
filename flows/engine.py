"""The journey engine: pure functions from (definition, tuning, journey, facts, now) to the next state.

`enter` applies a flow's entry rules to a subject; `advance` moves a journey as far as `now` allows and
stops at the first thing it must wait for: a due time, a message to hand over (`Advance.send`), or the
end. `after_send` takes the hand-over's outcome. Goals are checked at every move, so an event that
reaches one ends the journey at once, on every channel. Branches only jump forward, so every journey
ends after at most one visit of each step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

from flows.caps import YIELD_AHEAD, capped, fills_a_cap
from flows.channels import candidates, choose, marketing_refusal
from flows.contents import CONTENTS
from flows.definition import BranchStep, ExitStep, FlowDefinition, SendStep, Step, Wait, WaitStep
from flows.facts import INSTANTS, Facts
from flows.journey import Advance, Decision, Journey, Performed, SendIntent, Status
from flows.predicates import GOALS, PREDICATES
from flows.quiet_hours import opens_at
from flows.reasons import Reason
from flows.triggers import qualification
from flows.tuning import FlowTuning

# A step none of whose channels is set up is looked at again this often.
RECHECK_UNCONFIGURED = timedelta(minutes=5)
# SMS_HOURS: held by a release before quiet hours, until its time.
_HELD = frozenset({
    Reason.SEND_DEFERRED, Reason.NO_CHANNEL, Reason.QUIET_HOURS, Reason.SMS_HOURS, Reason.CAPPED, Reason.GIVES_WAY,
})  # fmt: skip


@dataclass(frozen=True)
class _Hold:
    """The step cannot go out yet: looked at again `until` then."""

    decision: Decision
    until: datetime


@dataclass(frozen=True)
class Precedents:
    """What the flow's earlier journeys say about a new entry."""

    last_entry_at: datetime | None = None  # the subject's latest entry into this flow, if any
    customer_active: tuple[str, ...] = ()  # subjects of the customer's other active journeys in this flow


@dataclass(frozen=True)
class SendOutcome:
    performed: Performed | None  # None: not sent, to be tried again at `retry_at`
    at: datetime
    retry_at: datetime | None = None
    # The provider would not carry it on its channel (why): the step is decided again at once without it.
    unusable: tuple[str, Reason] | None = None


def enter(
    definition: FlowDefinition,
    tuning: FlowTuning,
    facts: Facts,
    subject: str,
    now: datetime,
    *,
    current: Journey | None = None,
    precedents: Precedents = Precedents(),
    triggered_at: datetime | None = None,
) -> Advance | None:
    """Apply the entry rules; None when there is nothing to record (flow off, subject already journeyed).

    A journey enters at `triggered_at` (when its trigger happened, default `now`): waits anchored at its
    entry count from there, even when the news of it came late.
    """
    if current is not None and current.status is not Status.INELIGIBLE:
        raise ValueError("only a subject without an open journey (or an ineligible one) can enter")
    if not tuning.enabled or not facts.shop.installed:
        return None
    rules = definition.entry
    entered_at = min(triggered_at or now, now)
    journey = Journey(
        flow=definition.name,
        subject=subject,
        status=Status.WAITING,
        reason=Reason.ENROLLED,
        step=definition.steps[0].id,
        entered_at=entered_at,
        arrived_at=entered_at,
        previous_at=entered_at,
        due_at=now,
    )
    if precedents.last_entry_at is not None:
        if rules.reentry_after is None:
            return None  # one journey per subject, ever
        if entered_at - precedents.last_entry_at < rules.reentry_after:
            return _ineligible(definition, subject, current, Reason.ENTERED_RECENTLY)
    refusal = qualification(definition.trigger.event, facts)
    if refusal is None and rules.consent:
        refusal = marketing_refusal(tuning.all_channels(definition), facts)
    if refusal is None:
        refusal = _goal_reached(definition, facts, journey)
    if refusal is None and rules.one_active_per_customer and precedents.customer_active and not rules.replace_active:
        refusal = Reason.ALREADY_IN_FLOW
    if refusal is not None:
        return _ineligible(definition, subject, current, refusal)
    moved = advance(definition, tuning, journey, facts, now)
    ended = precedents.customer_active if rules.replace_active else ()
    entered = Decision(None, "entered", Reason.ENROLLED, {"replaces": list(ended)} if ended else {})
    return replace(moved, decisions=(entered, *moved.decisions), ended=ended)


def advance(definition: FlowDefinition, tuning: FlowTuning, journey: Journey, facts: Facts, now: datetime) -> Advance:
    """Move the journey as far as `now` allows. Only a waiting journey moves: one that is sending belongs
    to the hand-over in progress, and a finished one stays finished."""
    decisions: list[Decision] = []
    # Each pass either returns or moves past one step; the bound is a guard, not a rule.
    for _ in range(len(definition.steps) + 1):
        if journey.status is not Status.WAITING:
            break
        if journey.step is None:
            return _done(journey, decisions, None, "completed", Reason.COMPLETED)
        step = definition.step(journey.step)
        ending = _premise_broken(definition, facts, journey)
        if ending is not None:
            return _done(journey, decisions, step.id, *ending)
        timing = _timing(step.wait, tuning.delay(step), journey, facts, now)
        if timing.expired:
            if step.wait.on_timeout == "exit":
                return _done(journey, decisions, step.id, "ended", Reason.WAIT_EXPIRED)
            # Passed over, as a skipped step is, when its wait ran out (not whenever this was looked at).
            assert timing.recheck_at is not None
            decisions.append(Decision(step.id, "skipped", Reason.WAIT_EXPIRED))
            journey = _move_on(definition, journey, step, Performed.WAITED, at=timing.recheck_at)
            continue
        if timing.due_at is None or timing.due_at > now:
            return Advance(_waiting(journey, step, timing.recheck_at or timing.due_at, decisions), tuple(decisions))
        if not tuning.enabled:
            return _done(journey, decisions, step.id, "ended", Reason.FLOW_DISABLED)
        started = facts.started_at or journey.entered_at
        if definition.max_age is not None and started is not None and now - started > definition.max_age:
            return _done(journey, decisions, step.id, "ended", Reason.TOO_OLD)
        if journey.reason in _HELD and journey.due_at is not None and journey.due_at > now:
            return Advance(journey, tuple(decisions))  # a deferred hand-over keeps its retry time
        match step:
            case WaitStep():
                journey = _move_on(definition, journey, step, Performed.WAITED, at=timing.due_at)
            case BranchStep():
                holds = PREDICATES[step.predicate](facts, journey)
                target = (step.then if holds else step.otherwise) or definition.next_step(step.id)
                reason = Reason.BRANCH_YES if holds else Reason.BRANCH_NO
                decisions.append(Decision(step.id, "branched", reason, {"predicate": step.predicate, "to": target}))
                journey = _go_to(journey, target, Performed.BRANCHED, step.id, at=timing.due_at)
            case ExitStep():
                return _done(journey, decisions, step.id, "completed", Reason.EXIT)
            case SendStep() if step.id in journey.performed:
                # Never the same step twice: what became of it stands.
                journey = _move_on(definition, journey, step, journey.performed[step.id], at=timing.due_at)
            case SendStep():
                outcome = _send(tuning, journey, step, facts, now, definition.priority)
                if isinstance(outcome, SendIntent):
                    return Advance(replace(journey, due_at=now), tuple(decisions), send=outcome)
                if isinstance(outcome, _Hold):  # nothing is set up yet, or not at this hour
                    if (journey.reason, journey.step) != (outcome.decision.reason, step.id):
                        decisions.append(outcome.decision)
                    held = replace(journey, reason=outcome.decision.reason, due_at=outcome.until)
                    return Advance(held, tuple(decisions))
                decisions.extend(outcome)
                journey = _move_on(definition, journey, step, Performed.SKIPPED, at=timing.due_at)
            case _:
                assert_never(step)  # a new step kind must be handled here (mypy checks it)
    return Advance(journey, tuple(decisions))


def start_send(journey: Journey, intent: SendIntent) -> Journey:
    """The message is committed for hand-over: the journey waits for its outcome."""
    assert journey.step == intent.step
    return replace(journey, status=Status.SENDING, reason=Reason.SEND, due_at=None)


def after_send(definition: FlowDefinition, journey: Journey, outcome: SendOutcome) -> Journey:
    """The hand-over's outcome: on to the next step, or back to waiting for a retry."""
    assert journey.step is not None
    if outcome.unusable is not None:
        channel, why = outcome.unusable
        return replace(journey, status=Status.WAITING, reason=why, due_at=outcome.at,
                       unusable={**journey.unusable, channel: why})  # fmt: skip
    if outcome.performed is None:
        return replace(journey, status=Status.WAITING, reason=Reason.SEND_DEFERRED, due_at=outcome.retry_at)
    step = definition.step(journey.step)
    moved = _move_on(definition, replace(journey, status=Status.WAITING), step, outcome.performed, at=outcome.at)
    return replace(moved, due_at=outcome.at)  # its next step is to be looked at now, not only on an event


def end(journey: Journey, reason: Reason, outcome: str = "ended") -> Advance:
    """End a journey from outside (the shop uninstalled, a newer subject took over)."""
    if journey.status is Status.DONE:
        return Advance(journey)
    return _done(journey, [], journey.step, outcome, reason)


@dataclass(frozen=True)
class _Timing:
    due_at: datetime | None  # when the step is due; None while its anchor does not exist
    recheck_at: datetime | None = None  # when to look again for a missing anchor
    expired: bool = False


def _timing(wait: Wait, delay: timedelta, journey: Journey, facts: Facts, now: datetime) -> _Timing:
    if wait.anchor == "entry":
        anchor = journey.entered_at
    elif wait.anchor == "previous":
        anchor = journey.previous_at
    else:
        assert wait.fact is not None
        anchor = INSTANTS[wait.fact](facts)
    if anchor is not None:
        return _Timing(anchor + delay)
    if wait.max is not None and journey.arrived_at is not None:
        deadline = journey.arrived_at + wait.max
        return _Timing(None, recheck_at=deadline, expired=now >= deadline)
    return _Timing(None)


def _premise_broken(definition: FlowDefinition, facts: Facts, journey: Journey) -> tuple[str, Reason] | None:
    """What ends a journey whatever its step: the shop left, the subject vanished, a goal was reached."""
    if not facts.shop.installed:
        return "ended", Reason.SHOP_UNINSTALLED
    subject = {"checkout": facts.checkout, "order": facts.order, "customer": facts.customer}[definition.subject]
    if subject is None:
        return "ended", Reason.SUBJECT_GONE
    goal = _goal_reached(definition, facts, journey)
    return ("exited", goal) if goal is not None else None


def _goal_reached(definition: FlowDefinition, facts: Facts, journey: Journey) -> Reason | None:
    for name in definition.goals:
        reached = GOALS[name](facts, journey)
        if reached is not None:
            return reached
    return None


def _send(
    tuning: FlowTuning, journey: Journey, step: SendStep, facts: Facts, now: datetime, priority: int
) -> SendIntent | _Hold | list[Decision]:
    """A message to hand over, a hold, or the decisions of a skip."""
    if not tuning.step(step.id).enabled:
        return [Decision(step.id, "skipped", Reason.STEP_DISABLED)]
    content = CONTENTS[step.content].build(facts, journey)
    if isinstance(content, Reason):
        return [Decision(step.id, "skipped", content)]
    if journey.unusable:
        facts = replace(facts, unusable={**journey.unusable, **facts.unusable})
    choice = choose(tuning.channels(step), facts, step.max_price)
    checks = tuple(c.as_detail() for c in choice.checks)
    chosen = choice.chosen
    if chosen is not None and chosen.address is not None:
        held = _capped(chosen.channel, facts, now, priority)
        if held is not None:
            reason, until, why = held
            detail = {"channel": chosen.channel, "until": until.isoformat(), **why, **_considered(checks)}
            return _Hold(Decision(step.id, "deferred", reason, detail), until)
        opens = opens_at(chosen.channel, facts.shop.policy, facts, now)
        if opens is not None:  # outside the window, in the recipient's time: deferred to its opening
            detail = {"channel": chosen.channel, "until": opens.isoformat(), **_considered(checks)}
            return _Hold(Decision(step.id, "deferred", Reason.QUIET_HOURS, detail), opens)
        return SendIntent(step.id, chosen.channel, chosen.address, step.content, content, checks, step.sms_segments,
                          chosen.price)  # fmt: skip
    if choice.waits_for_setup:
        detail = _considered(checks)
        return _Hold(Decision(step.id, "deferred", Reason.NO_CHANNEL, detail), now + RECHECK_UNCONFIGURED)
    return [Decision(step.id, "skipped", choice.refusal, _considered(checks))]


def _considered(checks: tuple[Mapping[str, str], ...]) -> dict[str, object]:
    """What a decision records of its channels: each outcome, and each candidate accepted or not, and why."""
    return {"channels": list(checks), "candidates": candidates(checks)}


def _capped(channel: str, facts: Facts, now: datetime, priority: int) -> tuple[Reason, datetime, dict[str, str]] | None:
    """Held by a frequency cap (until it has room), or giving way to a more important flow's message due within
    the hour when this one would fill a cap; None: it may go."""
    policy, sent = facts.shop.policy, facts.recent_messages
    full = capped(policy, channel, sent, now)
    if full is not None:
        cap = f"{channel}={full.cap}" if full.channel else str(full.cap)
        return Reason.CAPPED, full.until, {"cap": cap}
    before = [due for other, due in facts.due_soon if other < priority and now <= due <= now + YIELD_AHEAD]
    if before and fills_a_cap(policy, channel, sent, now):
        return Reason.GIVES_WAY, min(before) + timedelta(minutes=1), {}
    return None


def _waiting(journey: Journey, step: Step, due_at: datetime | None, decisions: list[Decision]) -> Journey:
    if (journey.reason, journey.due_at) != (Reason.WAIT, due_at):
        detail = {"due_at": due_at.isoformat()} if due_at else {"due_at": None}
        decisions.append(Decision(step.id, "waiting", Reason.WAIT, detail))
    return replace(journey, reason=Reason.WAIT, due_at=due_at)


def _move_on(
    definition: FlowDefinition, journey: Journey, step: Step, performed: Performed, *, at: datetime
) -> Journey:
    return _go_to(journey, definition.next_step(step.id), performed, step.id, at=at)


def _go_to(journey: Journey, target: str | None, performed: Performed, step_id: str, *, at: datetime) -> Journey:
    return replace(
        journey,
        step=target,
        reason=Reason.WAIT,
        arrived_at=at,
        previous_at=at,
        due_at=None,
        performed={**journey.performed, step_id: performed},
        unusable={},
    )


def _done(journey: Journey, decisions: list[Decision], step: str | None, outcome: str, reason: Reason) -> Advance:
    finished = replace(journey, status=Status.DONE, reason=reason, step=step, due_at=None)
    return Advance(finished, (*decisions, Decision(step, outcome, reason)))


def _ineligible(definition: FlowDefinition, subject: str, current: Journey | None, reason: Reason) -> Advance | None:
    if current is not None and current.reason == reason:
        return None  # nothing changed: one decision per change, not per update
    journey = Journey(definition.name, subject, Status.INELIGIBLE, reason)
    return Advance(journey, (Decision(None, "ineligible", reason),))
