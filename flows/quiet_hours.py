"""When a marketing message may go out: inside the shop's window for its channel, in the recipient's local time,
and for SMS inside the legal window of the recipient's country or US state.

The recipient's time is their contact's zone (from their address, else their number); without one, every
zone their number's region spans (a message goes only when the window is open in all of them); without a
number, the shop's. Outside the window a send waits for the next opening: the earliest instant at which every
window holds in every zone. Windows only open at a window's start, so the candidates are those starts, in
each zone, over the next days; each is checked in UTC, which also settles the days a clock skips or repeats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.facts import Facts
from flows.phones import phone_region
from flows.policy import ShopPolicy, Window
from flows.zones import zones_of_number

SUNDAY = 6
LOOK_AHEAD_DAYS = 9  # a week and the days a zone's clock may skip: an opening is always found within it


@dataclass(frozen=True)
class LegalWindow:
    """The hours a marketing text may reach someone where they live (Sundays may be narrower)."""

    hours: Window
    sunday: Window | None = None
    source: str = ""

    def on(self, day: date) -> Window:
        return self.sunday if self.sunday is not None and day.weekday() == SUNDAY else self.hours


# Marketing texts, by recipient's country or US state. The federal rule applies in every state; a state's own
# law narrows it where it is stricter.
TCPA = LegalWindow(Window(time(8), time(21)), source="47 CFR 64.1200(c)(1): 8 a.m. to 9 p.m., recipient's time")
SMS_LEGAL: Mapping[str, LegalWindow] = {
    "US": TCPA,
    "US-FL": LegalWindow(Window(time(8), time(20)), source="Fla. Stat. 501.059(8)(a): 8 a.m. to 8 p.m."),
    "US-MD": LegalWindow(Window(time(8), time(20)), source="Md. Code, Com. Law 14-4503: 8 a.m. to 8 p.m."),
    "US-WA": LegalWindow(Window(time(8), time(20)), source="RCW 80.36.390: 8 a.m. to 8 p.m."),
    "US-CT": LegalWindow(Window(time(9), time(20)), source="Conn. Gen. Stat. 42-288a: 9 a.m. to 8 p.m."),
    "US-OK": LegalWindow(Window(time(8), time(21)), source="15 O.S. 775C.3: 8 a.m. to 9 p.m."),
    "US-TX": LegalWindow(
        Window(time(9), time(21)), Window(time(12), time(21)),
        source="Tex. Bus. & Com. Code 301.051: 9 a.m. to 9 p.m., Sundays noon to 9 p.m.",
    ),
}  # fmt: skip


def _strictest(windows: Sequence[LegalWindow]) -> LegalWindow:
    """Every window's hours at once: for a US number whose state is not known."""

    def meet(found: Sequence[Window]) -> Window:
        ends = [w.end for w in found if w.end is not None]
        return Window(max(w.start for w in found), min(ends) if ends else None)

    return LegalWindow(
        meet([w.hours for w in windows]),
        meet([w.sunday or w.hours for w in windows]),
        source="the strictest of the US states' windows (the recipient's state is not known)",
    )


US_UNKNOWN_STATE = _strictest([w for key, w in SMS_LEGAL.items() if key.startswith("US")])


@dataclass(frozen=True)
class Constraint:
    """One window, in one zone."""

    zone: str
    window: Window | LegalWindow

    def holds(self, at: datetime) -> bool:
        local = at.astimezone(_zone(self.zone))
        window = self.window.on(local.date()) if isinstance(self.window, LegalWindow) else self.window
        return window.holds(local.time())

    def starts(self, after: datetime) -> list[datetime]:
        """When this window opens, each day from the day of `after` on."""
        zone = _zone(self.zone)
        first = after.astimezone(zone).date()
        found = []
        for offset in range(-1, LOOK_AHEAD_DAYS):
            day = first + timedelta(days=offset)
            window = self.window.on(day) if isinstance(self.window, LegalWindow) else self.window
            found.append(datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC))
        return found


def constraints(channel: str, policy: ShopPolicy, facts: Facts) -> list[Constraint]:
    """The windows a message on `channel` to this subject must be inside, each in each of the recipient's zones."""
    zones = recipient_zones(channel, facts)
    found = [Constraint(zone, policy.window(channel)) for zone in zones]
    if channel == "sms":
        legal = legal_window(facts)
        found += [Constraint(zone, legal) for zone in zones] if legal is not None else []
    return found


def recipient_zones(channel: str, facts: Facts) -> tuple[str, ...]:
    contact = facts.contact
    if contact is not None and contact.timezone and _known(contact.timezone):
        return (contact.timezone,)
    if channel in ("sms", "whatsapp"):
        by_number = tuple(z for z in zones_of_number(facts.phone) if _known(z))
        if by_number:
            return by_number
    shop = facts.shop.timezone
    return (shop,) if shop and _known(shop) else ("UTC",)


def legal_window(facts: Facts) -> LegalWindow | None:
    """The recipient's country's (or US state's) window for marketing texts; None where the table has none."""
    contact = facts.contact
    country = (contact.country if contact is not None else None) or phone_region(facts.phone or "")
    if country is None:
        return None
    if country == "US":
        province = contact.province if contact is not None and contact.country == "US" else None
        if province is None:
            return US_UNKNOWN_STATE
        return SMS_LEGAL.get(f"US-{province}", TCPA)
    return SMS_LEGAL.get(country)


def next_opening(now: datetime, found: Sequence[Constraint]) -> datetime | None:
    """None when every constraint holds now; else the earliest later instant at which they all do (windows
    that never meet, in zones half a day apart: looked at again in a day)."""
    if all(c.holds(now) for c in found):
        return None
    candidates = sorted({start for c in found for start in c.starts(now) if start > now})
    return next((at for at in candidates if all(c.holds(at) for c in found)), now + timedelta(days=1))


def opens_at(channel: str, policy: ShopPolicy, facts: Facts, now: datetime) -> datetime | None:
    """When a marketing message on `channel` to this subject may go out, if not now."""
    return next_opening(now, constraints(channel, policy, facts))


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _known(name: str) -> bool:
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
