"""Per-track rolling statistics: popularity, trend, skip and save rates, in event time.

Every listener's events of one track are folded into one :class:`TrackFeatures`.
They arrive from many users and partitions, so in no useful event-time order;
the decayed counts below are exact whatever the order, so no lateness bound
applies here. A read before the newest event is answered at the newest event.

* ``plays_1h``, ``plays_1d``, ``plays_7d``: decayed play counts (half-lives
  1 hour, 1 day, 7 days); ``skips_1d`` and ``saves_7d`` likewise.
* ``trending = (plays_per_hour_1h + 1) / (plays_per_hour_1d + 1)`` with
  ``plays_per_hour_H = plays_H * ln 2 / H`` (``H`` the half-life in hours): the
  play rate of about the last hour against that of about the last day. A steady
  ``r`` plays an hour builds up a decayed count of ``r * H / ln 2``, so both rates
  read ``r`` and ``trending`` reads 1; a rising track reads above 1, a fading one
  below. The ``+ 1`` (one play an hour, ``TRENDING_PRIOR_PER_HOUR``) keeps a
  track with a handful of plays near 1 rather than "trending".
* ``skip_rate_1d = (skips_1d + 0.3 * 5) / (plays_1d + skips_1d + 5)``: skips among
  listens, smoothed towards 0.3 with 5 pseudo-listens (``SKIP_PRIOR``).
* ``save_rate_7d = (saves_7d + 0.05 * 5) / (plays_7d + 5)``: saves per play,
  smoothed towards 0.05 (``SAVE_PRIOR``).
* ``popularity``: decayed engagement, each event weighted by
  ``features.event_types.ENGAGEMENT_WEIGHTS`` (a save counts twice, a skip not at
  all), with the configurable ``popularity_half_life_s`` (one hour by default):
  what the trending ranking orders tracks by.

Memory: six decayed statistics (a few floats each) and the newest event time.

>>> track = TrackFeatures()
>>> for ts in (0, 60_000, 120_000):
...     track.update({"type": "play", "ts": ts})
>>> track.update({"type": "skip", "ts": 180_000})
>>> f = track.read(180_000)
>>> round(f["plays_1h"], 3), round(f["skip_rate_1d"], 3), round(f["trending"], 2)  # a burst
(2.932, 0.278, 2.79)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

from features.base import read_state, versioned_state
from features.decay import DecayedCounter, DecayedSum
from features.event_types import ENGAGEMENT_WEIGHTS, EVENT_TYPES

#: Each count: the event type it counts and its half-life in seconds.
COUNTS: dict[str, tuple[str, float]] = {
    "plays_1h": ("play", 3600.0),
    "plays_1d": ("play", 86_400.0),
    "plays_7d": ("play", 7 * 86_400.0),
    "skips_1d": ("skip", 86_400.0),
    "saves_7d": ("save", 7 * 86_400.0),
}
#: (rate, weight): what a track with no events reads, and how many pseudo-events it weighs.
SKIP_PRIOR = (0.3, 5.0)
SAVE_PRIOR = (0.05, 5.0)
TRENDING_PRIOR_PER_HOUR = 1.0
_NEVER_MS = -(2**62)  # "no event yet": earlier than any real event time, still JSON-safe


class TrackFeatures:
    """One track's statistics over all its listeners.

    Memory: six decayed statistics and one int, whatever the number of listeners.
    """

    __slots__ = ("_by_type", "counts", "latest_ts_ms", "popularity")

    def __init__(self, popularity_half_life_s: float = 3600.0) -> None:
        self.latest_ts_ms: int = _NEVER_MS
        self.counts = {
            name: DecayedCounter(half_life_s) for name, (_, half_life_s) in COUNTS.items()
        }
        self.popularity = DecayedSum(popularity_half_life_s)
        self._index()

    def _index(self) -> None:
        # Per event type, the counters it feeds: no lookups by name on the hot path.
        self._by_type = {
            kind: tuple(
                self.counts[name] for name, (counted, _) in COUNTS.items() if counted == kind
            )
            for kind in EVENT_TYPES
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(popularity_half_life_s={self.popularity.half_life_s!r})"

    def update(self, event: Mapping[str, Any]) -> None:
        """Fold in one event of this track (its ``type`` and ``ts`` are read).

        ``ValueError``, and no change, for a type other than play, skip or save.
        """
        ts, kind = int(event["ts"]), event["type"]
        counters = self._by_type.get(kind)
        if counters is None:
            raise ValueError(f"type: expected one of {EVENT_TYPES}, got {kind!r}")
        if ts > self.latest_ts_ms:
            self.latest_ts_ms = ts
        for counter in counters:
            counter.update(ts)
        weight = ENGAGEMENT_WEIGHTS[kind]
        if weight:
            self.popularity.update(ts, weight)

    def read(self, ts_ms: int) -> dict[str, float]:
        """Every statistic as of ``ts_ms`` (as of the newest event, if that is later)."""
        at = ts_ms if ts_ms > self.latest_ts_ms else self.latest_ts_ms
        f = {name: counter.read(at) for name, counter in self.counts.items()}
        f["popularity"] = self.popularity.read(at)
        plays_per_hour_1h = f["plays_1h"] * math.log(2.0) / (COUNTS["plays_1h"][1] / 3600.0)
        plays_per_hour_1d = f["plays_1d"] * math.log(2.0) / (COUNTS["plays_1d"][1] / 3600.0)
        f["trending"] = (plays_per_hour_1h + TRENDING_PRIOR_PER_HOUR) / (
            plays_per_hour_1d + TRENDING_PRIOR_PER_HOUR
        )
        rate, weight = SKIP_PRIOR
        f["skip_rate_1d"] = (f["skips_1d"] + rate * weight) / (
            f["plays_1d"] + f["skips_1d"] + weight
        )
        rate, weight = SAVE_PRIOR
        f["save_rate_7d"] = (f["saves_7d"] + rate * weight) / (f["plays_7d"] + weight)
        return f

    def to_state(self) -> dict[str, Any]:
        """``{"v", "latest_ts_ms", "counts"}``: each non-zero count (and ``popularity``)
        as of ``latest_ts_ms`` (one time for all; the half-lives are configuration,
        not stored)."""
        at = self.latest_ts_ms
        counts = {name: value for name, c in self.counts.items() if (value := c.read(at))}
        if popularity := self.popularity.read(at):
            counts["popularity"] = popularity
        return versioned_state(latest_ts_ms=at, counts=counts)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], popularity_half_life_s: float = 3600.0) -> Self:
        """Rebuild from ``to_state()`` output; ``ValueError`` on an unknown version.

        A state saved before ``popularity`` existed restores with it at zero.
        """
        latest_ts_ms, counts = read_state(state, cls.__name__, "latest_ts_ms", "counts")
        track = cls(popularity_half_life_s)
        track.latest_ts_ms = int(latest_ts_ms)
        if "popularity" in counts:
            track.popularity = DecayedSum.from_state(
                versioned_state(
                    half_life_s=popularity_half_life_s,
                    ts_ms=track.latest_ts_ms,
                    value=float(counts["popularity"]),
                )
            )
        for name, value in counts.items():
            if name in COUNTS:  # a count this code no longer keeps is dropped
                counter_state = versioned_state(
                    half_life_s=COUNTS[name][1], ts_ms=track.latest_ts_ms, value=float(value)
                )
                track.counts[name] = DecayedCounter.from_state(counter_state)
        track._index()
        return track
