"""What a merchant tunes in a flow: on or off, and per step its delay, on or off, and channel order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from flows.definition import FlowDefinition, SendStep, Step


@dataclass(frozen=True)
class StepTuning:
    delay: timedelta | None = None  # None: the definition's
    enabled: bool = True
    channels: tuple[str, ...] | None = None  # None: the definition's


@dataclass(frozen=True)
class FlowTuning:
    enabled: bool = True
    steps: Mapping[str, StepTuning] = field(default_factory=dict)

    def step(self, step_id: str) -> StepTuning:
        return self.steps.get(step_id, StepTuning())

    def delay(self, step: Step) -> timedelta:
        tuned = self.step(step.id).delay
        return step.wait.delay if tuned is None else tuned

    def channels(self, step: SendStep) -> tuple[str, ...]:
        return self.step(step.id).channels or step.channels

    def all_channels(self, definition: FlowDefinition) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for s in definition.send_steps for c in self.channels(s)))
