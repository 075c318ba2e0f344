"""What a worker keeps per user and per track, and its versioned, JSON-safe encoding.

One value per user in one changelogged table, so a batch of that user's events
changes their state in one changelog record: after a crash the restored state
either includes a batch (it is then a replay, not folded again) or does not
(the batch is processed again). Either way no event counts twice.

Track statistics live in a second table, fed by a topic keyed by ``track_id``.
That topic is written at least once, so each record carries its position in
the user stream it came from (partition, offset, index); a track keeps the
highest position applied per source partition and skips anything at or below
it. Memory: one ``[offset, index]`` pair per source partition and track.

>>> from features import TrackInfo
>>> state = UserState.empty(dedupe_capacity=8)
>>> play = {"type": "play", "track_id": "t1", "ts": 0, "ms_played": 1}
>>> state.seen.add("e1", offset=7, ts_ms=0), state.features.update(play, None)
('new', True)
>>> state.recent_tracks
['t1']
>>> UserState.from_state(state.to_state(), dedupe_capacity=8).seen.add("e1", 9, 0)
'duplicate'
>>> track = TrackState.empty()
>>> track.first_time(partition=2, offset=40, index=0), track.first_time(2, 40, 0)
(True, False)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from features import TrackFeatures, UserFeatureConfig, UserFeatures
from streams.state.dedupe import RecentEventIds

STATE_VERSION = 7
TRACK_STATE_VERSION = 2
#: Versions restored. 6 and older had no taste vector (it starts at the next event);
#: 5 and 4 also kept a list of recent tracks (now read from the features' last
#: plays); 2 had no features (they start empty). 3 held the first feature layout.
_RESTORED_VERSIONS = (2, 4, 5, 6, STATE_VERSION)


@dataclass
class UserState:
    """Recent event ids and the last message applied (dedupe), rolling features, and
    the user's taste vector (:mod:`online_models.taste`).

    Memory bound: the sum of its parts' bounds: ``dedupe_capacity`` fingerprints
    (:mod:`streams.state.dedupe`: the ids within the allowed lateness, a handful
    for most users), :class:`features.UserFeatures` (some 3 KB of JSON after
    1,000 events) and ``k`` float32 factors (stored as base64: 88 bytes for 16).
    :mod:`streams.state.codec` stores it deflated.
    """

    seen: RecentEventIds
    features: UserFeatures
    #: float32; None until the user's first event learned with a model
    taste: NDArray[np.float32] | None = None

    @classmethod
    def empty(
        cls, dedupe_capacity: int = 256, config: UserFeatureConfig | None = None
    ) -> UserState:
        return cls(RecentEventIds(dedupe_capacity), UserFeatures(config or UserFeatureConfig()))

    @property
    def recent_tracks(self) -> list[str]:
        """The tracks played most recently (``config.recent_k``), most recent last."""
        return list(reversed(self.features.read_last_tracks()))

    def forget_too_late_ids(self) -> None:
        """Drop the event ids no longer needed: their events are past the lateness."""
        features = self.features
        self.seen.forget_before(features.latest_ts_ms - features.config.lateness_ms)

    def to_state(self) -> dict[str, Any]:
        state = {
            "v": STATE_VERSION,
            "seen": self.seen.to_state(),
            "features": self.features.to_state(),
        }
        if self.taste is not None:
            state["taste"] = base64.b64encode(self.taste.astype("<f4").tobytes()).decode()
        return state

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
        if version not in _RESTORED_VERSIONS:
            raise ValueError(
                f"UserState state has version {version!r}; this code reads versions "
                f"{', '.join(map(str, _RESTORED_VERSIONS))}"
            )
        stored = state.get("features")
        features = UserFeatures.from_state(stored, config) if stored else UserFeatures(config)
        seen = RecentEventIds.from_state(state["seen"], dedupe_capacity, features.latest_ts_ms)
        return cls(seen, features, _taste_of(state.get("taste")))


def _taste_of(stored: Any) -> NDArray[np.float32] | None:
    if stored is None:
        return None
    raw = base64.b64decode(stored, validate=True)
    if len(raw) % 4:
        raise ValueError(f"UserState taste: {len(raw)} bytes is not a float32 vector")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


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
    def from_stored(
        cls, stored: bytes | dict[str, Any] | None, popularity_half_life_s: float = 3600.0
    ) -> TrackState:
        """From the tracks table's value: the state's JSON (bytes; older releases stored
        the same JSON through Faust's json codec), a decoded dict, or nothing yet."""
        state = orjson.loads(stored) if isinstance(stored, bytes) else stored
        return cls.from_state(state, popularity_half_life_s)

    def to_stored(self) -> bytes:
        """The tracks table's value: :meth:`to_state` as JSON."""
        return orjson.dumps(self.to_state())

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
