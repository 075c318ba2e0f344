"""When a user's list may be refreshed: at most once per interval, with bounded memory.

A list per event would flood the output topic for a busy user; the throttle
lets one through per ``interval_s`` per user. It remembers only users refreshed
within the last interval (older entries allow a refresh anyway, so they are
dropped), and never more than ``capacity`` of them.

Memory bound: at most ``capacity`` entries (key and one float each); in steady
state, the users refreshed within the last ``interval_s``.

>>> throttle = RefreshThrottle(interval_s=2.0, capacity=100)
>>> throttle.due(b"u1", now_s=10.0)
True
>>> throttle.refreshed(b"u1", now_s=10.0)
>>> throttle.due(b"u1", now_s=11.0), throttle.due(b"u1", now_s=12.5)
(False, True)
"""

from __future__ import annotations

from collections import OrderedDict


class RefreshThrottle:
    """Per-key time of the last refresh, oldest first; monotonic seconds."""

    __slots__ = ("_last", "capacity", "interval_s")

    def __init__(self, interval_s: float, capacity: int = 100_000) -> None:
        if not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s!r}")
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity!r}")
        self.interval_s = interval_s
        self.capacity = capacity
        self._last: OrderedDict[bytes, float] = OrderedDict()

    def due(self, key: bytes, now_s: float) -> bool:
        """Whether a list for ``key`` may go out at ``now_s``."""
        last = self._last.get(key)
        return last is None or now_s - last >= self.interval_s

    def refreshed(self, key: bytes, now_s: float) -> None:
        """Record that a list for ``key`` went out at ``now_s``."""
        self._last[key] = now_s
        self._last.move_to_end(key)
        self._forget_expired(now_s)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)

    def _forget_expired(self, now_s: float) -> None:
        while self._last:
            oldest_key, oldest_s = next(iter(self._last.items()))
            if now_s - oldest_s < self.interval_s:
                return
            del self._last[oldest_key]

    def __len__(self) -> int:
        return len(self._last)
