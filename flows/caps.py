"""Frequency caps: how many marketing messages one person may get in any rolling window, across every flow and
channel (and, where the shop says so, per channel).

A cap of N per W allows a message at `t` when fewer than N of the person's messages went out in (t - W, t].
When one does not, the message waits until the oldest message that fills it leaves the window. Flows have a
priority: a message that would fill a cap gives way when a more important flow's message to the same person
is due within the hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.policy import Cap, ShopPolicy

YIELD_AHEAD = timedelta(hours=1)  # a more important message due this soon goes first


@dataclass(frozen=True)
class Capped:
    cap: Cap
    channel: str | None  # None: the cap across channels
    until: datetime


def _applicable(policy: ShopPolicy, channel: str) -> list[tuple[Cap, str | None]]:
    return [(cap, None) for cap in policy.caps] + [(cap, channel) for cap in policy.channel_caps.get(channel, ())]


def capped(policy: ShopPolicy, channel: str, sent: Sequence[tuple[datetime, str]], now: datetime) -> Capped | None:
    """The cap that holds a message on `channel` back at `now`, and until when (the latest of them); None when
    every cap allows it. `sent` is the person's messages: when each went out, on which channel."""
    found: Capped | None = None
    for cap, only in _applicable(policy, channel):
        inside = sorted(at for at, ch in sent if (only is None or ch == only) and now - cap.window < at <= now)
        if len(inside) >= cap.count:
            until = inside[len(inside) - cap.count] + cap.window  # when enough of them have left the window
            if found is None or until > found.until:
                found = Capped(cap, only, until)
    return found


def fills_a_cap(policy: ShopPolicy, channel: str, sent: Sequence[tuple[datetime, str]], now: datetime) -> bool:
    """Whether one more message now would leave a cap with no room."""
    return capped(policy, channel, [*sent, (now, channel)], now + timedelta(microseconds=1)) is not None
