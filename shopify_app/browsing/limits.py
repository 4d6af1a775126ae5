"""Rate limits for what browsers send: a fixed window per key, held in the web process's memory.

Per process, not shared: with N web processes a key may get up to N times the limit, which is enough to keep
one browser or address from flooding the store. The table is bounded: when full, windows that have ended go,
then the oldest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window_seconds
        self._max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key: (window start, count)
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Count one more request of `key` at `now` (seconds); False once its window is full."""
        with self._lock:
            start, count = self._counts.get(key, (now, 0))
            if now - start >= self._window:
                start, count = now, 0
            if count >= self._limit:
                return False
            self._counts[key] = (start, count + 1)
            self._counts.move_to_end(key)
            if len(self._counts) > self._max_keys:
                self._shrink(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def _shrink(self, now: float) -> None:
        for key in [k for k, (start, _count) in self._counts.items() if now - start >= self._window]:
            del self._counts[key]
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
