"""What a worker keeps per user and per track, and its versioned, JSON-safe encoding.

One value per user in one changelogged table, so a batch of that user's events
changes their state in one changelog record: after a crash the restored state
either includes a batch (its event ids are then replays, not folded again) or
does not (the batch is processed again). Either way no event counts twice.

Track statistics live in a second table, fed by a topic keyed by ``track_id``.
That topic is written at least once, so each record carries its position in
the user stream it came from (partition, offset, index); a track keeps the
highest position applied per source partition and skips anything at or below
it. Memory: one ``[offset, index]`` pair per source partition and track.

>>> state = UserState.empty(dedupe_capacity=8)
>>> state.seen.add("e1", offset=7), state.remember_track("t1"), state.recent_tracks
('new', None, ['t1'])
>>> UserState.from_state(state.to_state(), dedupe_capacity=8).seen.add("e1", offset=9)
'duplicate'
>>> track = TrackState.empty()
>>> track.first_time(partition=2, offset=40, index=0), track.first_time(2, 40, 0)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from features import TrackFeatures, UserFeatureConfig, UserFeatures
from streams.state.dedupe import RecentEventIds

STATE_VERSION = 5
TRACK_STATE_VERSION = 2
RECENT_TRACKS = 50


@dataclass
class UserState:
    """Recent event ids (dedupe), recently heard tracks, and rolling features.

    Memory bound: the sum of its parts' bounds: ``dedupe_capacity`` fingerprints
    (:mod:`streams.state.dedupe`; about 2.8 KB of state at 256), ``RECENT_TRACKS``
    track ids, and :class:`features.UserFeatures` (some 3.5 KB after 1,000 events).

    Versions restored: 5; 4, whose parts (dedupe and features) are converted by
    their own ``from_state``; and 2, which had no features (they start empty).
    """

    seen: RecentEventIds
    recent_tracks: list[str]
    features: UserFeatures

    @classmethod
    def empty(
        cls, dedupe_capacity: int = 256, config: UserFeatureConfig | None = None
    ) -> UserState:
        return cls(RecentEventIds(dedupe_capacity), [], UserFeatures(config or UserFeatureConfig()))

    def remember_track(self, track_id: str) -> None:
        """Most recent last; at most ``RECENT_TRACKS`` kept."""
        if track_id in self.recent_tracks:
            self.recent_tracks.remove(track_id)
        self.recent_tracks.append(track_id)
        del self.recent_tracks[:-RECENT_TRACKS]

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "seen": self.seen.to_state(),
            "recent": self.recent_tracks,
            "features": self.features.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any] | None,
        dedupe_capacity: int = 256,
        config: UserFeatureConfig | None = None,
    ) -> UserState:
        config = config or UserFeatureConfig()
        if state is None:
            return cls.empty(dedupe_capacity, config)
        version = state.get("v")
        if version not in (2, 4, STATE_VERSION):  # 3 held the first feature layout
            raise ValueError(
                f"UserState state has version {version!r}; this code reads versions "
                f"2, 4 and {STATE_VERSION}"
            )
        seen = RecentEventIds.from_state(state["seen"], dedupe_capacity)
        # Version 2 had no features: they start empty rather than failing the restore.
        stored = state.get("features")
        features = UserFeatures.from_state(stored, config) if stored else UserFeatures(config)
        return cls(seen, list(state["recent"]), features)


@dataclass
class TrackState:
    """One track's statistics and the last source position applied per partition."""

    features: TrackFeatures
    applied: dict[str, list[int]]

    @classmethod
    def empty(cls, popularity_half_life_s: float = 3600.0) -> TrackState:
        return cls(TrackFeatures(popularity_half_life_s), {})

    def first_time(self, partition: int, offset: int, index: int) -> bool:
        """Mark a source position applied; False if it (or a later one) already was."""
        last = self.applied.get(str(partition))
        if last is not None and (offset, index) <= (last[0], last[1]):
            return False
        self.applied[str(partition)] = [offset, index]
        return True

    def to_state(self) -> dict[str, Any]:
        return {
            "v": TRACK_STATE_VERSION,
            "applied": self.applied,
            "features": self.features.to_state(),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any] | None, popularity_half_life_s: float = 3600.0
    ) -> TrackState:
        if state is None:
            return cls.empty(popularity_half_life_s)
        if state.get("v") != TRACK_STATE_VERSION:
            raise ValueError(f"unknown TrackState version {state.get('v')!r}")
        features = TrackFeatures.from_state(state["features"], popularity_half_life_s)
        return cls(features, dict(state["applied"]))
