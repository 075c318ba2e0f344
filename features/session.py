"""Listening sessions: runs of events split by an inactivity gap, in event time.

A session ends when the user is silent for longer than ``gap_ms``. What the
ranking wants to know about the running session: how far in the user is
(``position``, ``length_ms``), whether they are skipping through
(``skips_in_a_row``), and its context (device, context type).

Timeline (gap 30 min)::

    10:00 play   10:04 skip   10:07 skip   |  11:00 play
    └────────── session 1 ───────────────┘    └ session 2 (53 min silence > gap)

    read at 10:08 -> position 3, length 7 min, skips_in_a_row 2
    read at 11:00 -> position 1, skips_in_a_row 0

Events may arrive out of order, by at most the caller's lateness bound (which
must be shorter than the gap). Such an event lands in its place in event time,
and can even join the running session to the one before it. So the events of
the last two sessions are kept, sorted by time; features are read from them.

Memory bound: at most ``max_events`` events of four small fields. A session
longer than that keeps counting (``position``) but forgets its oldest events.

>>> s = SessionTracker(gap_ms=30 * 60_000)
>>> for minute, kind in [(0, "play"), (7, "skip"), (4, "skip")]:  # 7 arrives before 4
...     s.update(minute * 60_000, kind, {"device": "phone"})
>>> f = s.read(8 * 60_000)
>>> f.position, f.length_ms // 60_000, f.skips_in_a_row, f.device
(3, 7, 2, 'phone')
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self

from features.base import read_state, versioned_state

#: (ts_ms, is_skip, device, context_type): sorts by time, then by content.
Entry = tuple[int, bool, str, str]


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """The running session as of a time; all zero and empty when none is running."""

    active: bool
    start_ms: int | None
    position: int
    length_ms: int
    skips_in_a_row: int
    device: str | None
    context_type: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_SESSION = SessionFeatures(False, None, 0, 0, 0, None, None)


class SessionTracker:
    """Sessions of one user, split by ``gap_ms`` of silence. Memory: ``max_events`` entries."""

    def __init__(self, gap_ms: int = 1_800_000, max_events: int = 500) -> None:
        if gap_ms <= 0 or max_events < 2:
            raise ValueError("gap_ms must be > 0 and max_events >= 2")
        self.gap_ms = gap_ms
        self.max_events = max_events
        self._events: list[Entry] = []
        # Events dropped from the front of the oldest kept session (it outgrew max_events).
        self._dropped = 0
        self._dropped_start_ms: int | None = None

    def __repr__(self) -> str:
        return f"SessionTracker(gap_ms={self.gap_ms}, events={len(self._events)})"

    def update(self, ts_ms: int, event_type: str, context: Mapping[str, Any] | None = None) -> None:
        context = context or {}
        entry = (
            ts_ms,
            event_type == "skip",
            str(context.get("device") or ""),
            str(context.get("context_type") or ""),
        )
        events = self._events
        bisect.insort(events, entry)
        opens_a_session = len(events) > 1 and events[-1] is entry
        if opens_a_session and ts_ms - events[-2][0] > self.gap_ms:
            self._forget_old_sessions()
        if len(events) > self.max_events:
            gone = events.pop(0)
            if events[0][0] - gone[0] > self.gap_ms:  # its whole session is gone
                self._dropped, self._dropped_start_ms = 0, None
            else:
                self._dropped += 1
                if self._dropped_start_ms is None:
                    self._dropped_start_ms = gone[0]

    def _forget_old_sessions(self) -> None:
        """Keep the last two sessions: the running one, and the one a late event may join."""
        starts = self._session_starts()
        if len(starts) > 2:
            del self._events[: starts[-2]]
            self._dropped, self._dropped_start_ms = 0, None

    def _session_starts(self) -> list[int]:
        events = self._events
        return [0] + [
            i for i in range(1, len(events)) if events[i][0] - events[i - 1][0] > self.gap_ms
        ]

    def read(self, ts_ms: int) -> SessionFeatures:
        """The session running at ``ts_ms``: one whose last event is at most a gap before."""
        events = self._events
        if not events or ts_ms - events[-1][0] > self.gap_ms:
            return NO_SESSION
        first = len(events) - 1
        while first > 0 and events[first][0] - events[first - 1][0] <= self.gap_ms:
            first -= 1
        session = events[first:]
        carried = self._dropped if first == 0 else 0
        start = self._dropped_start_ms if carried else session[0][0]
        skips = 0
        for entry in reversed(session):
            if not entry[1]:
                break
            skips += 1
        return SessionFeatures(
            active=True,
            start_ms=start,
            position=len(session) + carried,
            length_ms=session[-1][0] - (start if start is not None else session[0][0]),
            skips_in_a_row=skips,
            device=next((e[2] for e in reversed(session) if e[2]), None),
            context_type=next((e[3] for e in reversed(session) if e[3]), None),
        )

    def to_state(self) -> dict[str, Any]:
        return versioned_state(
            gap_ms=self.gap_ms,
            max_events=self.max_events,
            events=[list(e) for e in self._events],
            dropped=[self._dropped, self._dropped_start_ms],
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        gap_ms, max_events, events, dropped = read_state(
            state, "SessionTracker", "gap_ms", "max_events", "events", "dropped"
        )
        tracker = cls(gap_ms, max_events)
        tracker._events = [(int(t), bool(s), str(d), str(c)) for t, s, d, c in events]
        tracker._dropped, tracker._dropped_start_ms = dropped
        return tracker
