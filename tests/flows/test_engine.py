"""The journey engine, step kind by step kind and goal by goal, on hand-built facts: what is sent, skipped,
when, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import flows
from flows.channels import candidates
from flows.contents import CartReminder
from flows.definition import FlowDefinition, parse_definition
from flows.engine import RECHECK_UNCONFIGURED, Precedents, SendOutcome, advance, after_send, end, enter, start_send
from flows.facts import (
    CheckoutFacts,
    CheckoutLine,
    Consent,
    ContactFacts,
    CustomerFacts,
    Facts,
    OrderFacts,
    OrderLine,
    ShopFacts,
    VariantNow,
)
from flows.journey import Advance, Journey, Performed, Status
from flows.policy import policy_from_json
from flows.reasons import Reason
from flows.tuning import FlowTuning, StepTuning

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
EMAIL = "ada@example.com"
CUSTOMER = 7
LAMP, SHADE = 101, 102  # variants
TOKEN, CART = "ck-1", "cart-1"
ORDER = 5001
ON = FlowTuning()
EMAIL_SET_UP = frozenset({"email"})

# Facts, as the mirror would describe a small lamp shop


# Windows open all day: these tests are not about the time of day (tests/flows/test_quiet_hours.py is).
ALL_DAY = policy_from_json(
    {"quiet_hours": "email=00:00-24:00,sms=00:00-24:00,whatsapp=00:00-24:00", "caps": [], "growth_threshold": 0}
)
# Someone living where no law narrows when a text may reach them.
IN_LONDON = ContactFacts(1, "Europe/London", "GB")


def shop(**changes: Any) -> ShopFacts:
    facts = ShopFacts(installed=True, name="Lumen Lamps", postal_address="1 Main St, Springfield", policy=ALL_DAY)
    return replace(facts, **changes)


def variant(variant_id: int = LAMP, **changes: Any) -> VariantNow:
    base = VariantNow(
        variant_id=variant_id,
        product_title={LAMP: "Desk lamp", SHADE: "Lamp shade"}.get(variant_id, "Thing"),
        variant_title="Red",
        price=Decimal("18.00"),
        currency="EUR",
        in_stock=True,
        deleted=False,
        image_url=f"https://cdn.example/{variant_id}.png",
        url=f"https://lumen.example/products/{variant_id}",
        product_id=variant_id * 10,
    )
    return replace(base, **changes)


def line(variant_id: int = LAMP, price: str = "20.00", quantity: int = 1) -> CheckoutLine:
    return CheckoutLine(variant_id, variant_id * 10, "Desk lamp", "Red", quantity, Decimal(price))


def checkout(**changes: Any) -> CheckoutFacts:
    base = CheckoutFacts(
        token=TOKEN,
        cart_token=CART,
        email=EMAIL,
        customer_id=CUSTOMER,
        first_name="Ada",
        accepts_marketing=True,
        currency="EUR",
        recovery_url="https://lumen.example/recover/ck-1",
        lines=(line(),),
        created_at=T0,
        updated_at=T0,
        completed_at=None,
    )
    return replace(base, **changes)


def checkout_facts(**changes: Any) -> Facts:
    """A left checkout: the customer ticked the marketing box, the lamp is still on sale (cheaper)."""
    base = Facts(
        shop=shop(),
        customer=CustomerFacts(CUSTOMER, EMAIL, None, "Ada"),
        checkout=checkout(),
        variants={LAMP: variant()},
        configured_channels=EMAIL_SET_UP,
    )
    return replace(base, **changes)


def order(**changes: Any) -> OrderFacts:
    base = OrderFacts(
        order_id=ORDER,
        checkout_token="ck-other",
        cart_token=None,
        customer_id=CUSTOMER,
        email=EMAIL,
        created_at=T0,
        source_name="web",
        name="#1001",
        financial_status="paid",
        accepts_marketing=True,
        currency="EUR",
        total_price=Decimal("20.00"),
        lines=(OrderLine(LAMP, LAMP * 10, "Desk lamp", 1, Decimal("20.00")),),
    )
    return replace(base, **changes)


def order_facts(**changes: Any) -> Facts:
    """A paid order of a customer who ticked the marketing box."""
    subject = changes.pop("order", order())
    base = Facts(
        shop=shop(),
        customer=CustomerFacts(CUSTOMER, EMAIL, None, "Ada"),
        order=subject,
        orders=(subject,),
        variants={LAMP: variant()},
        configured_channels=EMAIL_SET_UP,
    )
    return replace(base, **changes)


def customer_facts(**changes: Any) -> Facts:
    """A customer subscribed to email marketing."""
    base = Facts(
        shop=shop(),
        customer=CustomerFacts(CUSTOMER, EMAIL, None, "Ada", created_at=T0 - DAY),
        email_consent=Consent("subscribed", T0, unsubscribed_here=False),
        configured_channels=EMAIL_SET_UP,
    )
    return replace(base, **changes)


# Definitions

DEFINITIONS = Path(flows.__file__).parent / "definitions"


def shipped(name: str) -> FlowDefinition:
    return parse_definition((DEFINITIONS / f"{name}.toml").read_text(encoding="utf-8"), name, expected_name=name)


ABANDONED, POST_PURCHASE, WELCOME, WINBACK = (
    shipped(name) for name in ("abandoned_checkout", "post_purchase", "welcome", "winback")
)

TRIGGER = {"checkout": "checkout_changed", "order": "order_paid", "customer": "customer_subscribed"}


def flow(steps: str, *, subject: str = "checkout", goals: str = "[]", entry: str = "", top: str = "") -> FlowDefinition:
    text = f"""
name = "demo"
description = "A flow for the tests"
subject = "{subject}"
goals = {goals}
{top}

[trigger]
event = "{TRIGGER[subject]}"

[entry]
{entry}
{steps}
"""
    return parse_definition(text, "demo.toml")


def send(step_id: str, content: str, wait: str = "", channels: str = '["email"]') -> str:
    wait_line = f"wait = {{ {wait} }}" if wait else ""
    return f'\n[[steps]]\nid = "{step_id}"\nkind = "send"\ncontent = "{content}"\nchannels = {channels}\n{wait_line}\n'


def step(step_id: str, kind: str, body: str = "") -> str:
    return f'\n[[steps]]\nid = "{step_id}"\nkind = "{kind}"\n{body}\n'


# Driving journeys


def entered(
    definition: FlowDefinition, facts: Facts, now: datetime = T0, tuning: FlowTuning = ON, **options: Any
) -> Advance:
    moved = enter(definition, tuning, facts, "subject-1", now, **options)
    assert moved is not None
    assert moved.journey.status is not Status.INELIGIBLE, moved.decisions
    return moved


def handed_over(
    definition: FlowDefinition, moved: Advance, at: datetime, performed: Performed | None = Performed.SENT
) -> Journey:
    assert moved.send is not None, moved.decisions
    sending = start_send(moved.journey, moved.send)
    assert sending.status is Status.SENDING
    return after_send(definition, sending, SendOutcome(performed, at, retry_at=None if performed else at + 5 * MINUTE))


def said(moved: Advance) -> list[tuple[str | None, str, str]]:
    return [(d.step, d.outcome, str(d.reason)) for d in moved.decisions]


def sent_step(moved: Advance) -> str | None:
    return moved.send.step if moved.send else None


# Waits


def test_a_wait_anchored_at_entry_counts_from_when_the_trigger_fired_even_when_the_news_came_late() -> None:
    definition = flow(send("hello", "welcome.welcome_1", 'anchor = "entry", delay = "2h"'), subject="customer")

    moved = entered(definition, customer_facts(), now=T0 + 30 * MINUTE, triggered_at=T0)

    assert moved.journey.due_at == T0 + 2 * HOUR
    assert said(moved) == [(None, "entered", "enrolled"), ("hello", "waiting", "wait")]
    assert advance(definition, ON, moved.journey, customer_facts(), T0 + 2 * HOUR - MINUTE).send is None
    assert sent_step(advance(definition, ON, moved.journey, customer_facts(), T0 + 2 * HOUR)) == "hello"


def test_a_wait_anchored_at_the_previous_step_counts_from_when_it_was_sent() -> None:
    definition = flow(
        send("first", "welcome.welcome_1", 'anchor = "entry"')
        + send("second", "welcome.welcome_2", 'anchor = "previous", delay = "1d"'),
        subject="customer",
    )
    moved = entered(definition, customer_facts())
    assert sent_step(moved) == "first"

    journey = handed_over(definition, moved, at=T0 + 3 * MINUTE)  # the provider took three minutes
    moved = advance(definition, ON, journey, customer_facts(), T0 + 3 * MINUTE)

    assert (moved.journey.step, moved.journey.due_at) == ("second", T0 + 3 * MINUTE + DAY)
    assert moved.journey.performed == {"first": Performed.SENT}


def test_after_a_skipped_step_the_next_wait_counts_from_when_the_skipped_one_was_due() -> None:
    tuning = FlowTuning(steps={"reminder": StepTuning(enabled=False)})
    moved = entered(ABANDONED, checkout_facts(), tuning=tuning)

    late = advance(ABANDONED, tuning, moved.journey, checkout_facts(), T0 + 5 * HOUR)  # the worker was late

    assert said(late) == [("reminder", "skipped", "step_disabled"), ("second_reminder", "waiting", "wait")]
    assert late.journey.due_at == T0 + HOUR + DAY  # the reminder was due at 11:00
    assert late.send is None


def test_a_wait_step_does_nothing_and_the_next_step_counts_from_its_end() -> None:
    definition = flow(
        step("pause", "wait", 'wait = { anchor = "entry", delay = "1d" }')
        + send("reminder", "abandoned_checkout.reminder", 'anchor = "previous", delay = "2h"')
    )
    moved = entered(definition, checkout_facts())
    assert (moved.journey.step, moved.journey.due_at) == ("pause", T0 + DAY)

    moved = advance(definition, ON, moved.journey, checkout_facts(), T0 + DAY + HOUR)

    assert (moved.journey.step, moved.journey.due_at, moved.send) == ("reminder", T0 + DAY + 2 * HOUR, None)
    assert moved.journey.performed == {"pause": Performed.WAITED}


def test_a_later_update_of_the_checkout_pushes_the_reminder_back() -> None:
    moved = entered(ABANDONED, checkout_facts())
    assert moved.journey.due_at == T0 + HOUR

    updated = checkout_facts(checkout=checkout(updated_at=T0 + 40 * MINUTE))
    pushed = advance(ABANDONED, ON, moved.journey, updated, T0 + 45 * MINUTE)

    assert pushed.journey.due_at == T0 + HOUR + 40 * MINUTE
    assert said(pushed) == [("reminder", "waiting", "wait")]
    assert pushed.decisions[0].detail == {"due_at": (T0 + HOUR + 40 * MINUTE).isoformat()}
    assert advance(ABANDONED, ON, pushed.journey, updated, T0 + HOUR + 5 * MINUTE).send is None
    assert sent_step(advance(ABANDONED, ON, pushed.journey, updated, T0 + HOUR + 40 * MINUTE)) == "reminder"


def test_looking_again_at_an_unchanged_wait_records_nothing() -> None:
    moved = entered(ABANDONED, checkout_facts())

    again = advance(ABANDONED, ON, moved.journey, checkout_facts(), T0 + 10 * MINUTE)

    assert again.decisions == ()
    assert again.journey == moved.journey


def after_thanks(facts: Facts, definition: FlowDefinition = POST_PURCHASE) -> Advance:
    """A post-purchase journey whose thank-you went out at entry, now waiting on the order's fulfilment."""
    moved = entered(definition, facts)
    assert sent_step(moved) == definition.steps[0].id
    return advance(definition, ON, handed_over(definition, moved, at=T0), facts, T0)


def test_a_wait_for_a_fact_that_is_missing_is_looked_at_again_at_its_maximum_and_then_ends_the_journey() -> None:
    waiting = after_thanks(order_facts())
    assert (waiting.journey.step, waiting.journey.due_at) == ("review_request", T0 + 60 * DAY)

    assert advance(POST_PURCHASE, ON, waiting.journey, order_facts(), T0 + 59 * DAY).journey.status is Status.WAITING
    expired = advance(POST_PURCHASE, ON, waiting.journey, order_facts(), T0 + 60 * DAY)

    assert expired.journey.status is Status.DONE
    assert said(expired)[-1] == ("review_request", "ended", "wait_expired")
    assert expired.send is None


def test_a_fact_that_comes_in_time_anchors_the_wait() -> None:
    waiting = after_thanks(order_facts())
    shipped_facts = order_facts(order=order(fulfilled_at=T0 + 3 * DAY))

    moved = advance(POST_PURCHASE, ON, waiting.journey, shipped_facts, T0 + 3 * DAY)

    assert moved.journey.due_at == T0 + 10 * DAY  # a week after it shipped
    assert sent_step(advance(POST_PURCHASE, ON, moved.journey, shipped_facts, T0 + 10 * DAY)) == "review_request"


GOES_ON = flow(
    send("thanks", "post_purchase.thank_you", 'anchor = "entry"')
    + send(
        "review",
        "post_purchase.review_request",
        'anchor = "fact", fact = "order.fulfilled_at", delay = "7d", max = "30d", on_timeout = "continue"',
    )
    + send("again", "post_purchase.thank_you", 'anchor = "previous", delay = "1d"'),
    subject="order",
)


def test_a_wait_that_times_out_with_continue_skips_its_step_and_goes_on_from_the_deadline() -> None:
    waiting = after_thanks(order_facts(), GOES_ON)
    assert waiting.journey.due_at == T0 + 30 * DAY

    # The worker looks two days after the deadline: the next step counts from the deadline, not from then.
    moved = advance(GOES_ON, ON, waiting.journey, order_facts(), T0 + 32 * DAY)

    assert moved.journey.performed["review"] is Performed.WAITED
    assert ("review", "skipped", "wait_expired") in said(moved)
    assert sent_step(moved) == "again"


# Branches and exits

BRANCHING = """
[[steps]]
id = "check"
kind = "branch"
predicate = "order_fulfilled"
{targets}
""" + "".join(
    send(step_id, content)
    for step_id, content in (
        ("plain", "post_purchase.thank_you"),
        ("shipped_note", "post_purchase.review_request"),
        ("waiting_note", "post_purchase.thank_you"),
    )
)


@pytest.mark.parametrize(
    ("fulfilled", "targets", "first_sent", "reason"),
    [
        pytest.param(True, 'then = "shipped_note"\nelse = "waiting_note"', "shipped_note", "branch_yes", id="yes"),
        pytest.param(False, 'then = "shipped_note"\nelse = "waiting_note"', "waiting_note", "branch_no", id="no"),
        pytest.param(True, 'else = "waiting_note"', "plain", "branch_yes", id="yes, to the next step by default"),
        pytest.param(False, 'then = "shipped_note"', "plain", "branch_no", id="no, to the next step by default"),
    ],
)
def test_a_branch_goes_where_its_predicate_says(fulfilled: bool, targets: str, first_sent: str, reason: str) -> None:
    definition = flow(BRANCHING.format(targets=targets), subject="order")
    facts = order_facts(order=order(fulfilled_at=T0 if fulfilled else None))

    moved = entered(definition, facts)

    assert sent_step(moved) == first_sent
    assert said(moved)[1] == ("check", "branched", reason)
    assert moved.decisions[1].detail == {"predicate": "order_fulfilled", "to": first_sent}
    assert moved.journey.performed == {"check": Performed.BRANCHED}


EXITING = flow(
    step("check", "branch", 'predicate = "order_fulfilled"\nthen = "stop"')
    + send("note", "post_purchase.thank_you")
    + step("stop", "exit")
    + send("never", "post_purchase.review_request"),
    subject="order",
)


def test_an_exit_step_ends_the_journey_and_nothing_after_it_is_sent() -> None:
    shipped_order = order_facts(order=order(fulfilled_at=T0))

    moved = entered(EXITING, shipped_order)

    assert moved.send is None
    assert moved.journey.status is Status.DONE
    assert said(moved)[-1] == ("stop", "completed", "exit")


def test_an_exit_step_after_a_message_ends_the_journey_once_the_message_is_out() -> None:
    moved = entered(EXITING, order_facts())
    assert sent_step(moved) == "note"

    done = advance(EXITING, ON, handed_over(EXITING, moved, at=T0), order_facts(), T0)

    assert (done.journey.status, done.journey.reason, done.send) == (Status.DONE, Reason.EXIT, None)


def test_a_journey_past_its_last_step_is_completed() -> None:
    definition = flow(send("hello", "welcome.welcome_1", 'anchor = "entry"'), subject="customer")
    moved = entered(definition, customer_facts())

    done = advance(definition, ON, handed_over(definition, moved, at=T0), customer_facts(), T0)

    assert said(done) == [(None, "completed", "completed")]
    assert done.journey.status is Status.DONE


# Sending


def test_the_reminder_shows_the_current_price_and_goes_to_the_checkouts_address() -> None:
    moved = entered(ABANDONED, checkout_facts())

    due = advance(ABANDONED, ON, moved.journey, checkout_facts(), T0 + HOUR)

    intent = due.send
    assert intent is not None
    assert (intent.step, intent.channel, intent.address) == ("reminder", "email", EMAIL)
    assert intent.content_id == "abandoned_checkout.reminder"
    assert isinstance(intent.content, CartReminder)
    [item] = intent.content.items
    assert (item.title, item.unit_price, item.currency) == ("Desk lamp", Decimal("18.00"), "EUR")  # not 20.00
    assert intent.checks == ({"channel": "email", "outcome": "usable"}, {"channel": "sms", "outcome": "not_configured"})
    assert (due.journey.status, due.journey.due_at) == (Status.WAITING, T0 + HOUR)  # due until handed over


def test_a_sold_out_item_is_left_out_of_the_reminder() -> None:
    facts = checkout_facts(
        checkout=checkout(lines=(line(LAMP), line(SHADE, price="9.00"))),
        variants={LAMP: variant(LAMP), SHADE: variant(SHADE, in_stock=False)},
    )
    moved = entered(ABANDONED, facts)

    intent = advance(ABANDONED, ON, moved.journey, facts, T0 + HOUR).send

    assert intent is not None
    assert [i.title for i in intent.content.items] == ["Desk lamp"]
    assert intent.content.dropped_items == 1


def test_a_reminder_with_nothing_left_to_buy_is_skipped_and_the_journey_goes_on() -> None:
    moved = entered(ABANDONED, checkout_facts())
    gone = checkout_facts(variants={LAMP: variant(deleted=True)})

    skipped = advance(ABANDONED, ON, moved.journey, gone, T0 + HOUR)

    assert skipped.send is None
    assert said(skipped) == [("reminder", "skipped", "nothing_left"), ("second_reminder", "waiting", "wait")]
    assert skipped.journey.performed == {"reminder": Performed.SKIPPED}
    back = checkout_facts()  # back in stock: the second reminder may go out
    assert sent_step(advance(ABANDONED, ON, skipped.journey, back, T0 + HOUR + DAY)) == "second_reminder"


def test_a_step_the_merchant_switched_off_is_skipped_and_the_next_one_still_goes_out() -> None:
    tuning = FlowTuning(steps={"reminder": StepTuning(enabled=False)})
    moved = entered(ABANDONED, checkout_facts(), tuning=tuning)

    skipped = advance(ABANDONED, tuning, moved.journey, checkout_facts(), T0 + HOUR)
    later = advance(ABANDONED, tuning, skipped.journey, checkout_facts(), T0 + HOUR + DAY)

    assert said(skipped)[0] == ("reminder", "skipped", "step_disabled")
    assert skipped.send is None
    assert sent_step(later) == "second_reminder"


def test_a_merchants_delay_replaces_the_definitions() -> None:
    tuning = FlowTuning(steps={"reminder": StepTuning(delay=30 * MINUTE)})

    moved = entered(ABANDONED, checkout_facts(), tuning=tuning)

    assert moved.journey.due_at == T0 + 30 * MINUTE
    assert sent_step(advance(ABANDONED, tuning, moved.journey, checkout_facts(), T0 + 30 * MINUTE)) == "reminder"


def test_the_first_usable_channel_in_the_merchants_order_is_chosen() -> None:
    tuning = FlowTuning(steps={"reminder": StepTuning(channels=("sms", "email"))})
    facts = checkout_facts(configured_channels=frozenset({"email", "sms"}))
    moved = entered(ABANDONED, facts, tuning=tuning)

    intent = advance(ABANDONED, tuning, moved.journey, facts, T0 + HOUR).send

    assert intent is not None
    assert intent.channel == "email"  # the checkout gave no mobile number
    assert intent.checks == (
        {"channel": "sms", "outcome": "no_phone"},
        {"channel": "email", "outcome": "usable"},
    )


def test_a_channel_the_provider_would_not_carry_the_step_on_gives_way_for_that_step_only() -> None:
    tuning = FlowTuning(steps={s: StepTuning(channels=("sms", "email")) for s in ("reminder", "second_reminder")})
    by_sms = checkout(sms_marketing_phone="+14155550123", accepts_sms_marketing=True)
    facts = checkout_facts(checkout=by_sms, configured_channels=frozenset({"email", "sms"}), contact=IN_LONDON)
    moved = entered(ABANDONED, facts, tuning=tuning)
    first = advance(ABANDONED, tuning, moved.journey, facts, T0 + HOUR)
    assert first.send is not None
    assert first.send.channel == "sms"

    refused = SendOutcome(None, T0 + HOUR, unusable=("sms", Reason.CHANNEL_REFUSED))
    journey = after_send(ABANDONED, start_send(first.journey, first.send), refused)

    assert (journey.status, journey.step, journey.due_at) == (Status.WAITING, "reminder", T0 + HOUR)
    again = advance(ABANDONED, tuning, journey, facts, T0 + HOUR)
    assert again.send is not None
    assert again.send.channel == "email"
    assert again.send.checks[0] == {"channel": "sms", "outcome": "channel_refused"}
    sent = handed_over(ABANDONED, again, T0 + HOUR)
    assert sent.unusable == {}  # the next step may use SMS again
    second = advance(ABANDONED, tuning, sent, facts, T0 + HOUR + DAY).send
    assert second is not None
    assert (second.step, second.channel) == ("second_reminder", "sms")


def test_the_shops_order_for_the_recipients_country_reorders_the_steps_channels_never_adds_one() -> None:
    policy = replace(ALL_DAY, regions={"BR": ("whatsapp", "sms"), "GB": ("push", "sms")})
    by_sms = checkout(sms_marketing_phone="+14155550123", accepts_sms_marketing=True)
    both = frozenset({"email", "sms"})

    def chosen(country: str) -> tuple[str | None, list[dict[str, object]]]:
        facts = checkout_facts(checkout=by_sms, configured_channels=both, shop=shop(policy=policy),
                               contact=ContactFacts(1, "Europe/London", country))  # fmt: skip
        moved = entered(ABANDONED, facts)
        intent = advance(ABANDONED, ON, moved.journey, facts, T0 + HOUR).send
        assert intent is not None
        return intent.channel, candidates(intent.checks)

    assert chosen("FR")[0] == "email"  # no order for France: the step's own (email, then SMS)
    channel, considered = chosen("BR")
    assert channel == "sms"  # WhatsApp first for Brazil, but the step has no WhatsApp: SMS, then email
    assert considered == [
        {"channel": "sms", "ok": True, "reason": "chosen: the first usable"},
        {"channel": "email", "ok": True, "reason": "usable, after the one chosen"},
    ]
    assert chosen("GB")[0] == "sms"


def test_below_its_growth_threshold_a_shop_reaches_people_on_the_cheap_channels_only() -> None:
    small = shop(policy=replace(ALL_DAY, growth_threshold=1000), monthly_active=999)
    by_sms = checkout(sms_marketing_phone="+14155550123", accepts_sms_marketing=True)
    sms_first = FlowTuning(steps={"reminder": StepTuning(channels=("sms", "email"))})
    facts = checkout_facts(checkout=by_sms, configured_channels=frozenset({"email", "sms"}), shop=small,
                           contact=IN_LONDON)  # fmt: skip
    moved = entered(ABANDONED, facts, tuning=sms_first)

    intent = advance(ABANDONED, sms_first, moved.journey, facts, T0 + HOUR).send

    assert intent is not None
    assert intent.channel == "email"
    assert candidates(intent.checks)[0] == {"channel": "sms", "ok": False, "reason": "growth_stage"}
    grown = replace(facts, shop=replace(small, monthly_active=1000))
    later = advance(ABANDONED, sms_first, entered(ABANDONED, grown, tuning=sms_first).journey, grown, T0 + HOUR)
    assert later.send is not None
    assert later.send.channel == "sms"


def test_a_step_whose_channels_are_reordered_away_from_email_waits_for_them_to_be_set_up() -> None:
    tuning = FlowTuning(steps={"reminder": StepTuning(channels=("sms",))})
    moved = entered(ABANDONED, checkout_facts(), tuning=tuning)

    held = advance(ABANDONED, tuning, moved.journey, checkout_facts(), T0 + HOUR)

    assert held.send is None
    assert said(held) == [("reminder", "deferred", "no_channel")]


def test_without_any_channel_set_up_a_due_step_is_deferred_once_and_looked_at_again() -> None:
    unconfigured = checkout_facts(configured_channels=frozenset())
    moved = entered(ABANDONED, unconfigured)
    due = T0 + HOUR

    held = advance(ABANDONED, ON, moved.journey, unconfigured, due)

    assert said(held) == [("reminder", "deferred", "no_channel")]
    assert held.decisions[0].detail == {
        "channels": [
            {"channel": "email", "outcome": "not_configured"},
            {"channel": "sms", "outcome": "not_configured"},
        ],
        "candidates": [
            {"channel": "email", "ok": False, "reason": "not_configured"},
            {"channel": "sms", "ok": False, "reason": "not_configured"},
        ],
    }
    assert (held.journey.reason, held.journey.due_at) == (Reason.NO_CHANNEL, due + RECHECK_UNCONFIGURED)
    assert held.send is None

    event = advance(ABANDONED, ON, held.journey, unconfigured, due + 2 * MINUTE)  # an update of the checkout
    assert (event.decisions, event.journey) == ((), held.journey)

    poll = advance(ABANDONED, ON, held.journey, unconfigured, due + RECHECK_UNCONFIGURED)
    assert poll.decisions == ()  # one decision per change, not one per look
    assert poll.journey.due_at == due + 2 * RECHECK_UNCONFIGURED

    set_up = advance(ABANDONED, ON, poll.journey, checkout_facts(), due + 2 * RECHECK_UNCONFIGURED)
    assert sent_step(set_up) == "reminder"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"checkout": checkout(accepts_marketing=False)}, "no_consent", id="box left empty"),
        pytest.param(
            {"email_consent": Consent("subscribed", T0, unsubscribed_here=True)},
            "unsubscribed",
            id="unsubscribed through Chorus",
        ),
        pytest.param(
            {"email_consent": Consent("unsubscribed", T0 + MINUTE, unsubscribed_here=False)},
            "consent_withdrawn",
            id="unsubscribed in Shopify after the checkout",
        ),
        pytest.param({"shop": shop(postal_address=None)}, "no_postal_address", id="no postal address"),
        pytest.param({"refused_addresses": frozenset({EMAIL})}, "address_refused", id="address refused before"),
    ],
)
def test_a_step_whose_channel_refuses_is_skipped_with_the_refusal(changes: dict[str, Any], reason: str) -> None:
    definition = flow(  # no goals: only the channel's own checks stand between the step and the customer
        send("reminder", "abandoned_checkout.reminder", 'anchor = "entry", delay = "1h"')
        + send("last", "abandoned_checkout.second_reminder", 'anchor = "previous", delay = "1d"')
    )
    moved = entered(definition, checkout_facts())

    skipped = advance(definition, ON, moved.journey, checkout_facts(**changes), T0 + HOUR)

    assert skipped.send is None
    assert said(skipped) == [("reminder", "skipped", reason), ("last", "waiting", "wait")]
    assert skipped.decisions[0].detail == {
        "channels": [{"channel": "email", "outcome": reason}],
        "candidates": [{"channel": "email", "ok": False, "reason": reason}],
    }


# Goals end the journey as soon as the event is handled


def abandoned_then(event_facts: Facts) -> Advance:
    """The reminder is not due yet when something happens to the checkout at 10:20."""
    moved = entered(ABANDONED, checkout_facts())
    return advance(ABANDONED, ON, moved.journey, event_facts, T0 + 20 * MINUTE)


def with_order(**changes: Any) -> Facts:
    placed = order(checkout_token=None, customer_id=None, email="someone@example.com", created_at=T0 + 15 * MINUTE)
    return checkout_facts(orders=(replace(placed, **changes),))


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        pytest.param(with_order(checkout_token=TOKEN), "order_placed", id="order from the checkout"),
        pytest.param(with_order(cart_token=CART), "order_placed", id="order from the same cart"),
        pytest.param(with_order(customer_id=CUSTOMER), "ordered_since", id="same customer ordered"),
        pytest.param(with_order(email=EMAIL), "ordered_since", id="same address ordered"),
        pytest.param(
            with_order(customer_id=CUSTOMER, source_name="pos"), "ordered_since", id="same customer bought in the shop"
        ),
        pytest.param(
            checkout_facts(checkout=checkout(completed_at=T0 + 15 * MINUTE)),
            "checkout_completed",
            id="checkout completed",
        ),
        pytest.param(
            checkout_facts(email_consent=Consent(None, None, unsubscribed_here=True)),
            "unsubscribed",
            id="unsubscribed through Chorus",
        ),
        pytest.param(
            checkout_facts(email_consent=Consent("unsubscribed", T0 + 15 * MINUTE, unsubscribed_here=False)),
            "consent_withdrawn",
            id="unsubscribed in Shopify",
        ),
    ],
)
def test_a_reached_goal_ends_the_journey_at_once(facts: Facts, reason: str) -> None:
    moved = abandoned_then(facts)

    assert moved.journey.status is Status.DONE
    assert said(moved) == [("reminder", "exited", reason)]
    assert moved.send is None


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(with_order(customer_id=CUSTOMER, created_at=T0 - 30 * DAY), id="an older order of the customer"),
        pytest.param(with_order(), id="someone else's order"),
        pytest.param(
            checkout_facts(email_consent=Consent("unsubscribed", T0 - 30 * DAY, unsubscribed_here=False)),
            id="an old unsubscribe, before the box was ticked",
        ),
    ],
)
def test_what_is_not_a_goal_leaves_the_reminder_to_go_out(facts: Facts) -> None:
    moved = abandoned_then(facts)

    assert moved.journey.status is Status.WAITING
    assert sent_step(advance(ABANDONED, ON, moved.journey, facts, T0 + HOUR)) == "reminder"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"cancelled_at": T0 + DAY}, "order_cancelled", id="cancelled"),
        pytest.param({"financial_status": "refunded"}, "order_refunded", id="refunded"),
    ],
)
def test_a_cancelled_or_refunded_order_gets_no_review_request(changes: dict[str, Any], reason: str) -> None:
    waiting = after_thanks(order_facts())
    changed = order(fulfilled_at=T0 + DAY, **changes)

    moved = advance(POST_PURCHASE, ON, waiting.journey, order_facts(order=changed, orders=(changed,)), T0 + DAY)

    assert said(moved) == [("review_request", "exited", reason)]
    assert moved.journey.status is Status.DONE


def test_a_welcome_ends_when_the_new_subscriber_orders_but_not_for_an_order_before_they_subscribed() -> None:
    before = customer_facts(orders=(order(created_at=T0 - 5 * DAY),))
    moved = entered(WELCOME, before)
    assert sent_step(moved) == "welcome_1"
    waiting = advance(WELCOME, ON, handed_over(WELCOME, moved, at=T0), before, T0)
    assert waiting.journey.due_at == T0 + 2 * DAY

    ordered = customer_facts(orders=(order(order_id=2, created_at=T0 + DAY), order(created_at=T0 - 5 * DAY)))
    moved = advance(WELCOME, ON, waiting.journey, ordered, T0 + DAY)

    assert said(moved) == [("welcome_2", "exited", "ordered_since")]


def test_a_journey_handing_a_message_over_is_left_to_the_hand_over_and_a_goal_ends_it_after() -> None:
    moved = entered(ABANDONED, checkout_facts())
    due = advance(ABANDONED, ON, moved.journey, checkout_facts(), T0 + HOUR)
    assert due.send is not None
    sending = start_send(due.journey, due.send)
    bought = with_order(checkout_token=TOKEN)

    during = advance(ABANDONED, ON, sending, bought, T0 + HOUR)  # the order webhook, mid-hand-over
    assert (during.journey, during.decisions, during.send) == (sending, (), None)

    journey = after_send(ABANDONED, sending, SendOutcome(Performed.SENT, T0 + HOUR))
    after = advance(ABANDONED, ON, journey, bought, T0 + HOUR)
    assert said(after) == [("second_reminder", "exited", "order_placed")]


# What else ends a journey


def test_a_flow_switched_off_ends_its_journeys_when_their_next_step_is_due() -> None:
    off = FlowTuning(enabled=False)
    moved = entered(ABANDONED, checkout_facts())

    early = advance(ABANDONED, off, moved.journey, checkout_facts(), T0 + 30 * MINUTE)
    due = advance(ABANDONED, off, early.journey, checkout_facts(), T0 + HOUR)

    assert early.journey.status is Status.WAITING
    assert (said(due), due.send) == ([("reminder", "ended", "flow_disabled")], None)


def test_an_uninstalled_shop_ends_the_journey_at_once_and_enters_nobody() -> None:
    moved = entered(ABANDONED, checkout_facts())
    gone = checkout_facts(shop=shop(installed=False))

    ended = advance(ABANDONED, ON, moved.journey, gone, T0 + 5 * MINUTE)

    assert said(ended) == [("reminder", "ended", "shop_uninstalled")]
    assert enter(ABANDONED, ON, gone, "ck-2", T0) is None


def test_ending_a_journey_from_outside_records_why_once() -> None:
    moved = entered(ABANDONED, checkout_facts())

    ended = end(moved.journey, Reason.SUPERSEDED)

    assert (ended.journey.status, said(ended)) == (Status.DONE, [("reminder", "ended", "superseded")])
    assert end(ended.journey, Reason.SHOP_UNINSTALLED).decisions == ()


def test_a_checkout_older_than_the_flows_maximum_age_is_not_recovered() -> None:
    old = checkout_facts(checkout=checkout(created_at=T0 - 7 * DAY, updated_at=T0))
    moved = entered(ABANDONED, old)

    due = advance(ABANDONED, ON, moved.journey, old, T0 + HOUR)

    assert (said(due), due.send) == ([("reminder", "ended", "too_old")], None)


def test_a_journey_whose_checkout_is_gone_ends() -> None:
    moved = entered(ABANDONED, checkout_facts())

    gone = advance(ABANDONED, ON, moved.journey, Facts(shop=shop(), configured_channels=EMAIL_SET_UP), T0 + HOUR)

    assert said(gone) == [("reminder", "ended", "subject_gone")]


# Entry rules


def test_a_checkout_without_marketing_consent_does_not_enter_a_flow_that_asks_for_it() -> None:
    no_box = checkout_facts(checkout=checkout(accepts_marketing=False))
    without_consent = flow(
        send("reminder", "abandoned_checkout.reminder", 'anchor = "entry", delay = "1h"'), entry="consent = false"
    )

    refused = enter(ABANDONED, ON, no_box, TOKEN, T0)
    allowed = enter(without_consent, ON, no_box, TOKEN, T0)

    assert refused is not None
    assert (refused.journey.status, said(refused)) == (Status.INELIGIBLE, [(None, "ineligible", "no_consent")])
    assert allowed is not None
    assert said(allowed) == [(None, "entered", "enrolled"), ("reminder", "waiting", "wait")]
    # Entering asks nothing; sending still does.
    due = advance(without_consent, ON, allowed.journey, no_box, T0 + HOUR)
    assert (said(due)[0], due.send) == (("reminder", "skipped", "no_consent"), None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"email": None}, "no_email", id="no address"),
        pytest.param({"lines": ()}, "no_items", id="empty checkout"),
        pytest.param({"created_at": None, "updated_at": None}, "no_timestamp", id="no time"),
        pytest.param({"completed_at": T0}, "checkout_completed", id="already completed"),
    ],
)
def test_a_checkout_that_does_not_qualify_is_recorded_as_ineligible(changes: dict[str, Any], reason: str) -> None:
    moved = enter(ABANDONED, ON, checkout_facts(checkout=checkout(**changes)), TOKEN, T0)

    assert moved is not None
    assert (moved.journey.status, said(moved), moved.send) == (
        Status.INELIGIBLE,
        [(None, "ineligible", reason)],
        None,
    )


def test_a_checkout_already_turned_into_an_order_does_not_enter() -> None:
    moved = enter(ABANDONED, ON, with_order(checkout_token=TOKEN), TOKEN, T0)

    assert moved is not None
    assert said(moved) == [(None, "ineligible", "order_placed")]


def test_a_customer_on_a_welcome_journey_does_not_start_another() -> None:
    moved = enter(WELCOME, ON, customer_facts(), "7", T0, precedents=Precedents(customer_active=("8",)))

    assert moved is not None
    assert said(moved) == [(None, "ineligible", "already_in_flow")]


def test_a_newer_checkout_of_the_same_customer_takes_over_the_older_ones_journey() -> None:
    moved = enter(ABANDONED, ON, checkout_facts(), TOKEN, T0, precedents=Precedents(customer_active=("ck-0",)))

    assert moved is not None
    assert moved.journey.status is Status.WAITING
    assert moved.ended == ("ck-0",)
    assert moved.decisions[0].detail == {"replaces": ["ck-0"]}


@pytest.mark.parametrize(
    ("last_entry", "entered_again"),
    [
        pytest.param(T0 - 30 * DAY, False, id="30 days after the last winback"),
        pytest.param(T0 - 90 * DAY, True, id="90 days after the last winback"),
    ],
)
def test_a_winback_starts_again_only_after_its_reentry_period(last_entry: datetime, entered_again: bool) -> None:
    moved = enter(WINBACK, ON, customer_facts(), "7", T0, precedents=Precedents(last_entry_at=last_entry))

    assert moved is not None
    if entered_again:
        assert sent_step(moved) == "winback"
    else:
        assert said(moved) == [(None, "ineligible", "entered_recently")]


def test_a_flow_without_a_reentry_period_never_takes_the_same_subject_twice() -> None:
    assert enter(WELCOME, ON, customer_facts(), "7", T0, precedents=Precedents(last_entry_at=T0 - 365 * DAY)) is None


def test_a_switched_off_flow_enters_nobody_and_records_nothing() -> None:
    assert enter(ABANDONED, FlowTuning(enabled=False), checkout_facts(), TOKEN, T0) is None


def test_an_ineligible_subject_is_recorded_once_per_change_and_enters_when_it_qualifies() -> None:
    no_box = checkout_facts(checkout=checkout(accepts_marketing=False))
    first = enter(ABANDONED, ON, no_box, TOKEN, T0)
    assert first is not None

    same = enter(ABANDONED, ON, no_box, TOKEN, T0 + MINUTE, current=first.journey)
    emptied = checkout_facts(checkout=checkout(accepts_marketing=False, lines=()))
    changed = enter(ABANDONED, ON, emptied, TOKEN, T0 + 2 * MINUTE, current=first.journey)
    assert changed is not None
    ticked = enter(ABANDONED, ON, checkout_facts(), TOKEN, T0 + 3 * MINUTE, current=changed.journey)

    assert same is None
    assert said(changed) == [(None, "ineligible", "no_items")]
    assert ticked is not None
    assert said(ticked) == [(None, "entered", "enrolled"), ("reminder", "waiting", "wait")]


def test_only_a_subject_without_an_open_journey_can_enter() -> None:
    moved = entered(ABANDONED, checkout_facts())

    with pytest.raises(ValueError, match="only a subject without an open journey"):
        enter(ABANDONED, ON, checkout_facts(), TOKEN, T0, current=moved.journey)


# Hand-over outcomes


def due_reminder() -> Advance:
    moved = entered(ABANDONED, checkout_facts())
    due = advance(ABANDONED, ON, moved.journey, checkout_facts(), T0 + HOUR)
    assert due.send is not None
    return due


@pytest.mark.parametrize("performed", [Performed.SENT, Performed.UNKNOWN, Performed.FAILED])
def test_a_step_handed_over_is_done_whatever_came_of_it_and_never_tried_again(performed: Performed) -> None:
    handed = T0 + HOUR + MINUTE

    journey = handed_over(ABANDONED, due_reminder(), at=handed, performed=performed)
    moved = advance(ABANDONED, ON, journey, checkout_facts(), handed)

    assert moved.journey.performed == {"reminder": performed}
    assert (moved.journey.step, moved.journey.due_at) == ("second_reminder", handed + DAY)
    assert moved.send is None


def test_after_a_hand_over_the_journey_is_due_at_once_for_its_next_step() -> None:
    """Whoever stores the journey without moving it on leaves it for the worker, not for an event."""
    handed = T0 + HOUR + MINUTE

    journey = handed_over(ABANDONED, due_reminder(), at=handed)

    assert (journey.status, journey.step, journey.due_at) == (Status.WAITING, "second_reminder", handed)


def test_a_message_that_certainly_did_not_leave_is_tried_again_at_its_retry_time() -> None:
    retry_at = T0 + HOUR + 5 * MINUTE

    journey = handed_over(ABANDONED, due_reminder(), at=T0 + HOUR, performed=None)

    assert (journey.status, journey.reason, journey.step) == (Status.WAITING, Reason.SEND_DEFERRED, "reminder")
    assert journey.due_at == retry_at
    assert "reminder" not in journey.performed
    assert sent_step(advance(ABANDONED, ON, journey, checkout_facts(), retry_at)) == "reminder"


def test_an_event_before_the_retry_time_keeps_the_retry_time() -> None:
    journey = handed_over(ABANDONED, due_reminder(), at=T0 + HOUR, performed=None)
    updated_customer = checkout_facts(customer=CustomerFacts(CUSTOMER, EMAIL, None, "Ada Lovelace"))

    moved = advance(ABANDONED, ON, journey, updated_customer, T0 + HOUR + MINUTE)

    assert (moved.journey, moved.decisions, moved.send) == (journey, (), None)


def test_a_goal_still_ends_a_journey_waiting_to_retry() -> None:
    journey = handed_over(ABANDONED, due_reminder(), at=T0 + HOUR, performed=None)

    moved = advance(ABANDONED, ON, journey, with_order(checkout_token=TOKEN), T0 + HOUR + MINUTE)

    assert said(moved) == [("reminder", "exited", "order_placed")]


def test_a_retry_asks_again_whether_the_customer_still_agrees() -> None:
    journey = handed_over(ABANDONED, due_reminder(), at=T0 + HOUR, performed=None)
    no_address = checkout_facts(shop=shop(postal_address=None))

    moved = advance(ABANDONED, ON, journey, no_address, T0 + HOUR + 5 * MINUTE)

    assert moved.send is None
    assert said(moved)[0] == ("reminder", "skipped", "no_postal_address")
