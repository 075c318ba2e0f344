"""Exact sliding-window sums and counts over the last ``window_ms`` of event time.

A read at ``t`` covers the events with ``t - window_ms < ts <= t``: an event
exactly ``window_ms`` old has just left the window.

Lateness. Events may arrive out of order. With ``max_ms`` the newest event time
seen, an event with ``ts < max_ms - lateness_ms`` is refused: ``update`` returns
False and nothing changes (the caller counts or dead-letters it). Everything the
window accepted and still needs is kept, so every read at
``t >= max_ms - lateness_ms`` equals the brute-force sum over the accepted
events. A read earlier than that horizon is answered at the horizon, since the
events it would need may already be gone.

Memory: two parallel lists holding the accepted events of the last
``window_ms + lateness_ms`` (so proportional to the event rate times that span).
``max_items`` caps it: when full, the oldest event is dropped to make room and
reads undercount from then on (exact again once the dropped events would have
left the window anyway). Updates cost O(log n) plus a memmove for late events
and eviction; reads cost O(log n) plus the smaller of the events inside or
outside the read window (a running total covers the rest).

Rounding: integer-valued updates (counts, milliseconds) give exact sums below
2**53. Fractional values carry float rounding relative to the held total; the
total restarts from an exact 0.0 whenever the window empties and is recomputed
with ``math.fsum`` on ``from_state``.

>>> plays = SlidingWindowSum(window_ms=30_000, lateness_ms=10_000)
>>> [plays.update(ts_ms) for ts_ms in (0, 10_000, 30_000)]
[True, True, True]
>>> plays.read(ts_ms=40_000)  # (10 s, 40 s]: the play at 10 s is 30 s old, just gone
1.0
>>> plays.update(ts_ms=25_000)  # 5 s late, within the 10 s lateness
True
>>> plays.update(ts_ms=19_999)  # more than 10 s late
False
>>> plays.read(ts_ms=40_000), plays.count(ts_ms=35_000)
(2.0, 3)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any, Self

from features.base import read_state, versioned_state

_NEVER_MS = -(2**62)  # "no event yet": earlier than any real event time


class SlidingWindowSum:
    """Exact sum (``read``) and count (``count``) of the events in the last ``window_ms``.

    ``update`` returns False for an event later than ``lateness_ms`` behind the
    newest one seen (or one older than everything held when ``max_items`` is reached).
    """

    __slots__ = ("_max_ms", "_total", "_ts", "_values", "lateness_ms", "max_items", "window_ms")

    def __init__(
        self, window_ms: int = 3_600_000, lateness_ms: int = 0, max_items: int | None = None
    ) -> None:
        if not window_ms > 0:
            raise ValueError(f"window_ms must be > 0, got {window_ms!r}")
        if not lateness_ms >= 0:
            raise ValueError(f"lateness_ms must be >= 0, got {lateness_ms!r}")
        if max_items is not None and not max_items >= 1:
            raise ValueError(f"max_items must be None or >= 1, got {max_items!r}")
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.max_items = max_items
        self._ts: list[int] = []  # sorted event times
        self._values: list[float] = []  # their values, same order
        self._total = 0.0  # sum of _values, so reads only sum what lies outside the window
        self._max_ms: int = _NEVER_MS

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(window_ms={self.window_ms!r}, "
            f"lateness_ms={self.lateness_ms!r}, max_items={self.max_items!r})"
        )

    def __len__(self) -> int:
        """The number of events held (the memory in use)."""
        return len(self._ts)

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Add ``value`` seen at ``ts_ms``; False (and no change) if the event is refused."""
        if ts_ms > self._max_ms:
            self._max_ms = ts_ms
            self._evict_through(ts_ms - self.window_ms - self.lateness_ms)
        elif ts_ms < self._max_ms - self.lateness_ms:
            return False
        if len(self._ts) == self.max_items and not self._make_room(ts_ms):
            return False
        at = bisect_right(self._ts, ts_ms)  # == len(self._ts) for in-order events
        self._ts.insert(at, ts_ms)
        self._values.insert(at, value)
        self._total += value
        return True

    def read(self, ts_ms: int) -> float:
        """Sum of the values with ``ts_ms - window_ms < ts <= ts_ms`` (see the horizon above)."""
        lo, hi = self._bounds(ts_ms)
        values = self._values
        if hi - lo <= len(values) // 2:
            return sum(values[lo:hi])
        return self._total - sum(values[:lo]) - sum(values[hi:])

    def count(self, ts_ms: int) -> int:
        """Number of events with ``ts_ms - window_ms < ts <= ts_ms``."""
        lo, hi = self._bounds(ts_ms)
        return hi - lo

    def _bounds(self, ts_ms: int) -> tuple[int, int]:
        horizon = self._max_ms - self.lateness_ms
        t = ts_ms if ts_ms > horizon else horizon
        return bisect_right(self._ts, t - self.window_ms), bisect_right(self._ts, t)

    def _evict_through(self, cutoff_ms: int) -> None:
        """Drop the events at or before ``cutoff_ms``: no allowed read can see them."""
        n = bisect_right(self._ts, cutoff_ms)
        if n == len(self._ts):
            self._total = 0.0  # exact zero: no float residue survives an empty window
            self._ts.clear()
            self._values.clear()
        elif n:
            self._total -= sum(self._values[:n])
            del self._ts[:n]
            del self._values[:n]

    def _make_room(self, ts_ms: int) -> bool:
        """At ``max_items``: drop the oldest event, unless the new one would be the oldest."""
        if ts_ms < self._ts[0]:
            return False
        del self._ts[0]
        self._total -= self._values.pop(0)
        return True

    def to_state(self) -> dict[str, Any]:
        """Configuration (``max_items`` 0 for no cap) and the held events as two lists."""
        return versioned_state(
            window_ms=self.window_ms,
            lateness_ms=self.lateness_ms,
            max_items=self.max_items if self.max_items is not None else 0,
            event_ts_ms=list(self._ts),
            values=list(self._values),
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state()`` output; ``ValueError`` on an unknown version."""
        window_ms, lateness_ms, max_items, event_ts_ms, values = read_state(
            state, cls.__name__, "window_ms", "lateness_ms", "max_items", "event_ts_ms", "values"
        )
        if len(event_ts_ms) != len(values):
            raise ValueError(
                f"{cls.__name__} state has {len(event_ts_ms)} times for {len(values)} values"
            )
        stat = cls(window_ms, lateness_ms, max_items or None)
        stat._ts = [int(ts) for ts in event_ts_ms]
        stat._values = [float(value) for value in values]
        stat._total = math.fsum(stat._values)  # restoring also clears accumulated rounding
        stat._max_ms = stat._ts[-1] if stat._ts else _NEVER_MS
        return stat
