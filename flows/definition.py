"""Flow definitions: data, one TOML document per flow, validated on load into typed, immutable models.

A flow has a trigger, the subject its journeys are keyed on (a checkout, an order, a customer; for a flow
started by storefront browsing, the customer is the contact, who may be a guest: `BROWSE_TRIGGERS`), entry
rules, goals that end a journey as soon as they are reached, and steps. Every step is due after its wait
(a delay anchored at the journey's entry, at the previous step, or at a named fact), then does one thing:
nothing (`wait`), choose the next step (`branch`), send a message (`send`) or end the journey (`exit`).
Names of predicates, goals, contents and facts are looked up in their registries; nothing is evaluated.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from flows.channels import CHANNELS
from flows.contents import CONTENTS
from flows.durations import parse_duration
from flows.facts import INSTANT_SUBJECTS, INSTANTS, SubjectKind
from flows.policy import PAID_CHANNELS
from flows.predicates import GOALS, PREDICATES

# What each trigger starts a journey about.
TRIGGERS: dict[str, SubjectKind] = {
    "checkout_changed": "checkout",  # checkouts/create, checkouts/update
    "customer_subscribed": "customer",  # first subscribed to email marketing (customer or consent webhooks)
    "order_paid": "order",  # orders/paid
    "order_lapsed": "customer",  # the customer's last order became `after` old (the worker's sweep)
    "cart_abandoned": "customer",  # a known contact added to cart and started no checkout within `after`
    "product_browsed": "customer",  # a known contact viewed a product with interest, no cart within `after`
    "price_dropped": "customer",  # the price of a variant a known contact viewed or carted lately fell enough
}
# Triggers whose journeys are keyed on the contact (its id as the subject), from their storefront events.
BROWSE_TRIGGERS = frozenset({"cart_abandoned", "product_browsed", "price_dropped"})
# Triggers the worker's sweeps fire once `after` has passed.
TIMED_TRIGGERS = frozenset({"order_lapsed", "cart_abandoned", "product_browsed"})

MAX_DELAY = timedelta(days=366)
MAX_PRICE = Decimal("10000")  # as a rate may be (a rupiah or a dong price is in the thousands)


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration), Field(ge=timedelta(0), le=MAX_DELAY)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,48}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wait(_Model):
    anchor: Literal["entry", "previous", "fact"] = "previous"
    fact: str | None = None  # with anchor = "fact": one of flows.facts.INSTANTS
    delay: Duration = timedelta(0)
    # With anchor = "fact": how long to wait for the fact to exist at all, counted from the step's start.
    max: Duration | None = None
    on_timeout: Literal["exit", "continue"] = "exit"

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, value: str | None) -> str | None:
        if value is not None and value not in INSTANTS:
            raise ValueError(f"unknown fact {value!r}; known: {', '.join(sorted(INSTANTS))}")
        return value

    @model_validator(mode="after")
    def _fact_anchor(self) -> Self:
        if self.anchor == "fact" and (self.fact is None or self.max is None):
            raise ValueError("a wait anchored at a fact names the `fact` and a `max` (the fact may never come)")
        if self.anchor != "fact" and self.fact is not None:
            raise ValueError('`fact` goes with anchor = "fact"')
        return self


class _Step(_Model):
    id: Name
    wait: Wait = Wait()


class WaitStep(_Step):
    kind: Literal["wait"]


class BranchStep(_Step):
    """Go to `then` when the predicate holds, else to `else`; either defaults to the next step."""

    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["branch"]
    predicate: str
    then: Name | None = None
    otherwise: Name | None = Field(default=None, alias="else")

    @field_validator("predicate")
    @classmethod
    def _known_predicate(cls, value: str) -> str:
        if value not in PREDICATES:
            raise ValueError(f"unknown predicate {value!r}; known: {', '.join(sorted(PREDICATES))}")
        return value


class SendStep(_Step):
    kind: Literal["send"]
    content: str
    channels: tuple[str, ...] = Field(min_length=1)
    # The longest SMS the step may send, in segments (each one billed): longer, the next channel carries it.
    sms_segments: int = Field(default=2, ge=1, le=10)
    # The most one message of the step may cost on a paid channel, in the currency of the channel's rates
    # (an SMS priced at `sms_segments`); dearer, the next channel carries it. None: any price.
    max_price: Decimal | None = None

    @field_validator("max_price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal | None:
        return None if value is None else parse_price(value)

    @field_validator("content")
    @classmethod
    def _known_content(cls, value: str) -> str:
        if value not in CONTENTS:
            raise ValueError(f"unknown content {value!r}; known: {', '.join(sorted(CONTENTS))}")
        return value

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return validate_channels(value)

    @model_validator(mode="after")
    def _priced_channel(self) -> Self:
        if self.max_price is not None and not set(self.channels) & set(PAID_CHANNELS):
            raise ValueError(f"max_price caps what {' and '.join(PAID_CHANNELS)} cost: the step uses neither")
        return self


class ExitStep(_Step):
    kind: Literal["exit"]


Step = Annotated[WaitStep | BranchStep | SendStep | ExitStep, Field(discriminator="kind")]


class Trigger(_Model):
    event: Literal[
        "checkout_changed",
        "customer_subscribed",
        "order_paid",
        "order_lapsed",
        "cart_abandoned",
        "product_browsed",
        "price_dropped",
    ]
    # order_lapsed: how old the last order must become; cart_abandoned: how long without a checkout;
    # product_browsed: how long after the view without an addition to cart or a checkout.
    after: Duration | None = None

    @model_validator(mode="after")
    def _lapse(self) -> Self:
        if self.event in TIMED_TRIGGERS and self.after is None:
            raise ValueError(f'`after` is required with event = "{self.event}", and only there')
        if self.event not in TIMED_TRIGGERS and self.after is not None:
            timed = " or ".join(f'"{event}"' for event in sorted(TIMED_TRIGGERS, reverse=True))
            raise ValueError(f"`after` is required with event = {timed}, and only there")
        return self


class Entry(_Model):
    consent: bool = True  # marketing consent on one of the flow's channels, checked at entry
    one_active_per_customer: bool = False
    replace_active: bool = False  # with one_active_per_customer: a newer subject takes over the journey
    reentry_after: Duration | None = None  # a subject (customer) may start again this long after its last entry

    @model_validator(mode="after")
    def _replace(self) -> Self:
        if self.replace_active and not self.one_active_per_customer:
            raise ValueError("replace_active needs one_active_per_customer")
        return self


DEFAULT_PRIORITY = 100  # a flow that does not say: after the shipped ones


class FlowDefinition(_Model):
    name: Name
    description: str
    subject: Literal["checkout", "order", "customer"]
    trigger: Trigger
    entry: Entry = Entry()
    goals: tuple[str, ...] = ()
    max_age: Duration | None = None  # a journey whose subject began longer ago than this ends when next due
    default_enabled: bool = True  # for shops installed after the flow shipped
    # Which flow's message goes first when a frequency cap leaves room for one: the lowest number.
    priority: int = Field(default=DEFAULT_PRIORITY, ge=1, le=1000)
    # Not Field(min_length=1): pydantic would add "at least 1 item" to the error of a flow's only step.
    steps: tuple[Step, ...]

    @field_validator("goals")
    @classmethod
    def _known_goals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [g for g in value if g not in GOALS]
        if unknown:
            raise ValueError(f"unknown goal(s) {', '.join(unknown)}; known: {', '.join(sorted(GOALS))}")
        return value

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if not value:
            raise ValueError("a flow has at least one step")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if TRIGGERS[self.trigger.event] != self.subject:
            raise ValueError(
                f"subject: the trigger {self.trigger.event} starts journeys about the {TRIGGERS[self.trigger.event]}"
            )
        ids = [step.id for step in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"steps: ids must be unique, got {', '.join(ids)}")
        for position, step in enumerate(self.steps):
            if isinstance(step, BranchStep):
                for target in (step.then, step.otherwise):
                    # Forward only: every journey then ends after at most one visit of each step.
                    if target is not None and target not in ids[position + 1 :]:
                        raise ValueError(f"steps.{step.id}: branch target {target!r} is not a later step")
            fact = step.wait.fact
            if fact is not None and INSTANT_SUBJECTS[fact] not in (self.subject, "customer"):
                raise ValueError(f"steps.{step.id}.wait.fact: {fact} is not a fact of a {self.subject}")
        return self

    @property
    def keyed_on_contact(self) -> bool:
        """Its journeys are about a contact (the subject is their id), not a Shopify customer."""
        return self.trigger.event in BROWSE_TRIGGERS

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_step(self, step_id: str) -> str | None:
        ids = [step.id for step in self.steps]
        position = ids.index(step_id) + 1
        return ids[position] if position < len(ids) else None

    @property
    def send_steps(self) -> tuple[SendStep, ...]:
        return tuple(step for step in self.steps if isinstance(step, SendStep))


def parse_price(value: Any) -> Decimal:
    """A step's `max_price`: "0.05" (or 0.05), from 0 to MAX_PRICE, at most 4 decimal places (as rates are)."""
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str | int | float | Decimal) else None
    except InvalidOperation:
        amount = None
    if (
        isinstance(value, bool) or amount is None or not amount.is_finite() or not 0 <= amount <= MAX_PRICE
        or amount != amount.quantize(Decimal("0.0001"))
    ):  # fmt: skip
        raise ValueError(
            f"expected an amount from 0 to {MAX_PRICE} with at most 4 decimal places, in the currency"
            ' of the channel\'s rates, such as "0.05"'
        )
    return abs(amount)  # abs: "-0" is zero


def validate_channels(channels: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(unknown)}; known: {', '.join(CHANNELS)}")
    if len(set(channels)) != len(channels):
        raise ValueError("each channel at most once")
    if not channels:
        raise ValueError("at least one channel")
    return tuple(channels)


class DefinitionError(ValueError):
    """A definition that cannot be used; every problem names the file and the field."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def parse_definition(text: str, source: str, *, expected_name: str | None = None) -> FlowDefinition:
    """The definition in `text` (TOML); `source` names it in errors (the file)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(source, [f"not valid TOML: {exc}"]) from None
    try:
        definition = FlowDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(source, [_problem(error) for error in exc.errors()]) from None
    if expected_name is not None and definition.name != expected_name:
        raise DefinitionError(source, [f"name: {definition.name!r} must match the file name ({expected_name!r})"])
    return definition


def _problem(error: Any) -> str:
    location = _location(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def _location(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif index > 0 and isinstance(loc[index - 1], int) and part in ("wait", "branch", "send", "exit"):
            continue  # the union's tag: the step's kind, already implied
        else:
            parts.append(str(part))
    return ".".join(parts)
