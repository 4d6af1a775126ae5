"""Flow definitions: the shipped ones load, and every mistake in one is named by file and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flows
from flows.definition import MAX_DELAY, BranchStep, DefinitionError, FlowDefinition, SendStep, parse_definition
from flows.durations import format_duration, parse_duration

DEFINITIONS = Path(flows.__file__).parent / "definitions"
SHIPPED = sorted(DEFINITIONS.glob("*.toml"))
SOURCE = "flows/definitions/demo.toml"

SEND = """
[[steps]]
id = "reminder"
kind = "send"
content = "abandoned_checkout.reminder"
channels = ["email"]
"""


def document(
    steps: str = SEND,
    *,
    top: str = "",
    subject: str = "checkout",
    trigger: str = 'event = "checkout_changed"',
    entry: str = "",
) -> str:
    """A small checkout flow; each argument replaces one part of it."""
    return f"""
name = "demo"
description = "A flow for the tests"
subject = "{subject}"
{top}

[trigger]
{trigger}

[entry]
{entry}
{steps}
"""


def problems(text: str, source: str = SOURCE, expected_name: str | None = None) -> tuple[str, ...]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, source, expected_name=expected_name)
    assert caught.value.source == source
    assert str(caught.value).startswith(f"{source}: ")  # every problem names the file
    return caught.value.problems


def step(step_id: str, kind: str, body: str = "") -> str:
    return f'\n[[steps]]\nid = "{step_id}"\nkind = "{kind}"\n{body}\n'


# Shipped definitions


def test_the_store_and_storefront_triggered_flows_are_shipped() -> None:
    shipped = [
        "abandoned_cart", "abandoned_checkout", "browse_abandonment", "post_purchase", "price_drop", "welcome",
        "winback",
    ]  # fmt: skip
    assert [path.stem for path in SHIPPED] == shipped


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_definition_loads_under_its_file_name(path: Path) -> None:
    definition = parse_definition(
        path.read_text(encoding="utf-8"), f"flows/definitions/{path.name}", expected_name=path.stem
    )

    assert definition.name == path.stem
    assert definition.description
    assert definition.send_steps, "a shipped flow sends something"
    assert all(s.channels == ("email", "sms") for s in definition.send_steps)  # the cheaper channel first
    assert definition.max_age is not None  # no shipped journey waits forever


def test_the_abandoned_checkout_reminder_waits_an_hour_after_the_last_update_of_the_checkout() -> None:
    definition = shipped("abandoned_checkout")
    reminder, second = definition.steps
    assert isinstance(reminder, SendStep)
    assert (reminder.wait.anchor, reminder.wait.fact) == ("fact", "checkout.updated_at")
    assert (reminder.wait.delay, reminder.wait.max) == (timedelta(hours=1), timedelta(days=7))
    assert (second.wait.anchor, second.wait.delay) == ("previous", timedelta(days=1))
    assert definition.entry.replace_active
    assert set(definition.goals) == {"order_placed", "ordered_since", "checkout_completed", "unsubscribed"}


def test_winback_starts_when_the_last_order_is_ninety_days_old_and_may_start_again_after_ninety_more() -> None:
    definition = shipped("winback")
    assert (definition.trigger.event, definition.trigger.after) == ("order_lapsed", timedelta(days=90))
    assert definition.entry.reentry_after == timedelta(days=90)


def shipped(name: str) -> FlowDefinition:
    return parse_definition((DEFINITIONS / f"{name}.toml").read_text(encoding="utf-8"), name, expected_name=name)


def test_a_small_definition_takes_the_defaults() -> None:
    definition = parse_definition(document(), SOURCE)

    [reminder] = definition.steps
    assert (reminder.wait.anchor, reminder.wait.delay, reminder.wait.max) == ("previous", timedelta(0), None)
    assert definition.entry.consent  # marketing consent is required unless the flow says otherwise
    assert not definition.entry.one_active_per_customer
    assert definition.default_enabled
    assert definition.goals == ()


def test_a_branch_writes_else_as_in_toml_and_may_leave_either_target_to_the_next_step() -> None:
    text = document(
        step("check", "branch", 'predicate = "checkout_has_items"\nelse = "last"') + SEND + step("last", "exit")
    )
    check = parse_definition(text, SOURCE).steps[0]
    assert isinstance(check, BranchStep)
    assert (check.then, check.otherwise) == (None, "last")


# Validation: every rule, with the file and the field


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            document(step("reminder", "sleep")),
            "steps[0]: Input tag 'sleep' found using 'kind' does not match any of the expected tags",
            id="unknown step kind",
        ),
        pytest.param(
            document(step("reminder", "send", 'content = "nope"\nchannels = ["email"]')),
            "steps[0].content: unknown content 'nope'; known: abandoned_cart.cart_reminder, "
            "abandoned_checkout.reminder",
            id="unknown content",
        ),
        pytest.param(
            document(step("check", "branch", 'predicate = "is_vip"')),
            "steps[0].predicate: unknown predicate 'is_vip'; known: checkout_has_items",
            id="unknown predicate",
        ),
        pytest.param(
            document(top='goals = ["order_placed", "got_rich"]'),
            "goals: unknown goal(s) got_rich; known: added_to_cart, checkout_completed",
            id="unknown goal",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { anchor = "fact", fact = "checkout.abandoned_at", max = "1d" }')),
            "steps[0].wait.fact: unknown fact 'checkout.abandoned_at'; known: checkout.created_at",
            id="unknown fact",
        ),
        pytest.param(
            document(step("reminder", "send", 'content = "abandoned_checkout.reminder"\nchannels = ["fax"]')),
            "steps[0].channels: unknown channel(s) fax; known: email, sms",
            id="unknown channel",
        ),
        pytest.param(
            document(
                step("reminder", "send", 'content = "abandoned_checkout.reminder"\nchannels = ["email", "email"]')
            ),
            "steps[0].channels: each channel at most once",
            id="a channel twice",
        ),
        pytest.param(
            document(step("reminder", "send", 'content = "abandoned_checkout.reminder"\nchannels = []')),
            "steps[0].channels: Tuple should have at least 1 item",
            id="no channel",
        ),
        pytest.param(
            document(SEND + SEND),
            "steps: ids must be unique, got reminder, reminder",
            id="duplicate step ids",
        ),
        pytest.param(
            document(SEND + step("check", "branch", 'predicate = "checkout_has_items"\nthen = "reminder"')),
            "steps.check: branch target 'reminder' is not a later step",
            id="branch backwards",
        ),
        pytest.param(
            document(step("check", "branch", 'predicate = "checkout_has_items"\nelse = "check"') + SEND),
            "steps.check: branch target 'check' is not a later step",
            id="branch to itself",
        ),
        pytest.param(
            document(step("check", "branch", 'predicate = "checkout_has_items"\nthen = "nowhere"') + SEND),
            "steps.check: branch target 'nowhere' is not a later step",
            id="branch to no step",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { anchor = "fact", fact = "checkout.updated_at", delay = "1h" }')),
            "steps[0].wait: a wait anchored at a fact names the `fact` and a `max` (the fact may never come)",
            id="fact wait without max",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { anchor = "fact", max = "1d" }')),
            "steps[0].wait: a wait anchored at a fact names the `fact` and a `max`",
            id="fact wait without fact",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { fact = "checkout.updated_at" }')),
            'steps[0].wait: `fact` goes with anchor = "fact"',
            id="fact without the fact anchor",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { anchor = "fact", fact = "order.fulfilled_at", max = "60d" }')),
            "steps.pause.wait.fact: order.fulfilled_at is not a fact of a checkout",
            id="a fact of another subject",
        ),
        pytest.param(
            document(trigger='event = "order_paid"'),
            "subject: the trigger order_paid starts journeys about",
            id="trigger and subject disagree",
        ),
        pytest.param(
            document(subject="customer", trigger='event = "order_lapsed"'),
            'trigger: `after` is required with event = "order_lapsed", and only there',
            id="lapse without after",
        ),
        pytest.param(
            document(trigger='event = "checkout_changed"\nafter = "90d"'),
            (
                'trigger: `after` is required with event = "product_browsed" or "order_lapsed" or "cart_abandoned",'
                " and only there"
            ),
            id="after without a lapse",
        ),
        pytest.param(
            document(entry="replace_active = true"),
            "entry: replace_active needs one_active_per_customer",
            id="replace_active alone",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { delay = "2 weeks" }')),
            "steps[0].wait.delay: expected a duration such as 90d, 24h, 1d12h or 30m, got '2 weeks'",
            id="a duration without units",
        ),
        pytest.param(
            document(top='max_age = "12h1d"'),
            "max_age: each unit once, largest first (e.g. 1d12h), got '12h1d'",
            id="a duration in the wrong order",
        ),
        pytest.param(
            document(step("pause", "wait", 'wait = { delay = "400d" }')),
            "steps[0].wait.delay: Input should be less than or equal to",
            id="a delay over a year",
        ),
        pytest.param(
            document(top="colour = 'red'"),
            "colour: Extra inputs are not permitted",
            id="an unknown field",
        ),
        pytest.param(
            document(step("Reminder-1", "wait")),
            "steps[0].id: String should match pattern",
            id="a step id that is not a name",
        ),
        pytest.param(document(""), "steps: Field required", id="no steps"),
        pytest.param('name = "demo', "not valid TOML: ", id="bad TOML"),
    ],
)
def test_each_mistake_is_reported_with_the_file_and_the_field(text: str, expected: str) -> None:
    found = problems(text)

    assert len(found) == 1, found  # the mistake, and no echo of it
    assert found[0].startswith(expected), found[0]


def test_every_mistake_of_a_definition_is_reported_at_once() -> None:
    text = document(
        step("reminder", "send", 'content = "nope"\nchannels = ["fax"]'),
        top='goals = ["got_rich"]',
    )

    found = problems(text)

    assert [p.split(":")[0] for p in found] == ["goals", "steps[0].content", "steps[0].channels"]


def test_an_empty_list_of_steps_is_refused() -> None:
    assert problems(document("", top="steps = []")) == ("steps: a flow has at least one step",)


def test_the_name_must_match_the_file_name() -> None:
    found = problems(document(), source="flows/definitions/welcome.toml", expected_name="welcome")

    assert found == ("name: 'demo' must match the file name ('welcome')",)


def test_a_name_that_matches_its_file_loads() -> None:
    assert parse_definition(document(), SOURCE, expected_name="demo").name == "demo"


# Durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("24h", timedelta(hours=24)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("30m", timedelta(minutes=30)),
        ("0s", timedelta(0)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_durations_read_as_merchants_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=90), "90d"),
        (timedelta(days=2, seconds=5), "2d5s"),
    ],
)
def test_durations_are_written_in_their_shortest_spelling(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a duration such as 90d"),
        ("   ", "expected a duration such as 90d"),
        ("90", "expected a duration such as 90d"),
        ("1w", "expected a duration such as 90d"),
        ("1.5h", "expected a duration such as 90d"),
        ("-1d", "expected a duration such as 90d"),
        ("d", "expected a duration such as 90d"),
        ("1d1d", "each unit once, largest first"),
        ("30m1h", "each unit once, largest first"),
    ],
)
def test_a_duration_that_cannot_be_read_is_refused_with_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message) as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)  # the merchant sees what they wrote


@given(st.integers(min_value=0, max_value=int(MAX_DELAY.total_seconds())).map(lambda s: timedelta(seconds=s)))
def test_every_whole_second_duration_reads_back_as_written(value: timedelta) -> None:
    text = format_duration(value)

    assert parse_duration(text) == value
    assert format_duration(parse_duration(text)) == text


@given(
    st.lists(st.integers(min_value=0, max_value=999), min_size=4, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4).filter(any),
)
def test_any_spelling_reads_back_to_its_shortest_one(counts: list[int], present: list[bool]) -> None:
    text = "".join(f"{n}{unit}" for n, unit, shown in zip(counts, "dhms", present, strict=True) if shown)

    value = parse_duration(text)

    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("segments", [0, 11])
def test_a_steps_sms_length_is_between_one_and_ten_segments(segments: int) -> None:
    with pytest.raises(DefinitionError, match="sms_segments"):
        parse_definition(document(SEND + f"sms_segments = {segments}\n"), SOURCE)
    assert parse_definition(document(SEND + "sms_segments = 4\n"), SOURCE).send_steps[0].sms_segments == 4
