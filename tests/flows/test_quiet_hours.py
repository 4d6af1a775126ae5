"""Quiet hours: a marketing message goes out only inside its channel's window in the recipient's time, and a
text only inside the law's window where they live; outside, it waits for the next opening, never earlier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.facts import ContactFacts, CustomerFacts, Facts, ShopFacts
from flows.policy import ShopPolicy, policy_from_json
from flows.quiet_hours import US_UNKNOWN_STATE, Constraint, constraints, legal_window, next_opening, opens_at

DEFAULTS = ShopPolicy()
SHOP = ShopFacts(installed=True, name="Lumen Lamps", postal_address="1 Main St", timezone="Europe/Paris")
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def facts(contact: ContactFacts | None = None, phone: str | None = None) -> Facts:
    customer = CustomerFacts(1, "ada@example.com", phone, "Ada") if phone else None
    return Facts(shop=SHOP, contact=contact, customer=customer)


def local(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def test_email_waits_for_nine_in_the_recipients_zone_not_the_shops() -> None:
    in_tokyo = facts(ContactFacts(1, "Asia/Tokyo", "JP"))

    assert opens_at("email", DEFAULTS, in_tokyo, local("Asia/Tokyo", 2026, 11, 20, 7, 30)) == local(
        "Asia/Tokyo", 2026, 11, 20, 9, 0
    )
    assert opens_at("email", DEFAULTS, in_tokyo, local("Asia/Tokyo", 2026, 11, 20, 9, 0)) is None
    # After the window closes: the next morning.
    assert opens_at("email", DEFAULTS, in_tokyo, local("Asia/Tokyo", 2026, 11, 20, 20, 0)) == local(
        "Asia/Tokyo", 2026, 11, 21, 9, 0
    )


def test_without_a_known_zone_the_shops_is_used() -> None:
    assert opens_at("email", DEFAULTS, facts(), local("Europe/Paris", 2026, 11, 20, 8, 0)) == local(
        "Europe/Paris", 2026, 11, 20, 9, 0
    )


def test_a_number_spanning_several_zones_waits_until_the_window_is_open_in_all_of_them() -> None:
    # +61 4: an Australian mobile, anywhere from Sydney to the Cocos Islands (four and a half hours apart).
    number = facts(phone="+61412345678")
    zones = {c.zone for c in constraints("sms", DEFAULTS, number)}
    assert {"Australia/Perth", "Australia/Sydney", "Indian/Cocos"} <= zones

    opening = opens_at("sms", DEFAULTS, number, local("Australia/Sydney", 2026, 11, 20, 11, 0))

    assert opening == local("Indian/Cocos", 2026, 11, 20, 10, 0)  # 10:00 in the westernmost: 14:30 in Sydney
    assert opening == max(local(z, 2026, 11, 20, 10, 0) for z in zones)


def test_the_law_narrows_texts_by_state_and_an_unknown_us_state_gets_the_strictest() -> None:
    florida = facts(ContactFacts(1, "America/New_York", "US", "FL"), phone="+13055550123")
    policy = policy_from_json({"quiet_hours": "sms=00:00-24:00"})

    assert opens_at("sms", policy, florida, local("America/New_York", 2026, 11, 20, 20, 30)) == local(
        "America/New_York", 2026, 11, 21, 8, 0
    )
    unknown = facts(ContactFacts(1, "America/New_York", "US"), phone="+12125550123")
    assert legal_window(unknown) == US_UNKNOWN_STATE
    assert str(US_UNKNOWN_STATE.hours) == "09:00-20:00"
    assert str(US_UNKNOWN_STATE.sunday) == "12:00-20:00"  # Texas: Sundays from noon
    texas = facts(ContactFacts(1, "America/Chicago", "US", "TX"), phone="+12145550123")
    sunday = local("America/Chicago", 2026, 11, 22, 10, 0)
    assert opens_at("sms", policy, texas, sunday) == local("America/Chicago", 2026, 11, 22, 12, 0)
    # Email has no such law: the shop's window alone.
    assert opens_at("email", policy, florida, local("America/New_York", 2026, 11, 20, 19, 30)) is None


def test_across_the_change_to_winter_time_the_window_keeps_to_the_local_clock() -> None:
    berlin = facts(ContactFacts(1, "Europe/Berlin", "DE"))
    # 25 October 2026: clocks go back from 03:00 to 02:00; 09:00 is then 08:00 UTC, not 07:00.
    assert opens_at("email", DEFAULTS, berlin, datetime(2026, 10, 24, 19, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("window", ["00:00-24:00", "09:00-20:00", "02:30-03:30", "23:00-24:00"])
def test_a_window_inside_a_skipped_hour_opens_when_the_clock_reaches_it(window: str) -> None:
    policy = policy_from_json({"quiet_hours": f"email={window}"})
    new_york = facts(ContactFacts(1, "America/New_York", "US"))
    night = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST, on the night the clocks skip 02:00-03:00

    opening = opens_at("email", policy, new_york, night)

    found = constraints("email", policy, new_york)
    assert opening is None or (opening > night and all(c.holds(opening) for c in found))


@given(
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    channel=st.sampled_from(["email", "sms"]),
)
def test_no_marketing_send_is_ever_scheduled_outside_its_window_in_any_zone(
    zones: list[str], now: datetime, channel: str
) -> None:
    legal = [Constraint(z, US_UNKNOWN_STATE) for z in zones] if channel == "sms" else []
    found = [Constraint(z, DEFAULTS.window(channel)) for z in zones] + legal

    opening = next_opening(now, found)

    if opening is None:
        assert all(c.holds(now) for c in found)
        return
    assert opening > now
    if all(c.holds(opening) for c in found):
        # Never later than an hour (a skipped hour) after the first quarter-hour at which every window held.
        step = now.replace(second=0, microsecond=0) + timedelta(minutes=15 - now.minute % 15)
        while step < opening and not all(c.holds(step) for c in found):
            step += timedelta(minutes=15)
        assert opening - step <= timedelta(hours=1)
    else:  # windows that never meet at once (zones half a day apart): looked at again a day later
        assert opening == now + timedelta(days=1)
