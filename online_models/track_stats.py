"""Every track's rolling statistics: kept by the learner, served to the workers in snapshots.

An engagement example holds the track's trend, skip and save rates and
popularity (:func:`online_models.example.track_stats_side`). The worker that
builds the example owns the *user*, not the track: a track's events come from
every partition. The learner sees every example, so it keeps the statistics
(:class:`features.TrackFeatures`, the same code the by-track side runs), from
each example's event type and time. Each snapshot carries them twice:

* ``track_stats_counts`` / ``track_stats_latest_ms``: each track's decayed
  counts as of its newest event, so a resumed learner goes on from them;
* ``track_stats_served``: the statistics the examples read
  (:data:`~online_models.example.TRACK_STATS`) as of the newest event the learner
  saw, which the workers put in every example until the next snapshot.

Offline evaluation (:mod:`online_models.evaluation`) reads them exactly as of
each event; live, they are as old as the snapshot served (seconds). Both go
through :func:`~online_models.example.build_example`.

Memory bound: one :class:`~features.TrackFeatures` (six decayed statistics) per
track met; the catalog bounds the tracks.

>>> stats = TrackStatistics()
>>> for ts in range(0, 600_000, 60_000):
...     stats.update("t1", "play", ts)
>>> stats.update("t2", "skip", 600_000)
>>> served = served_track_stats(stats.arrays())
>>> served["t1"]["trending"] > 1.0 > served["t2"]["trending"] - 1e-9, len(served)
(True, 2)
>>> TrackStatistics.from_arrays(stats.arrays()).arrays()["track_stats_served"].shape
(2, 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import TrackFeatures
from features.base import versioned_state
from features.track import COUNTS
from online_models.example import TRACK_STATS
from online_models.taste import array_names, names_array

#: The columns of ``track_stats_counts``: each decayed count, then popularity.
STATE_COLUMNS = (*COUNTS, "popularity")
_ARRAYS = ("track_stats_keys", "track_stats_counts", "track_stats_latest_ms")


class TrackStatistics:
    """Every track's :class:`~features.TrackFeatures`, by track id."""

    def __init__(self, popularity_half_life_s: float = 3600.0) -> None:
        self.popularity_half_life_s = popularity_half_life_s
        self.tracks: dict[str, TrackFeatures] = {}
        #: the newest event time met: what the served statistics are read at
        self.now_ms = 0

    def __len__(self) -> int:
        return len(self.tracks)

    def update(self, track_id: str, kind: str, ts_ms: int) -> None:
        """Fold in one event of ``track_id`` (``ValueError`` for an unknown ``kind``)."""
        track = self.tracks.get(track_id)
        if track is None:
            track = self.tracks[track_id] = TrackFeatures(self.popularity_half_life_s)
        track.update({"type": kind, "ts": ts_ms})
        self.now_ms = max(self.now_ms, ts_ms)

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The snapshot's arrays (see the module doc)."""
        tracks = self.tracks.values()
        states = [track.to_state() for track in tracks]
        counts = np.array(
            [[state["counts"].get(name, 0.0) for name in STATE_COLUMNS] for state in states],
            dtype=np.float64,
        ).reshape(len(states), len(STATE_COLUMNS))
        reads = [track.read(self.now_ms) for track in tracks]
        served = np.array(
            [[read[name] for name in TRACK_STATS] for read in reads], dtype=np.float64
        ).reshape(len(states), len(TRACK_STATS))
        return {
            "track_stats_keys": names_array(self.tracks),
            "track_stats_counts": counts,
            "track_stats_latest_ms": np.array(
                [state["latest_ts_ms"] for state in states], dtype=np.int64
            ),
            "track_stats_served": served,
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, NDArray[Any]], popularity_half_life_s: float = 3600.0
    ) -> TrackStatistics:
        """The statistics a snapshot carries; empty if it carries none (an older one);
        ``ValueError`` if its arrays do not fit together."""
        stats = cls(popularity_half_life_s)
        if not all(name in arrays for name in _ARRAYS):
            return stats
        keys = array_names(arrays["track_stats_keys"])
        counts, latest = arrays["track_stats_counts"], arrays["track_stats_latest_ms"]
        if counts.shape != (len(keys), len(STATE_COLUMNS)) or latest.shape != (len(keys),):
            raise ValueError(f"track statistics of {len(keys)} tracks do not fit their arrays")
        for key, row, ts in zip(keys, counts.tolist(), latest.tolist(), strict=True):
            state = versioned_state(
                latest_ts_ms=ts, counts=dict(zip(STATE_COLUMNS, row, strict=True))
            )
            stats.tracks[key] = TrackFeatures.from_state(state, popularity_half_life_s)
            stats.now_ms = max(stats.now_ms, ts)
        return stats


def served_track_stats(arrays: Mapping[str, NDArray[Any]]) -> dict[str, dict[str, float]]:
    """Each track's statistics as a snapshot serves them (none from an older snapshot);
    ``ValueError`` if the arrays do not fit together."""
    if "track_stats_served" not in arrays:
        return {}
    keys = array_names(arrays["track_stats_keys"])
    served = arrays["track_stats_served"]
    if served.shape != (len(keys), len(TRACK_STATS)):
        raise ValueError(f"served statistics of shape {served.shape} for {len(keys)} tracks")
    return {
        key: dict(zip(TRACK_STATS, row, strict=True))
        for key, row in zip(keys, served.tolist(), strict=True)
    }


__all__ = ["STATE_COLUMNS", "TrackStatistics", "served_track_stats"]
