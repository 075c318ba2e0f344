"""What a worker keeps per user, and its versioned, JSON-safe encoding.

One value per user in one changelogged table, so a batch of that user's events
changes their state in one changelog record: after a crash the restored state
either includes a batch (its event ids are then duplicates) or does not (the
batch is processed again). Either way no event counts twice.

>>> state = UserState.empty(dedupe_capacity=8)
>>> state.seen.add("e1", offset=7), state.remember_track("t1"), state.recent_tracks
('new', None, ['t1'])
>>> UserState.from_state(state.to_state(), dedupe_capacity=8).seen.add("e1", offset=9)
'duplicate'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.dedupe import RecentEventIds

STATE_VERSION = 2
RECENT_TRACKS = 50


@dataclass
class UserState:
    """Recent event ids (dedupe) and recently heard tracks (not recommended again)."""

    seen: RecentEventIds
    recent_tracks: list[str]

    @classmethod
    def empty(cls, dedupe_capacity: int = 256) -> UserState:
        return cls(RecentEventIds(dedupe_capacity), [])

    def remember_track(self, track_id: str) -> None:
        """Most recent last; at most ``RECENT_TRACKS`` kept."""
        if track_id in self.recent_tracks:
            self.recent_tracks.remove(track_id)
        self.recent_tracks.append(track_id)
        del self.recent_tracks[:-RECENT_TRACKS]

    def to_state(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "seen": self.seen.to_state(), "recent": self.recent_tracks}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, dedupe_capacity: int = 256) -> UserState:
        if state is None:
            return cls.empty(dedupe_capacity)
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unknown UserState version {state.get('v')!r}")
        seen = RecentEventIds.from_state(state["seen"], dedupe_capacity)
        return cls(seen, list(state["recent"]))
