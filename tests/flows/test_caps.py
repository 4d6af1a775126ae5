"""Frequency caps as pure functions: what a cap allows, until when it holds a message back, and that sending
only what it allows never exceeds it, whatever the order messages come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flows.caps import capped, fills_a_cap
from flows.policy import policy_from_json

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
DEFAULTS = policy_from_json({})  # 1/16h and 5/7d


def test_the_first_message_goes_and_the_second_waits_sixteen_hours_from_the_first() -> None:
    assert capped(DEFAULTS, "email", [], T0) is None

    held = capped(DEFAULTS, "sms", [(T0, "email")], T0 + HOUR)

    assert held is not None
    assert (str(held.cap), held.channel, held.until) == ("1/16h", None, T0 + 16 * HOUR)
    assert capped(DEFAULTS, "sms", [(T0, "email")], T0 + 16 * HOUR) is None  # the first has left the window


def test_the_weekly_cap_holds_until_the_oldest_of_the_week_leaves_it() -> None:
    sent = [(T0 + timedelta(days=d), "email") for d in range(5)]  # one a day, every day of five

    held = capped(DEFAULTS, "email", sent, T0 + timedelta(days=5))

    assert held is not None
    assert (str(held.cap), held.until) == ("5/7d", T0 + timedelta(days=7))


def test_a_channels_own_cap_counts_that_channel_only() -> None:
    policy = policy_from_json({"caps": [], "channel_caps": {"sms": ["2/7d"]}})
    sent = [(T0, "sms"), (T0 + HOUR, "email"), (T0 + 2 * HOUR, "sms")]

    held = capped(policy, "sms", sent, T0 + 3 * HOUR)

    assert held is not None
    assert (held.channel, str(held.cap), held.until) == ("sms", "2/7d", T0 + timedelta(days=7))
    assert capped(policy, "email", sent, T0 + 3 * HOUR) is None


def test_one_more_message_would_fill_a_cap_when_it_is_the_last_it_has_room_for() -> None:
    assert fills_a_cap(DEFAULTS, "email", [], T0)  # 1 per 16 hours: the first fills it
    roomy = policy_from_json({"caps": ["3/1d"]})
    assert not fills_a_cap(roomy, "email", [(T0, "email")], T0 + HOUR)
    assert fills_a_cap(roomy, "email", [(T0, "email"), (T0 + HOUR, "sms")], T0 + 2 * HOUR)


@given(
    caps=st.lists(st.sampled_from(["1/16h", "2/1d", "3/2d", "5/7d", "1/1h"]), min_size=1, max_size=3, unique=True),
    attempts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=14 * 24 * 60), st.sampled_from(["email", "sms", "whatsapp"])),
        max_size=60,
    ),
    sms_cap=st.sampled_from([None, "1/1d", "2/7d"]),
)
def test_sending_only_what_the_caps_allow_never_exceeds_them_in_any_window(
    caps: list[str], attempts: list[tuple[int, str]], sms_cap: str | None
) -> None:
    policy = policy_from_json({"caps": caps, "channel_caps": {"sms": [sms_cap]} if sms_cap else {}})
    sent: list[tuple[datetime, str]] = []
    for minute, channel in sorted(attempts):
        at = T0 + timedelta(minutes=minute)
        held = capped(policy, channel, sent, at)
        if held is None:
            sent.append((at, channel))
        else:
            assert held.until > at
            # At the time it was held until, that cap has room (another may hold it longer).
            later = capped(policy, channel, sent, held.until)
            assert later is None or later.until > held.until or later.cap != held.cap

    checks = [(cap, None) for cap in policy.caps] + [(c, "sms") for c in policy.channel_caps.get("sms", ())]
    for cap, only in checks:
        times = [at for at, ch in sent if only is None or ch == only]
        for at in times:
            assert sum(1 for t in times if at - cap.window < t <= at) <= cap.count
