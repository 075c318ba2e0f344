"""Trending tracks as one truth for every worker: per-partition top lists, merged.

Track statistics are partitioned by ``track_id`` across workers, so no worker
sees every track. Each worker keeps, for each by-track partition it owns, the
top ``k`` tracks by decayed engagement (:class:`PartitionTop`) and publishes it
to a compacted topic keyed by partition; every worker reads that whole topic
and merges the lists (:class:`TrendingBoard`). The ranking is then a property
of the whole stream: the same on every worker, and kept across restarts (the
topic is compacted, and a partition's new owner starts from its last list).

Scores compare across times without decaying anything: a track's decayed
engagement ``v`` read at ``t`` is kept as ``log2(v) + t / half_life`` (its
*log-score*), so one track outranks another at every read time exactly when its
log-score is higher, and ``v`` at a read time ``T`` is ``2**(score - T / half_life)``.
No exponent grows with time, so nothing overflows anywhere in the schema's
timestamp range. The decayed values themselves come from ``features.decay``
(the per-track ``popularity`` statistic); this module only orders them.

Exactness: every track of a partition competes when its statistic changes,
and untouched tracks decay at the same rate, so they never overtake one
another: a partition's top ``k`` is exact, and so the merged top ``n <= k``.

Memory bound: ``k`` entries per owned partition (local), ``k`` per partition of
the topic (merged): with k=100 and 64 partitions, 6,400 entries.

>>> top = PartitionTop(k=2, half_life_s=3600)
>>> for track, value in [("a", 4.0), ("b", 1.0), ("c", 2.0)]:
...     top.offer(track, value, ts_ms=0)
>>> board = TrendingBoard(half_life_s=3600)
>>> board.merge(top.snapshot(partition=0))
>>> [(t, round(v, 3)) for t, v in board.rank(2, ts_ms=3_600_000)]  # an hour later: halved
[('a', 2.0), ('c', 1.0)]
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features import TrackFeatures


def log_score(value: float, ts_ms: int, half_life_s: float) -> float:
    """The order-preserving, time-free form of a decayed ``value`` read at ``ts_ms``."""
    return math.log2(value) + ts_ms / (half_life_s * 1000.0)


def value_at(score: float, ts_ms: int, half_life_s: float) -> float:
    """The decayed value a log-score reads at ``ts_ms`` (0.0 when it underflows)."""
    return _decayed(score - _halvings(ts_ms, half_life_s))


def _halvings(ts_ms: int, half_life_s: float) -> float:
    return ts_ms / (half_life_s * 1000.0)


def _decayed(exponent: float) -> float:
    return 2.0**exponent if exponent < 1000.0 else math.inf


class PartitionTop:
    """The ``k`` highest log-scores of one partition's tracks (memory: ``k`` entries)."""

    def __init__(self, k: int = 100, half_life_s: float = 3600.0) -> None:
        self.k = k
        self.half_life_s = half_life_s
        self.scores: dict[str, float] = {}
        self.changed = False

    def offer(self, track_id: str, value: float, ts_ms: int) -> None:
        """A track's decayed engagement, read at ``ts_ms``, now."""
        if value <= 0.0:
            if self.scores.pop(track_id, None) is not None:
                self.changed = True
            return
        self.scores[track_id] = log_score(value, ts_ms, self.half_life_s)
        self.changed = True
        if len(self.scores) > 2 * self.k:  # trimmed in bulk: O(1) amortised per offer
            self._trim()

    def offer_track(self, track_id: str, track: TrackFeatures) -> None:
        """A track's statistics: its decayed engagement read at its latest event."""
        at = track.latest_ts_ms
        self.offer(track_id, track.popularity.read(at), at)

    def seed(self, scores: Iterable[tuple[str, float]]) -> None:
        """Start from a published list (a new owner of the partition)."""
        for track_id, score in scores:
            self.scores.setdefault(track_id, score)
        self._trim()

    def snapshot(self, partition: int) -> dict[str, Any]:
        """The record to publish for this partition; marks it unchanged."""
        self._trim()
        self.changed = False
        top = sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return {"partition": partition, "half_life_s": self.half_life_s, "top": top}

    def _trim(self) -> None:
        if len(self.scores) > self.k:
            self.scores = dict(heapq.nlargest(self.k, self.scores.items(), key=lambda kv: kv[1]))


class TrendingBoard:
    """The merged trending ranking of every partition's published top list."""

    model_version = "popularity-v1"

    def __init__(self, half_life_s: float = 3600.0) -> None:
        self.half_life_s = half_life_s
        self.lists: dict[int, list[tuple[str, float]]] = {}
        self._ranked: list[tuple[str, float]] | None = None

    def merge(self, record: Mapping[str, Any]) -> None:
        """Take a partition's published list (it replaces that partition's last one)."""
        if float(record["half_life_s"]) != self.half_life_s:
            raise ValueError(
                f"a trending list decays with half-life {record['half_life_s']} s, "
                f"this board with {self.half_life_s} s"
            )
        self.lists[int(record["partition"])] = [(str(t), float(s)) for t, s in record["top"]]
        self._ranked = None

    def published(self, partition: int) -> list[tuple[str, float]]:
        """The last list published for ``partition`` (empty if none)."""
        return self.lists.get(partition, [])

    def rank(
        self, n: int, ts_ms: int, exclude: Container[str] = frozenset()
    ) -> list[tuple[str, float]]:
        """The ``n`` most engaging tracks at ``ts_ms`` not in ``exclude``."""
        ranked: Iterable[tuple[str, float]] = self._merged()
        if exclude:
            ranked = (entry for entry in ranked if entry[0] not in exclude)
        offset = _halvings(ts_ms, self.half_life_s)  # once: every list reads the head
        return [
            (track_id, _decayed(score - offset)) for track_id, score in itertools.islice(ranked, n)
        ]

    def __len__(self) -> int:
        return sum(len(top) for top in self.lists.values())

    def _merged(self) -> list[tuple[str, float]]:
        if self._ranked is None:
            best: dict[str, float] = {}
            for top in self.lists.values():  # a track is in one partition; max() if moved
                for track_id, score in top:
                    best[track_id] = max(score, best.get(track_id, -math.inf))
            self._ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        return self._ranked


__all__ = ["PartitionTop", "TrendingBoard", "log_score", "value_at"]
