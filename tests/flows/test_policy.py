"""A shop's channel policy in its textual forms: what each setting accepts, refuses, and keeps."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

import pytest

from flows.policy import (
    DEFAULT_QUIET_HOURS,
    Cap,
    InvalidPolicy,
    ShopPolicy,
    Window,
    change_policy,
    parse_caps,
    parse_window,
    policy_from_json,
)


def test_the_defaults_are_one_message_per_16_hours_five_per_week_and_daytime_windows() -> None:
    policy = ShopPolicy()
    assert policy.caps == (Cap(timedelta(hours=16), 1), Cap(timedelta(days=7), 5))
    assert {ch: str(w) for ch, w in policy.quiet_hours.items()} == {
        "email": "09:00-20:00", "sms": "10:00-20:00", "whatsapp": "10:00-20:00",
    }  # fmt: skip
    assert str(policy.window("push")) == "09:00-20:00"  # a channel without its own: the email window
    assert (policy.growth_threshold, policy.double_opt_in, policy.budgets) == (1000, frozenset(), {})


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        ("1/16h,5/7d", ["1/16h", "5/7d"]),
        ([" 2/1d ", "1/1h"], ["1/1h", "2/1d"]),  # ordered by window
        ("3/24h", ["3/1d"]),
        ("", []),  # no cap at all
    ],
)
def test_caps(text: str | list[str], caps: list[str]) -> None:
    assert [str(c) for c in parse_caps(text)] == caps


@pytest.mark.parametrize("text", ["1/16", "0/1d", "1/0h", "one/day", "1/400d", "1/1h,1/2h,1/3h,1/4h,1/5h,1/6h"])
def test_caps_refused(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_caps(text)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("09:00-20:00", Window(time(9), time(20))),
        ("00:00-24:00", Window(time(0), None)),
        ("08:30-21:15", Window(time(8, 30), time(21, 15))),
    ],
)
def test_windows(text: str, window: Window) -> None:
    assert parse_window(text) == window
    assert str(window) == text


@pytest.mark.parametrize("text", ["20:00-09:00", "09:00-09:00", "9-20", "25:00-26:00", "09:60-10:00", "00:00-24:30"])
def test_windows_refused(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_window(text)


def test_a_window_holds_from_its_start_until_just_before_its_end() -> None:
    window = parse_window("09:00-20:00")
    assert [window.holds(t) for t in (time(8, 59), time(9), time(19, 59, 59), time(20))] == [False, True, True, False]
    assert parse_window("00:00-24:00").holds(time(23, 59, 59))


def test_the_command_lines_forms_and_the_apis_describe_the_same_policy() -> None:
    typed = policy_from_json({
        "caps": "1/16h,5/7d", "channel_caps": "sms=2/7d", "quiet_hours": "email=08:00-21:00,sms=10:00-19:00",
        "budgets": "sms=50,whatsapp=30", "regions": ["BR=whatsapp,sms", "US=sms,email"], "growth_threshold": "500",
        "double_opt_in": "email",
    })  # fmt: skip

    assert policy_from_json(typed.as_json()) == typed
    assert typed.budgets == {"sms": Decimal("50.00"), "whatsapp": Decimal("30.00")}
    assert typed.regions == {"BR": ("whatsapp", "sms"), "US": ("sms", "email")}
    assert typed.quiet_hours["whatsapp"] == DEFAULT_QUIET_HOURS["whatsapp"]  # not named: the default


def test_a_change_keeps_the_entries_it_does_not_name_and_none_removes_one() -> None:
    policy = policy_from_json({"budgets": "sms=50,whatsapp=30", "quiet_hours": "email=08:00-21:00"})

    changed = change_policy(policy, {"budgets": {"sms": None}, "quiet_hours": "sms=11:00-18:00"})

    assert changed.budgets == {"whatsapp": Decimal("30.00")}
    assert str(changed.quiet_hours["email"]) == "08:00-21:00"
    assert str(changed.quiet_hours["sms"]) == "11:00-18:00"
    assert str(change_policy(changed, {"quiet_hours": "email=none"}).quiet_hours["email"]) == "09:00-20:00"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidPolicy) as raised:
        change_policy(ShopPolicy(), {
            "caps": "lots", "budgets": "sms=-1", "regions": "br=sms", "growth_threshold": "many",
            "double_opt_in": "whatsapp", "quiet_hours": "fax=09:00-10:00", "colour": "blue",
        })  # fmt: skip

    assert [p.split(":")[0] for p in raised.value.problems] == [
        "caps", "budgets", "regions", "growth_threshold", "double_opt_in", "quiet_hours", "colour",
    ]  # fmt: skip
