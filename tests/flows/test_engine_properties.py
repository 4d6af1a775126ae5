"""The engine's promises, over arbitrary facts and times: at most one message per step, never after a goal,
never without consent, and every journey ends.

A journey is entered, then driven as Chorus drives it: every change of its facts moves it at once, the
worker takes it whenever it is due, and every message it asks for is handed over, with an arbitrary
outcome (sent, unknown, refused, or deferred and retried as the send protocol does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flows
from flows.channels import email_refusal
from flows.definition import FlowDefinition, parse_definition
from flows.engine import SendOutcome, advance, after_send, enter, start_send
from flows.facts import (
    BrowsedProduct,
    BrowsingFacts,
    CartItem,
    CheckoutFacts,
    CheckoutLine,
    Consent,
    CustomerFacts,
    Facts,
    OrderFacts,
    OrderLine,
    PriceDrop,
    ProductNow,
    ShopFacts,
    VariantNow,
)
from flows.journey import Advance, Journey, Performed, SendIntent, Status
from flows.predicates import GOALS
from flows.tuning import FlowTuning, StepTuning

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
EMAIL = "ada@example.com"
CUSTOMER = 7
LAMP, SHADE = 101, 102
GIVE_UP_AFTER = 5  # deferred attempts before the send protocol gives up (FAILED)
POLLS_PER_GAP = 30  # a worker that falls behind takes a journey at most this often between two changes


# The definitions: the shipped ones, and two inline ones with branches and waits on facts that may never come

DEFINITIONS = Path(flows.__file__).parent / "definitions"
SHIPPED = [
    parse_definition(path.read_text(encoding="utf-8"), path.name, expected_name=path.stem)
    for path in sorted(DEFINITIONS.glob("*.toml"))
]

BRANCHING_CHECKOUT = parse_definition(
    """
name = "checkout_branches"
description = "A reminder once the customer has ordered before, a branch on whether it went out, a last try."
subject = "checkout"
max_age = "10d"
goals = ["order_placed", "checkout_completed"]

[trigger]
event = "checkout_changed"

[[steps]]
id = "first"
kind = "send"
content = "abandoned_checkout.reminder"
channels = ["sms", "email"]
wait = { anchor = "fact", fact = "customer.last_order_at", delay = "30m", max = "2d", on_timeout = "continue" }

[[steps]]
id = "check"
kind = "branch"
predicate = "previous_step_sent"
then = "pause"
else = "last_try"

[[steps]]
id = "pause"
kind = "wait"
wait = { anchor = "previous", delay = "1d" }

[[steps]]
id = "stop"
kind = "exit"

[[steps]]
id = "last_try"
kind = "send"
content = "abandoned_checkout.second_reminder"
channels = ["email"]
wait = { anchor = "entry", delay = "3d" }
""",
    "checkout_branches.toml",
)

BRANCHING_ORDER = parse_definition(
    """
name = "order_branches"
description = "Thanks, then a review request once shipped, then products to go with it."
subject = "order"
max_age = "90d"
goals = ["order_cancelled", "unsubscribed"]

[trigger]
event = "order_paid"

[entry]
consent = false

[[steps]]
id = "thanks"
kind = "send"
content = "post_purchase.thank_you"
channels = ["email"]
wait = { anchor = "entry" }

[[steps]]
id = "shipped"
kind = "branch"
predicate = "order_fulfilled"
then = "review"

[[steps]]
id = "wait_ship"
kind = "wait"
wait = { anchor = "fact", fact = "order.fulfilled_at", delay = "2d", max = "14d", on_timeout = "continue" }

[[steps]]
id = "review"
kind = "send"
content = "post_purchase.review_request"
channels = ["email", "sms"]
wait = { anchor = "previous", delay = "1d" }

[[steps]]
id = "more"
kind = "send"
content = "post_purchase.cross_sell"
channels = ["email"]
wait = { anchor = "fact", fact = "order.fulfilled_at", delay = "3d", max = "20d" }
""",
    "order_branches.toml",
)

ALL = [*SHIPPED, BRANCHING_CHECKOUT, BRANCHING_ORDER]


# The world a journey is decided on, as the subject's flow sees it at the start


def variant(variant_id: int) -> VariantNow:
    return VariantNow(
        variant_id, f"Product {variant_id}", None, Decimal("18.00"), "EUR", True, False, None, None, variant_id * 10
    )


def related(product_id: int, product_type: str) -> ProductNow:
    return ProductNow(product_id, f"P{product_id}", product_type, "Lumen", None, None, Decimal("30"), "EUR", True, True)


def initial_facts(definition: FlowDefinition) -> Facts:
    customer = CustomerFacts(CUSTOMER, EMAIL, None, "Ada", created_at=T0 - 100 * DAY)
    base = Facts(
        shop=ShopFacts(installed=True, name="Lumen Lamps", postal_address="1 Main St"),
        customer=customer,
        configured_channels=frozenset({"email"}),
        variants={LAMP: variant(LAMP), SHADE: variant(SHADE)},
    )
    if definition.subject == "checkout":
        left = tuple(CheckoutLine(v, v * 10, f"Product {v}", None, 1, Decimal("20.00")) for v in (LAMP, SHADE))
        checkout = CheckoutFacts(
            "ck-1", "cart-1", EMAIL, CUSTOMER, "Ada", True, "EUR", "https://lumen.example/r", left, T0, T0, None
        )
        return replace(base, checkout=checkout)
    if definition.subject == "order":
        bought_lines = tuple(OrderLine(v, v * 10, f"Product {v}", 1, Decimal("20.00")) for v in (LAMP, SHADE))
        subject = OrderFacts(
            5001, "ck-9", None, CUSTOMER, EMAIL, T0, "web", "#1001", "paid", accepts_marketing=True, lines=bought_lines
        )
        bought = related(LAMP * 10, "Lamp")
        return replace(base, order=subject, orders=(subject,), related=(bought, related(1, "Lamp"), related(2, "Lamp")))
    # A customer: subscribed (welcome), or whose last order is three months old (winback), or (a browse flow)
    # a contact whose browser filled a cart (after a long look at the lamp, since cheaper).
    old = OrderFacts(4001, None, None, CUSTOMER, EMAIL, T0 - 90 * DAY, "web")
    if definition.keyed_on_contact:
        cart = (CartItem(LAMP, LAMP * 10, 1, T0), CartItem(SHADE, SHADE * 10, 2, T0 - DAY))
        base = replace(
            base,
            shop=replace(base.shop, url="https://lumen.example"),
            browsing=BrowsingFacts(
                cart=cart,
                cart_updated_at=T0,
                browsed=(BrowsedProduct(LAMP * 10, LAMP, T0),),
                price_drops=(PriceDrop(LAMP, LAMP * 10, Decimal("1000"), T0),),  # the lamp was dearer
            ),
        )
    return replace(
        base,
        customer=replace(customer, last_order_at=old.created_at),
        orders=(old,),
        email_consent=Consent("subscribed", T0 - DAY, unsubscribed_here=False),
    )


SUBJECTS = {"checkout": "ck-1", "order": "5001", "customer": str(CUSTOMER)}


# Changes: what can happen to the facts and the merchant's settings between two decisions

Change = tuple[Any, ...]

DELAYS = [None, timedelta(0), 30 * MINUTE, timedelta(hours=1), 2 * DAY]
CHANNEL_ORDERS = [None, ("email",), ("sms",), ("sms", "email")]

changes: st.SearchStrategy[Change] = st.one_of(
    st.tuples(
        st.just("order"),
        st.sampled_from(["checkout_token", "cart_token", "customer", "email", "pos", "stranger"]),
        st.booleans(),  # placed now (True), or dated long before the subject began
    ),
    st.tuples(st.just("consent"), st.sampled_from([None, "subscribed", "not_subscribed", "unsubscribed", "pending"])),
    st.tuples(st.just("box"), st.booleans()),
    st.tuples(st.just("unsubscribe")),
    st.tuples(st.just("complete")),
    st.tuples(st.just("update")),
    st.tuples(st.just("price"), st.sampled_from([LAMP, SHADE]), st.sampled_from(["9.99", "18.00", "25.50"])),
    st.tuples(st.just("currency"), st.sampled_from([LAMP, SHADE]), st.sampled_from(["EUR", "USD"])),
    st.tuples(st.just("stock"), st.sampled_from([LAMP, SHADE]), st.booleans()),
    st.tuples(st.just("delete"), st.sampled_from([LAMP, SHADE])),
    st.tuples(st.just("related_stock"), st.sampled_from([1, 2]), st.booleans()),
    st.tuples(st.just("channels"), st.sampled_from([frozenset(), frozenset({"email"}), frozenset({"email", "sms"})])),
    st.tuples(st.just("flow"), st.booleans()),
    st.tuples(
        st.just("step"),
        st.integers(min_value=0, max_value=9),
        st.builds(
            StepTuning,
            delay=st.sampled_from(DELAYS),
            enabled=st.booleans(),
            channels=st.sampled_from(CHANNEL_ORDERS),
        ),
    ),
    st.tuples(st.just("postal"), st.booleans()),
    st.tuples(st.just("refuse")),
    st.tuples(st.just("fulfil")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("refund")),
    st.tuples(st.just("vanish")),
    st.tuples(st.just("uninstall")),
    st.tuples(st.just("nothing")),
)

# How long until the next change: to the journey's due time, an instant that matters in the shipped flows, or any.
gaps: st.SearchStrategy[timedelta | None] = st.one_of(
    st.none(),
    st.sampled_from([0, 1, 5, 30, 59, 60, 61, 24 * 60, 2 * 24 * 60, 7 * 24 * 60, 60 * 24 * 60]).map(
        lambda m: m * MINUTE
    ),
    st.integers(min_value=0, max_value=120 * 24 * 60).map(lambda m: m * MINUTE),
)

outcomes = st.lists(st.sampled_from(["sent", "unknown", "failed", "deferred"]), max_size=20)


def changed(
    definition: FlowDefinition, facts: Facts, tuning: FlowTuning, change: Change, now: datetime
) -> tuple[Facts, FlowTuning]:
    kind = change[0]
    checkout, order = facts.checkout, facts.order
    if kind == "order":
        placed = _placed(facts, change[1], now if change[2] else T0 - 200 * DAY)
        customer = facts.customer
        if customer is not None and placed.customer_id == CUSTOMER and change[2]:
            customer = replace(customer, last_order_at=now)
        return replace(facts, orders=(*facts.orders, placed), customer=customer), tuning
    if kind == "consent":
        consent = replace(facts.email_consent, state=change[1], changed_at=now)
        return replace(facts, email_consent=consent), tuning
    if kind == "box":
        if checkout is not None:  # a ticked or unticked box comes with an update of the checkout
            return replace(facts, checkout=replace(checkout, accepts_marketing=change[1], updated_at=now)), tuning
        if order is not None:
            return _with_order(facts, replace(order, accepts_marketing=change[1])), tuning
        return facts, tuning
    if kind == "unsubscribe":
        return replace(facts, email_consent=replace(facts.email_consent, unsubscribed_here=True)), tuning
    if kind in ("complete", "update"):
        if checkout is None:
            return facts, tuning
        stamp: dict[str, Any] = {"completed_at": now} if kind == "complete" else {"updated_at": now}
        return replace(facts, checkout=replace(checkout, **stamp)), tuning
    if kind in ("price", "currency", "stock", "delete"):
        current = facts.variants.get(change[1])
        if current is None:
            return facts, tuning
        update = {
            "price": lambda: {"price": Decimal(change[2])},
            "currency": lambda: {"currency": change[2]},
            "stock": lambda: {"in_stock": change[2]},
            "delete": lambda: {"deleted": True},
        }[kind]()
        return replace(facts, variants={**facts.variants, change[1]: replace(current, **update)}), tuning
    if kind == "related_stock":
        products = tuple(replace(p, in_stock=change[2]) if p.product_id == change[1] else p for p in facts.related)
        return replace(facts, related=products), tuning
    if kind == "channels":
        return replace(facts, configured_channels=change[1]), tuning
    if kind == "flow":
        return facts, replace(tuning, enabled=change[1])
    if kind == "step":
        step_id = definition.steps[change[1] % len(definition.steps)].id
        return facts, replace(tuning, steps={**tuning.steps, step_id: change[2]})
    if kind == "postal":
        return replace(facts, shop=replace(facts.shop, postal_address="1 Main St" if change[1] else None)), tuning
    if kind == "refuse":
        return replace(facts, refused_addresses=frozenset({EMAIL})), tuning
    if kind in ("fulfil", "cancel", "refund"):
        if order is None:
            return facts, tuning
        stamps: dict[str, dict[str, Any]] = {
            "fulfil": {"fulfilled_at": now},
            "cancel": {"cancelled_at": now},
            "refund": {"financial_status": "refunded"},
        }
        return _with_order(facts, replace(order, **stamps[kind])), tuning
    if kind == "vanish":
        gone: dict[str, Any] = {definition.subject: None}
        return replace(facts, **gone), tuning
    if kind == "uninstall":
        return replace(facts, shop=replace(facts.shop, installed=False)), tuning
    return facts, tuning


def _placed(facts: Facts, tie: str, created_at: datetime) -> OrderFacts:
    number = 6000 + len(facts.orders)
    ties: dict[str, dict[str, Any]] = {
        "checkout_token": {"checkout_token": "ck-1"},
        "cart_token": {"cart_token": "cart-1"},
        "customer": {"customer_id": CUSTOMER},
        "email": {"email": EMAIL},
        "pos": {"customer_id": CUSTOMER, "source_name": "pos"},
        "stranger": {},
    }
    placed = OrderFacts(number, None, None, None, "bob@example.com", created_at, "web")
    return replace(placed, **ties[tie])


def _with_order(facts: Facts, order: OrderFacts) -> Facts:
    others = tuple(o for o in facts.orders if o.order_id != order.order_id)
    return replace(facts, order=order, orders=(order, *others))


# Driving one journey, checking every decision against the promises


@dataclass
class Run:
    definition: FlowDefinition
    facts: Facts
    outcomes: list[str]
    now: datetime = T0
    tuning: FlowTuning = field(default_factory=FlowTuning)
    journey: Journey | None = None
    handed: Counter[str] = field(default_factory=Counter)  # hand-overs of each step that may have sent
    deferrals: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> bool:
        return self.journey is not None and self.journey.active

    def move(self) -> None:
        """A change of the facts, or the worker: the journey decided again on the facts as they are now."""
        journey = self.journey
        if journey is None or journey.status is Status.INELIGIBLE:
            moved = enter(
                self.definition, self.tuning, self.facts, SUBJECTS[self.definition.subject], self.now, current=journey
            )
            if moved is None:
                return
        elif journey.status is Status.WAITING:
            goal = self.goal(journey)
            moved = advance(self.definition, self.tuning, journey, self.facts, self.now)
            if goal is not None:  # exited; or ended, when the shop or the subject went at the same time
                assert moved.journey.status is Status.DONE, f"{goal} reached, yet the journey goes on"
        else:
            return
        self.take(moved)

    def take(self, moved: Advance) -> None:
        for _ in range(2 * len(self.definition.steps) + 2):
            if moved.send is None:
                break
            journey = moved.journey
            self.check_send(journey, moved.send)
            outcome = self.hand_over(moved.send)
            journey = after_send(self.definition, start_send(journey, moved.send), outcome)
            if outcome.performed is None:
                moved = Advance(journey)  # waits for its retry
                break
            moved = advance(self.definition, self.tuning, journey, self.facts, self.now)
        else:
            pytest.fail("a journey asked for more messages than it has steps")
        self.journey = moved.journey
        if moved.journey.status is Status.WAITING:  # never left for an event alone, never due in the past
            assert moved.journey.due_at is not None, moved
            assert moved.journey.due_at > self.now, moved

    def check_send(self, journey: Journey, intent: SendIntent) -> None:
        assert journey.status is Status.WAITING
        assert journey.step == intent.step
        assert self.handed[intent.step] == 0, f"{intent.step} handed over twice"
        assert intent.step not in journey.performed
        goal = self.goal(journey)
        assert goal is None, f"a message after the goal {goal} was reached"
        assert email_refusal(self.facts) is None, f"a message without consent: {email_refusal(self.facts)}"
        assert (intent.channel, intent.address) == ("email", self.facts.email)
        assert self.tuning.enabled
        assert self.tuning.step(intent.step).enabled
        assert self.facts.shop.installed

    def hand_over(self, intent: SendIntent) -> SendOutcome:
        said = self.outcomes.pop(0) if self.outcomes else "sent"
        if said == "deferred" and self.deferrals[intent.step] < GIVE_UP_AFTER:
            self.deferrals[intent.step] += 1
            return SendOutcome(None, self.now, retry_at=self.now + 5 * MINUTE * 2 ** self.deferrals[intent.step])
        performed = {"sent": Performed.SENT, "unknown": Performed.UNKNOWN}.get(said, Performed.FAILED)
        self.handed[intent.step] += 1
        return SendOutcome(performed, self.now)

    def goal(self, journey: Journey) -> str | None:
        for name in self.definition.goals:
            reached = GOALS[name](self.facts, journey)
            if reached is not None:
                return str(reached)
        return None

    def pass_time(self, until: datetime) -> None:
        """The worker takes the journey each time it is due (or, fallen behind, at `until`)."""
        for _ in range(POLLS_PER_GAP):
            due = self.journey.due_at if self.journey is not None and self.active else None
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            self.move()
        self.now = max(self.now, until)

    def settle(self) -> None:
        """Nothing changes any more and time passes every wait, maximum and age: the journey must end."""
        tuning_delays = [t.delay for t in self.tuning.steps.values() if t.delay is not None]
        horizon = (
            sum((s.wait.delay + (s.wait.max or timedelta(0)) for s in self.definition.steps), timedelta(0))
            + sum(tuning_delays, timedelta(0))
            + (self.definition.max_age or timedelta(0))
            + DAY
        )
        self.now += horizon
        for _ in range(len(self.definition.steps) * (GIVE_UP_AFTER + 2) + 2):
            if not self.active:
                break
            assert self.journey is not None
            assert self.journey.due_at is not None
            self.now = max(self.now, self.journey.due_at)
            self.move()
        assert not self.active, f"the journey never ended: {self.journey}"


def drive(
    definition: FlowDefinition,
    prelude: Sequence[Change],
    events: Sequence[tuple[timedelta | None, Change]],
    said: Sequence[str],
) -> Run:
    run = Run(definition, initial_facts(definition), list(said))
    for change in prelude:  # the subject as it was when its trigger fired
        run.facts, run.tuning = changed(definition, run.facts, run.tuning, change, T0)
    run.move()
    for gap, change in events:
        if gap is None:  # right when the journey is due
            due = run.journey.due_at if run.journey is not None and run.active else None
            until = due if due is not None and due > run.now else run.now
        else:
            until = run.now + gap
        run.pass_time(until)
        run.facts, run.tuning = changed(definition, run.facts, run.tuning, change, run.now)
        run.move()
    run.settle()
    return run


@pytest.mark.parametrize("definition", ALL, ids=lambda d: d.name)
@given(
    prelude=st.lists(changes, max_size=3),
    events=st.lists(st.tuples(gaps, changes), max_size=20),
    said=outcomes,
)
def test_at_most_one_message_per_step_never_after_a_goal_never_without_consent_and_every_journey_ends(
    definition: FlowDefinition,
    prelude: list[Change],
    events: list[tuple[timedelta | None, Change]],
    said: list[str],
) -> None:
    run = drive(definition, prelude, events, said)

    assert all(count <= 1 for count in run.handed.values())
    if run.journey is not None and run.journey.status is Status.DONE:
        assert run.journey.due_at is None


@pytest.mark.parametrize("definition", ALL, ids=lambda d: d.name)
def test_a_journey_left_alone_ends_having_sent_each_of_its_messages_once(definition: FlowDefinition) -> None:
    """Nothing happens, the worker is on time and every hand-over succeeds: the flow sends each message once."""
    run = drive(definition, [], [(None, ("nothing",))] * 3 * len(definition.steps), [])

    assert run.journey is not None
    assert run.journey.status is Status.DONE
    assert sum(run.handed.values()) >= 1
    assert set(run.handed.values()) == {1}
