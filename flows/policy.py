"""A shop's channel policy: how often a person may hear from it, when, on which channels where, for how much.

Plain data with its textual forms, the same on the command line and in the API:
- caps: "1/16h,5/7d" (at most 1 marketing message per 16 hours and 5 per 7 days, across channels and
  flows), and per channel "sms=2/7d";
- quiet hours, the window a channel may send in, in the recipient's local time: "email=09:00-20:00";
- budgets, per paid channel and calendar month, in the currency of the channel's rates: "sms=50" (enforced
  as `flows.budgets` says);
- regions, a channel order per country that reorders a step's channels (never adds one): "BR=whatsapp,sms";
- the growth threshold: below that many monthly active customers only the cheap channels are used;
- double opt-in, the channels whose opt-ins collected by Chorus count only once confirmed: "email".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

CHANNELS = ("email", "sms", "whatsapp", "push", "inbox")
PAID_CHANNELS = ("sms", "whatsapp")
CHEAP_CHANNELS = ("push", "inbox", "email")  # all a shop below its growth threshold uses
OPT_IN_CHANNELS = ("email", "sms")  # those whose opt-ins Chorus collects itself (its forms)
MAX_CAPS = 5
MAX_BUDGET = Decimal("1000000")
_CAP = re.compile(r"(\d{1,4})/(\d{1,4})([hd])")
_WINDOW = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_COUNTRY = re.compile(r"[A-Z]{2}")


class InvalidPolicy(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, order=True)
class Cap:
    """At most `count` marketing messages in any `window`."""

    window: timedelta
    count: int

    def __str__(self) -> str:
        hours = int(self.window.total_seconds() // 3600)
        return f"{self.count}/{hours // 24}d" if hours % 24 == 0 else f"{self.count}/{hours}h"


@dataclass(frozen=True)
class Window:
    """From `start` to `end` in local time; "24:00" ends at midnight. `start == end` would be empty: refused."""

    start: time
    end: time | None  # None: midnight, the end of the day

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else format(self.end, '%H:%M')}"

    def holds(self, at: time) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


ALL_DAY = Window(time(0, 0), None)
DEFAULT_CAPS = (Cap(timedelta(hours=16), 1), Cap(timedelta(days=7), 5))
DEFAULT_QUIET_HOURS: Mapping[str, Window] = {
    "email": Window(time(9), time(20)),
    "sms": Window(time(10), time(20)),
    "whatsapp": Window(time(10), time(20)),
}


@dataclass(frozen=True)
class ShopPolicy:
    caps: tuple[Cap, ...] = DEFAULT_CAPS
    channel_caps: Mapping[str, tuple[Cap, ...]] = field(default_factory=dict)
    quiet_hours: Mapping[str, Window] = field(default_factory=lambda: dict(DEFAULT_QUIET_HOURS))
    budgets: Mapping[str, Decimal] = field(default_factory=dict)
    regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    growth_threshold: int = 1000
    double_opt_in: frozenset[str] = frozenset()

    def window(self, channel: str) -> Window:
        """Where the shop sets none (push, inbox), the email window."""
        return self.quiet_hours.get(channel) or self.quiet_hours.get("email") or ALL_DAY

    def as_json(self) -> dict[str, Any]:
        return {
            "caps": [str(c) for c in self.caps],
            "channel_caps": {ch: [str(c) for c in caps] for ch, caps in sorted(self.channel_caps.items())},
            "quiet_hours": {ch: str(w) for ch, w in sorted(self.quiet_hours.items())},
            "budgets": {ch: str(amount) for ch, amount in sorted(self.budgets.items())},
            "regions": {country: list(order) for country, order in sorted(self.regions.items())},
            "growth_threshold": self.growth_threshold,
            "double_opt_in": sorted(self.double_opt_in),
        }


def policy_from_json(stored: Mapping[str, Any] | None) -> ShopPolicy:
    """The policy a shop's stored settings describe (what it left unset: the defaults); raises InvalidPolicy."""
    return change_policy(ShopPolicy(), stored or {})


def stored_form(policy: ShopPolicy, names: set[str]) -> dict[str, Any]:
    """What a shop keeps: the settings it set, in `as_json`'s form (the others follow the defaults)."""
    described = policy.as_json()
    return {name: described[name] for name in sorted(names) if name in described}


def change_policy(policy: ShopPolicy, changes: Mapping[str, Any]) -> ShopPolicy:
    """`policy` with the settings `changes` names (in `as_json`'s form, or the command line's) changed; every
    problem reported at once. A per-channel or per-country setting changes the entries it names (`none`
    removes one, back to its default) and keeps the others."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, value in changes.items():
        parse = _FIELDS.get(name)
        if parse is None:
            problems.append(f"{name}: unknown setting (known: {', '.join(_FIELDS)})")
            continue
        try:
            parsed = parse(value)
        except InvalidPolicy as exc:
            problems += [f"{name}: {p}" for p in exc.problems]
            continue
        if isinstance(parsed, dict):  # entries by channel or country: merged into those held
            merged = {**getattr(policy, name), **parsed}
            defaults = DEFAULT_QUIET_HOURS if name == "quiet_hours" else {}
            parsed = {k: v if v is not None else defaults.get(k) for k, v in merged.items()}
            parsed = {k: v for k, v in parsed.items() if v is not None}
        values[name] = parsed
    if problems:
        raise InvalidPolicy(problems)
    return replace(policy, **values)


def parse_caps(value: Any) -> tuple[Cap, ...]:
    """ "1/16h,5/7d", or a list of such."""
    parts = _parts(value)
    caps = []
    for part in parts:
        match = _CAP.fullmatch(part)
        count, length = (int(match[1]), int(match[2])) if match else (0, 0)
        if match is None or count < 1 or length < 1 or (match[3] == "d" and length > 365):
            raise InvalidPolicy([f"{part!r}: expected a count per window, such as 1/16h or 5/7d"])
        caps.append(Cap(timedelta(hours=length) if match[3] == "h" else timedelta(days=length), count))
    if len(caps) > MAX_CAPS:
        raise InvalidPolicy([f"at most {MAX_CAPS} caps"])
    return tuple(sorted(set(caps)))


def _channel_caps(value: Any) -> dict[str, tuple[Cap, ...] | None]:
    pairs = _by_channel(value, CHANNELS)
    return {channel: None if _removes(caps) else parse_caps(caps) for channel, caps in pairs.items()}


def parse_window(value: Any) -> Window:
    """ "09:00-20:00"; "00:00-24:00" for all day."""
    match = _WINDOW.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidPolicy([f"{value!r}: expected a window such as 09:00-20:00"])
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise InvalidPolicy([f"{value!r}: not a time of day"])
    start, end = time(h1, m1), None if h2 == 24 else time(h2, m2)
    if end is not None and end <= start:
        raise InvalidPolicy([f"{value!r}: the window must end after it starts, on the same day"])
    return Window(start, end)


def _quiet_hours(value: Any) -> dict[str, Window | None]:
    pairs = _by_channel(value, CHANNELS)
    return {channel: None if _removes(window) else parse_window(window) for channel, window in pairs.items()}


def _budgets(value: Any) -> dict[str, Decimal | None]:
    budgets: dict[str, Decimal | None] = {}
    for channel, amount in _by_channel(value, PAID_CHANNELS).items():
        if _removes(amount):
            budgets[channel] = None
            continue
        try:
            number = Decimal(str(amount).strip())
        except InvalidOperation:
            number = Decimal(-1)
        if isinstance(amount, bool) or not number.is_finite() or not 0 <= number <= MAX_BUDGET:
            raise InvalidPolicy([f"{channel}: expected an amount from 0 to {MAX_BUDGET}, such as 50"])
        budgets[channel] = number.quantize(Decimal("0.01"))
    return budgets


def _regions(value: Any) -> dict[str, tuple[str, ...] | None]:
    regions: dict[str, tuple[str, ...] | None] = {}
    for country, order in _by_key(value).items():
        if not _COUNTRY.fullmatch(country):
            raise InvalidPolicy([f"{country!r}: expected a country code in capitals, such as BR"])
        if _removes(order):
            regions[country] = None
            continue
        channels = tuple(_parts(order))
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown or not channels or len(set(channels)) != len(channels):
            raise InvalidPolicy([f"{country}: expected distinct channels among {', '.join(CHANNELS)}"])
        regions[country] = channels
    return regions


def _growth_threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise InvalidPolicy([f"{value!r}: expected a whole number of customers, such as 1000"])
    number = int(str(value).strip())
    if number > 10_000_000:
        raise InvalidPolicy(["at most 10000000"])
    return number


def _double_opt_in(value: Any) -> frozenset[str]:
    channels = frozenset(_parts(value)) - {"none"}
    unknown = sorted(channels - set(OPT_IN_CHANNELS))
    if unknown:
        raise InvalidPolicy([f"{', '.join(unknown)}: Chorus collects opt-ins itself for {', '.join(OPT_IN_CHANNELS)}"])
    return channels


_FIELDS = {
    "caps": parse_caps,
    "channel_caps": _channel_caps,
    "quiet_hours": _quiet_hours,
    "budgets": _budgets,
    "regions": _regions,
    "growth_threshold": _growth_threshold,
    "double_opt_in": _double_opt_in,
}


def _removes(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() == "none")


def _parts(value: Any) -> list[str]:
    """ "a,b" or ["a", "b"]: the parts, stripped."""
    if isinstance(value, str):
        items: list[Any] = value.split(",") if value.strip() else []
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InvalidPolicy([f"{value!r}: expected a list or comma-separated text"])
    if not all(isinstance(i, str) for i in items):
        raise InvalidPolicy(["expected text"])
    return [i.strip() for i in items if i.strip()]


def _by_key(value: Any) -> dict[str, Any]:
    """{"sms": x} or "sms=x" pairs (one per item; an item's value may itself hold commas, as a region's
    channels do, when it is the only item)."""
    if isinstance(value, Mapping):
        return {str(k).strip(): v for k, v in value.items()}
    if isinstance(value, str | list | tuple):
        found: dict[str, Any] = {}
        for item in [value] if isinstance(value, str) else list(value):
            if not isinstance(item, str) or "=" not in item:
                raise InvalidPolicy([f"{item!r}: expected name=value"])
            key, _, rest = item.partition("=")
            found[key.strip()] = rest.strip()
        return found
    raise InvalidPolicy([f"{value!r}: expected an object or name=value pairs"])


def _by_channel(value: Any, channels: tuple[str, ...]) -> dict[str, Any]:
    pairs = _by_key(value) if not isinstance(value, str) else _split_pairs(value)
    unknown = sorted(set(pairs) - set(channels))
    if unknown:
        raise InvalidPolicy([f"{', '.join(unknown)}: expected one of {', '.join(channels)}"])
    return pairs


def _split_pairs(value: str) -> dict[str, Any]:
    """ "email=09:00-20:00,sms=10:00-20:00": pairs separated by commas."""
    return _by_key([part for part in value.split(",") if part.strip()])
