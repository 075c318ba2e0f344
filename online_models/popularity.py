"""popularity-v0: the most listened tracks of the last hours, by decayed counts.

The first honest baseline: not personal, and it says so (``model_version`` is
``popularity-v0`` and each item's reason reads "popular now"). Later models are
measured against it.

Each track's weight decays with ``half_life_s`` in event time. Instead of
decaying every count at every read, weights are stored relative to a fixed
origin (``w * 2**((t - origin) / half_life)``), so ranking is a plain sort of
stored values and an update is O(1); the origin moves forward before the
exponent could overflow. A read earlier than the newest event is answered at
the newest event's time (as ``features.decay`` does), so no exponent is ever
positive at read time: safe over the schema's whole timestamp range.

Memory bound: one float per distinct track seen (``max_tracks`` at most; the
lightest are dropped past it).

>>> pop = DecayedPopularity(half_life_s=3600)
>>> for track, kind in [("a", "play"), ("b", "play"), ("b", "save"), ("c", "skip")]:
...     pop.learn_one({"track_id": track, "type": kind, "ts": 1_000_000})
>>> [track for track, _ in pop.rank(n=2, ts_ms=1_000_000)]
['b', 'a']
>>> [track for track, _ in pop.rank(n=2, ts_ms=1_000_000, exclude={"b"})]
['a']
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Container, Mapping
from typing import Any

from features.event_types import ENGAGEMENT_WEIGHTS

_MAX_EXPONENT = 500.0  # 2**500 is far from float overflow (2**1024)


class DecayedPopularity:
    """Event-time decayed popularity of tracks, with a cached top list."""

    model_version = "popularity-v0"

    def __init__(
        self,
        half_life_s: float = 3600.0,
        max_tracks: int = 200_000,
        weights: Mapping[str, float] = ENGAGEMENT_WEIGHTS,
    ) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self.max_tracks = max_tracks
        self.weights = dict(weights)
        self._half_life_ms = half_life_s * 1000.0
        self._origin_ms: float | None = None
        self._newest_ms = -math.inf
        self._stored: dict[str, float] = {}
        self._top: list[tuple[str, float]] | None = None

    def learn_one(self, event: Mapping[str, Any]) -> None:
        """Count one listening event at its event time."""
        weight = self.weights.get(event["type"], 0.0)
        if weight == 0.0:
            return
        ts_ms = float(event["ts"])
        self._newest_ms = max(self._newest_ms, ts_ms)
        if self._origin_ms is None:
            self._origin_ms = ts_ms
        exponent = (ts_ms - self._origin_ms) / self._half_life_ms
        if exponent > _MAX_EXPONENT:
            self._move_origin(ts_ms)
            exponent = 0.0
        track = event["track_id"]
        self._stored[track] = self._stored.get(track, 0.0) + weight * 2.0**exponent
        self._top = None
        if len(self._stored) > self.max_tracks:
            self._drop_lightest()

    def rank(
        self, n: int, ts_ms: int, exclude: Container[str] = frozenset()
    ) -> list[tuple[str, float]]:
        """The ``n`` most popular tracks at ``ts_ms`` not in ``exclude``, with decayed weights."""
        if self._origin_ms is None:
            return []
        read_ms = max(float(ts_ms), self._newest_ms)  # never extrapolate backwards
        scale = 2.0 ** (-(read_ms - self._origin_ms) / self._half_life_ms)
        picked = []
        for track, stored in self._top_stored(n + _len(exclude)):
            if track not in exclude:
                picked.append((track, stored * scale))
                if len(picked) == n:
                    break
        return picked

    def __len__(self) -> int:
        return len(self._stored)

    def _top_stored(self, k: int) -> list[tuple[str, float]]:
        if self._top is None or len(self._top) < min(k, len(self._stored)):
            self._top = heapq.nlargest(max(k, 64), self._stored.items(), key=lambda kv: kv[1])
        return self._top

    def _move_origin(self, ts_ms: float) -> None:
        assert self._origin_ms is not None
        factor = 2.0 ** (-(ts_ms - self._origin_ms) / self._half_life_ms)
        self._stored = {t: w * factor for t, w in self._stored.items() if w * factor > 1e-300}
        self._origin_ms = ts_ms
        self._top = None

    def _drop_lightest(self) -> None:
        keep = heapq.nlargest(self.max_tracks * 9 // 10, self._stored.items(), key=lambda kv: kv[1])
        self._stored = dict(keep)


def _len(values: Container[str]) -> int:
    try:
        return len(values)  # type: ignore[arg-type]
    except TypeError:
        return 0


__all__ = ["DecayedPopularity"]
