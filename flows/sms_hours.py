"""When marketing SMS may go out: between 08:00 and 21:00 in the shop's time zone (the US federal rule; the
orchestration's quiet hours refine it per recipient)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OPENS = time(8)
CLOSES = time(21)


def sms_window_opens(now: datetime, timezone: str | None) -> datetime | None:
    """None when `now` is inside the window, else the instant it next opens. An unknown zone reads as UTC."""
    zone = _zone(timezone)
    local = now.astimezone(zone)
    if OPENS <= local.time() < CLOSES:
        return None
    day = local.date() if local.time() < OPENS else local.date() + timedelta(days=1)
    return datetime.combine(day, OPENS, tzinfo=zone).astimezone(UTC)


def _zone(timezone: str | None) -> ZoneInfo:
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")
