"""Per-track rolling statistics: popularity, trend, skip and save rates.

Every listener's events of one track are folded into one :class:`TrackFeatures`.
They arrive from many users, so in no useful event-time order; the decayed
counts below are exact whatever the order, so no lateness bound applies here.

* ``plays_1h``, ``plays_1d``: decayed play counts (1 h and 1 day half-lives).
* ``trending``: ``(plays_1h / 1h + 1) / (plays_1d / 1d + 1)`` with each count
  divided by its half-life in hours — the short-term play rate against the
  long-term one, smoothed by one play per hour so a track with a single play is
  not "trending" (1.0 = steady, above 1 = rising).
* ``skip_rate_1d``: skips among plays and skips, smoothed towards 0.3 with 5
  pseudo-listens; ``save_rate_7d``: saves per play, smoothed towards 0.05.

Memory: six decayed counters, a few floats each.

>>> track = TrackFeatures()
>>> for ts in (0, 60_000, 120_000):
...     track.update({"type": "play", "ts": ts})
>>> track.update({"type": "skip", "ts": 180_000})
>>> f = track.read(180_000)
>>> round(f["plays_1h"], 3), round(f["skip_rate_1d"], 3), f["trending"] > 1
(2.932, 0.278, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from features.base import read_state, versioned_state
from features.decay import DecayedCounter

_HOUR_S, _DAY_S, _WEEK_S = 3600.0, 86_400.0, 7 * 86_400.0
SKIP_PRIOR = (0.3, 5.0)
SAVE_PRIOR = (0.05, 5.0)


class TrackFeatures:
    """One track's statistics over all its listeners."""

    def __init__(self) -> None:
        self.counters = {
            "plays_1h": DecayedCounter(_HOUR_S),
            "plays_1d": DecayedCounter(_DAY_S),
            "plays_7d": DecayedCounter(_WEEK_S),
            "skips_1d": DecayedCounter(_DAY_S),
            "saves_7d": DecayedCounter(_WEEK_S),
        }

    def __repr__(self) -> str:
        return f"TrackFeatures(plays_7d≈{self.counters['plays_7d'].read(0):.1f})"

    def update(self, event: Mapping[str, Any]) -> None:
        """Fold in one event of this track (``type`` and ``ts`` are read)."""
        ts, kind = int(event["ts"]), event["type"]
        names = {
            "play": ("plays_1h", "plays_1d", "plays_7d"),
            "skip": ("skips_1d",),
            "save": ("saves_7d",),
        }.get(kind, ())
        for name in names:
            self.counters[name].update(ts)

    def read(self, ts_ms: int) -> dict[str, float]:
        counts = {name: c.read(ts_ms) for name, c in self.counters.items()}
        rate_1h = counts["plays_1h"] / (_HOUR_S / 3600.0)
        rate_1d = counts["plays_1d"] / (_DAY_S / 3600.0)
        skip_rate, skip_weight = SKIP_PRIOR
        save_rate, save_weight = SAVE_PRIOR
        return {
            **counts,
            "trending": (rate_1h + 1.0) / (rate_1d + 1.0),
            "skip_rate_1d": (counts["skips_1d"] + skip_rate * skip_weight)
            / (counts["plays_1d"] + counts["skips_1d"] + skip_weight),
            "save_rate_7d": (counts["saves_7d"] + save_rate * save_weight)
            / (counts["plays_7d"] + save_weight),
        }

    def to_state(self) -> dict[str, Any]:
        return versioned_state(counters={n: c.to_state() for n, c in self.counters.items()})

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        (counters,) = read_state(state, "TrackFeatures", "counters")
        track = cls()
        for name, counter_state in counters.items():
            if name in track.counters:
                track.counters[name] = DecayedCounter.from_state(counter_state)
        return track
