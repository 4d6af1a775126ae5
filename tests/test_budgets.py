"""Cost in the channel policy, as pure functions: a step's cap on a message's price, the shop's monthly budget
per paid channel, what counts as the month's spend (its currencies, its month in the shop's time zone), and the
channel chosen instead when a paid one costs too much."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.budgets import NOTHING_SPENT, Price, Spend, SpendGroup, cost_refusal, month_start, spend_of
from flows.channels import candidates, choose
from flows.definition import DefinitionError, parse_definition
from flows.engine import advance
from flows.facts import Facts
from flows.policy import ShopPolicy
from flows.reasons import Reason
from flows.tuning import FlowTuning, StepTuning
from tests.flows.test_engine import ABANDONED, ALL_DAY, HOUR, IN_LONDON, T0, checkout, checkout_facts, entered, shop

D = Decimal
USD, EUR = "USD", "EUR"
BUDGETED = ShopPolicy(budgets={"sms": D("1.00")})


def price(amount: str, currency: str = USD) -> Price:
    return Price(D(amount), currency)


@pytest.mark.parametrize(
    ("channel", "policy", "priced", "spent", "max_price", "expected"),
    [
        ("sms", BUDGETED, None, NOTHING_SPENT, None, None),  # not priced (a webhook's move): not judged here
        ("email", BUDGETED, price("0.5"), NOTHING_SPENT, D("0.01"), None),  # email costs nothing here
        ("sms", ShopPolicy(), price("9.99"), NOTHING_SPENT, None, None),  # no budget, no cap: any price
        ("sms", BUDGETED, price("0.40"), Spend({USD: D("0.60")}, {USD: 3}, 3), None, None),  # exactly the budget
        ("sms", BUDGETED, price("0.41"), Spend({USD: D("0.60")}, {USD: 3}, 3), None, Reason.OVER_BUDGET),
        ("sms", BUDGETED, price("1.01"), NOTHING_SPENT, None, Reason.OVER_BUDGET),  # alone over it
        ("whatsapp", BUDGETED, price("5.00"), NOTHING_SPENT, None, None),  # the budget is the SMS one
        ("sms", ShopPolicy(budgets={"sms": D(0)}), price("0.01"), NOTHING_SPENT, None, Reason.OVER_BUDGET),
        ("sms", ShopPolicy(budgets={"sms": D(0)}), price("0"), NOTHING_SPENT, None, None),  # free is free
        ("sms", ShopPolicy(), price("0.05"), NOTHING_SPENT, D("0.05"), None),  # at the cap
        ("sms", ShopPolicy(), price("0.0501"), NOTHING_SPENT, D("0.05"), Reason.OVER_PRICE),
        ("sms", BUDGETED, price("2.00"), NOTHING_SPENT, D("0.05"), Reason.OVER_PRICE),  # the step's cap first
        # Spent in another currency only: those messages count at this one's price (3 x 0.30 + 0.30 > 1).
        ("sms", BUDGETED, price("0.30"), Spend({EUR: D("0.10")}, {EUR: 3}, 3), None, Reason.OVER_BUDGET),
        ("sms", BUDGETED, price("0.20"), Spend({EUR: D("0.10")}, {EUR: 3}, 3), None, None),
    ],
)
def test_a_paid_message_is_refused_over_its_steps_cap_or_the_months_budget(
    channel: str, policy: ShopPolicy, priced: Price | None, spent: Spend, max_price: Decimal | None,
    expected: Reason | None,
) -> None:  # fmt: skip
    assert cost_refusal(channel, policy, priced, spent, max_price) is expected


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([], NOTHING_SPENT),
        # Cost and estimate in one currency: counted once, at the cost.
        ([(USD, D("0.20"), USD, D("0.33"), 2)], Spend({USD: D("0.20")}, {USD: 2}, 2)),
        # In flight: no cost yet, the estimate counts.
        ([(None, None, USD, D("0.33"), 2)], Spend({USD: D("0.33")}, {USD: 2}, 2)),
        # Billed in euros, estimated in dollars: each currency has its own amount for them.
        ([(EUR, D("0.15"), USD, D("0.16"), 1)], Spend({EUR: D("0.15"), USD: D("0.16")}, {EUR: 1, USD: 1}, 1)),
        # From before estimates were stored, never costed: counted, with no amount in any currency.
        ([(None, None, None, None, 4)], Spend({}, {}, 4)),
        (
            [(USD, D("1"), USD, D("1"), 1), (None, None, USD, D("0.5"), 1), (USD, D("0.25"), None, None, 1)],
            Spend({USD: D("1.75")}, {USD: 3}, 3),
        ),
    ],
)
def test_the_months_spend_counts_each_message_once_per_currency_at_its_cost_else_its_estimate(
    groups: list[SpendGroup], expected: Spend
) -> None:
    assert spend_of(groups) == expected


def test_a_message_with_no_amount_in_the_prices_currency_counts_at_that_price() -> None:
    spent = Spend({USD: D("0.50"), EUR: D("0.30")}, {USD: 2, EUR: 1}, 4)
    assert spent.in_currency(price("0.10")) == D("0.70")  # 0.50 + two unknown at 0.10
    assert spent.in_currency(price("0.10", EUR)) == D("0.60")  # 0.30 + three unknown at 0.10
    assert spent.plus(price("0.10")).in_currency(price("0.10")) == D("0.80")


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (datetime(2026, 11, 20, 10, tzinfo=UTC), None, datetime(2026, 11, 1, tzinfo=UTC)),
        # 22:00 on 30 November in New York: still November there, which began at 04:00 UTC (EDT).
        (datetime(2026, 12, 1, 3, tzinfo=UTC), "America/New_York", datetime(2026, 11, 1, 4, tzinfo=UTC)),
        (datetime(2026, 12, 1, 5, tzinfo=UTC), "America/New_York", datetime(2026, 12, 1, 5, tzinfo=UTC)),
        # 08:00 on 1 December in Tokyo: December there, since 15:00 UTC the day before.
        (datetime(2026, 11, 30, 23, tzinfo=UTC), "Asia/Tokyo", datetime(2026, 11, 30, 15, tzinfo=UTC)),
        (datetime(2026, 11, 20, 10, tzinfo=UTC), "Not/A_Zone", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_the_month_begins_at_midnight_on_the_first_in_the_shops_time_zone(
    now: datetime, zone: str | None, expected: datetime
) -> None:
    assert month_start(now, zone) == expected


@given(
    prices=st.lists(st.decimals(min_value=0, max_value=2, places=4), max_size=40),
    budget=st.decimals(min_value=0, max_value=5, places=2),
    spent=st.decimals(min_value=0, max_value=5, places=4),
)
def test_messages_decided_one_after_the_other_never_take_the_spend_over_the_budget_and_each_that_fits_goes(
    prices: list[Decimal], budget: Decimal, spent: Decimal
) -> None:
    policy = ShopPolicy(budgets={"sms": budget})
    spend = Spend({USD: spent}, {USD: 1}, 1)
    for amount in prices:
        refusal = cost_refusal("sms", policy, Price(amount, USD), spend)
        fits = spend.in_currency(Price(amount, USD)) + amount <= budget
        assert (refusal is None) == fits
        if refusal is None:
            spend = spend.plus(Price(amount, USD))
    assert spend.in_currency(Price(D(0), USD)) <= max(budget, spent)


# The channel chosen instead

SMS_FIRST = FlowTuning(steps={"reminder": StepTuning(channels=("sms", "email"))})
PHONE = "+14155550123"


def by_sms_or_email(policy: ShopPolicy) -> Facts:
    """A checkout whose buyer agreed to both; SMS is set up, priced at 0.0166 USD (two US segments)."""
    facts = checkout_facts(
        checkout=checkout(sms_marketing_phone=PHONE, accepts_sms_marketing=True),
        configured_channels=frozenset({"email", "sms"}), shop=shop(policy=policy), contact=IN_LONDON,
        prices={"sms": price("0.0166")},
    )  # fmt: skip
    return facts


def test_a_paid_channel_over_the_budget_is_passed_over_for_the_next_with_its_reason_and_price() -> None:
    policy = replace(ALL_DAY, budgets={"sms": D("0.05")})
    facts = by_sms_or_email(policy)
    spent = replace(facts, shop=replace(facts.shop, spend={"sms": Spend({USD: D("0.04")}, {USD: 3}, 3)}))
    moved = entered(ABANDONED, spent, tuning=SMS_FIRST)

    intent = advance(ABANDONED, SMS_FIRST, moved.journey, spent, T0 + HOUR).send

    assert intent is not None
    assert intent.channel == "email"
    assert intent.price is None  # email is not priced
    assert candidates(intent.checks) == [
        {"channel": "sms", "ok": False, "reason": "over_budget"},
        {"channel": "email", "ok": True, "reason": "chosen: the first usable"},
    ]
    assert intent.checks[0] == {"channel": "sms", "outcome": "over_budget", "price": "0.0166 USD"}
    # With room left, SMS goes, carrying its price for the message to store.
    room = advance(ABANDONED, SMS_FIRST, moved.journey, facts, T0 + HOUR).send
    assert room is not None
    assert (room.channel, room.price) == ("sms", price("0.0166"))


def test_a_channel_the_customer_cannot_be_reached_on_is_refused_for_that_whatever_it_costs() -> None:
    policy = replace(ALL_DAY, budgets={"sms": D("0")})
    facts = by_sms_or_email(policy)
    refused = replace(facts, checkout=checkout(sms_marketing_phone=PHONE, accepts_sms_marketing=False))
    [sms, _email] = choose(("sms", "email"), refused).checks
    assert sms.refusal is Reason.NO_CONSENT


def test_a_step_capped_below_the_price_goes_out_on_its_next_channel() -> None:
    facts = by_sms_or_email(ALL_DAY)
    [sms, email] = choose(("sms", "email"), facts, max_price=D("0.01")).checks
    assert (sms.refusal, email.refusal) == (Reason.OVER_PRICE, None)
    [sms, _email] = choose(("sms", "email"), facts, max_price=D("0.0166")).checks
    assert sms.refusal is None


# The step's cap in a definition

CAPPED_STEP = """
name = "capped"
description = "A reminder that pays at most so much for a text"
subject = "checkout"

[trigger]
event = "checkout_changed"

[[steps]]
id = "reminder"
kind = "send"
content = "abandoned_checkout.reminder"
channels = {channels}
max_price = {max_price}
"""


@pytest.mark.parametrize(("given_price", "expected"), [('"0.05"', D("0.05")), ("0.05", D("0.05")), ("0", D(0))])
def test_a_step_may_cap_the_price_it_pays(given_price: str, expected: Decimal) -> None:
    text = CAPPED_STEP.format(channels='["sms", "email"]', max_price=given_price)
    [step] = parse_definition(text, "capped.toml").send_steps
    assert step.max_price == expected


@pytest.mark.parametrize(
    ("channels", "given_price", "problem"),
    [
        ('["sms"]', '"cheap"', "steps[0].max_price: expected an amount from 0 to 10000 with at most 4 decimal places"),
        ('["sms"]', "-1", "steps[0].max_price: expected an amount from 0"),
        ('["sms"]', '"0.00001"', "steps[0].max_price: expected an amount from 0"),
        ('["sms"]', "true", "steps[0].max_price: expected an amount from 0"),
        ('["sms"]', "20000", "steps[0].max_price: expected an amount from 0"),
        ('["email"]', '"0.05"', "steps[0]: max_price caps what sms and whatsapp cost: the step uses neither"),
    ],
)
def test_a_step_cap_that_cannot_be_one_is_refused_naming_the_step_and_field(
    channels: str, given_price: str, problem: str
) -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition(CAPPED_STEP.format(channels=channels, max_price=given_price), "capped.toml")
    [found] = raised.value.problems
    assert found.startswith(problem), found
