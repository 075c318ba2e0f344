"""Listening sessions: runs of events split by an inactivity gap, in event time.

A session ends when the user is silent for longer than ``gap_ms`` (default
30 min): two events belong to one session when every step between them, in
event-time order, is at most ``gap_ms``. What ranking wants to know about the
running session: how far in the user is (``position``, ``length_ms``), whether
they are skipping through (``skips_in_a_row``), and its context (device,
context type).

Timeline (gap 30 min)::

    10:00 play   10:04 skip   10:07 skip   |  11:00 play
    └────────── session 1 ───────────────┘    └ session 2 (53 min silence > gap)

    read at 10:08 -> position 3, length 7 min, skips_in_a_row 2
    read at 11:00 -> position 1, skips_in_a_row 0
    read at 11:31 -> no session running (31 min silence)

Late events. Events may arrive out of order, by at most the caller's lateness
bound (which must be shorter than the gap; callers refuse later events). Such
an event lands in its place in event time. It can even bridge the running
session with the one before it: ``10:07`` and ``10:40`` are two sessions, until
a late ``10:35`` arrives and makes them one. So the events of the running and
the previous session are kept, sorted by time, and every feature is derived from
that list: the result does not depend on the arrival order. Events with equal
times are ordered by their content (a play before a skip), for the same reason.

Memory bound: at most ``max_events`` events of four small fields. Features are
exact while the running and the previous session fit; a session longer than
that forgets its oldest events but keeps counting them, so ``session_start_ms``,
``position`` and ``length_ms`` stay exact, while ``skips_in_a_row``, ``device``
and ``context_type`` look at the kept events only. (The counts are lost in one
case: ``max_events`` events within one lateness span push a whole previous
session out, and a late event then bridges to it.)

>>> s = SessionTracker(gap_ms=30 * 60_000)
>>> for minute, kind in [(0, "play"), (7, "skip"), (4, "skip")]:  # 7 arrives before 4
...     s.update(minute * 60_000, kind, {"device": "phone"})
>>> f = s.read(8 * 60_000)
>>> f.position, f.length_ms // 60_000, f.skips_in_a_row, f.device
(3, 7, 2, 'phone')
>>> s.read(38 * 60_000).active  # 31 minutes after the last event
False
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self

from features.base import pack_unsigned, read_state, state_version, unpack_unsigned, versioned_state

#: Version 2 packs the kept events into columns; version 1 listed them (still read).
STATE_VERSION = 2
_LISTED_VERSION = 1

#: One kept event: (ts_ms, is_skip, device, context_type), "" for an unnamed context.
#: Tuples sort by time, then by content, so equal times get an arrival-free order.
Entry = tuple[int, bool, str, str]


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """The session running at a read time; zeros and ``None`` when none is running.

    * ``active``: an event lies at most ``gap_ms`` before the read time.
    * ``session_start_ms``: time of the session's first event.
    * ``position``: events so far in the session (1 after its first event).
    * ``length_ms``: latest event time minus ``session_start_ms``.
    * ``skips_in_a_row``: trailing consecutive skips, in event-time order.
    * ``device`` / ``context_type``: of the latest event (in event time) that
      names one, ``None`` if no event of the session does.
    """

    active: bool
    session_start_ms: int | None
    position: int
    length_ms: int
    skips_in_a_row: int
    device: str | None
    context_type: str | None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-safe dict."""
        return asdict(self)


#: What ``read`` answers when no session is running.
NO_SESSION = SessionFeatures(False, None, 0, 0, 0, None, None)


class SessionTracker:
    """One user's sessions, split by ``gap_ms`` of silence.

    Memory bound: at most ``max_events`` entries (the running and the previous
    session), plus two ints for events forgotten from the front of the oldest kept
    session; saved, 2 to 4 bytes per entry and each distinct context once.
    ``update`` costs O(log n) plus a list insert; ``read`` O(session length).
    """

    __slots__ = ("_dropped", "_dropped_start_ms", "_events", "gap_ms", "max_events")

    def __init__(self, gap_ms: int = 1_800_000, max_events: int = 500) -> None:
        if not gap_ms > 0:
            raise ValueError(f"gap_ms must be > 0, got {gap_ms!r}")
        if not max_events >= 2:  # room for the previous session's last event and a new one
            raise ValueError(f"max_events must be >= 2, got {max_events!r}")
        self.gap_ms = gap_ms
        self.max_events = max_events
        self._events: list[Entry] = []
        # Events forgotten from the front of the oldest kept session (it outgrew
        # max_events): how many, and the earliest time among them.
        self._dropped = 0
        self._dropped_start_ms: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gap_ms={self.gap_ms!r}, max_events={self.max_events!r})"

    def __len__(self) -> int:
        """The number of events kept (the memory in use)."""
        return len(self._events)

    def update(self, ts_ms: int, event_type: str, context: Mapping[str, Any] | None = None) -> None:
        """Fold in one event; ``context`` may name a ``device`` and a ``context_type``."""
        context = context or {}
        entry = (
            ts_ms,
            event_type == "skip",
            str(context.get("device") or ""),
            str(context.get("context_type") or ""),
        )
        events = self._events
        bisect.insort(events, entry)
        if events[-1] is entry and len(events) > 1 and ts_ms - events[-2][0] > self.gap_ms:
            self._forget_old_sessions()  # an in-order event opened a new session
        if len(events) > self.max_events:
            self._forget_oldest_event()

    def _forget_old_sessions(self) -> None:
        """Keep the last two sessions: the running one, and the one a late event may join.

        A late event lies within the lateness (< gap) of the newest, so it can never
        reach back to a session before the previous one.
        """
        starts = self._session_starts()
        if len(starts) > 2:
            del self._events[: starts[-2]]
            self._dropped, self._dropped_start_ms = 0, None

    def _forget_oldest_event(self) -> None:
        events = self._events
        gone = events.pop(0)
        if events[0][0] - gone[0] > self.gap_ms:  # it was its session's last event
            self._dropped, self._dropped_start_ms = 0, None
        else:
            self._dropped += 1
            start = self._dropped_start_ms
            # min: a late event can be the earliest of a dense session and go at once.
            self._dropped_start_ms = gone[0] if start is None else min(start, gone[0])

    def _session_starts(self) -> list[int]:
        events, gap = self._events, self.gap_ms
        return [0] + [i for i in range(1, len(events)) if events[i][0] - events[i - 1][0] > gap]

    def read(self, ts_ms: int) -> SessionFeatures:
        """The session running at ``ts_ms``: its last event at most ``gap_ms`` before.

        A read before the newest event sees the session as of the newest event.
        """
        events = self._events
        if not events or ts_ms - events[-1][0] > self.gap_ms:
            return NO_SESSION
        first = len(events) - 1
        while first > 0 and events[first][0] - events[first - 1][0] <= self.gap_ms:
            first -= 1
        session = events[first:]
        carried = self._dropped if first == 0 else 0
        start_ms = session[0][0]
        if carried and self._dropped_start_ms is not None:
            start_ms = min(start_ms, self._dropped_start_ms)
        skips = 0
        for entry in reversed(session):
            if not entry[1]:
                break
            skips += 1
        return SessionFeatures(
            active=True,
            session_start_ms=start_ms,
            position=len(session) + carried,
            length_ms=session[-1][0] - start_ms,
            skips_in_a_row=skips,
            device=next((e[2] for e in reversed(session) if e[2]), None),
            context_type=next((e[3] for e in reversed(session) if e[3]), None),
        )

    def to_state(self) -> dict[str, Any]:
        """Configuration, the kept events as packed columns, and ``dropped``:
        ``[count, earliest ts_ms or None]`` of forgotten ones.

        ``start``: the first event's time (None if none is kept); ``steps``: from
        each event's time to the next one's (:func:`features.base.pack_unsigned`);
        ``kinds``: per event ``2 * c + is_skip``, where ``c`` indexes ``contexts``,
        the distinct ``[device, context_type]`` pairs.
        """
        contexts: dict[tuple[str, str], int] = {}
        kinds = [
            2 * contexts.setdefault((device, context_type), len(contexts)) + is_skip
            for _, is_skip, device, context_type in self._events
        ]
        times = [event[0] for event in self._events]
        return versioned_state(
            STATE_VERSION,
            gap_ms=self.gap_ms,
            max_events=self.max_events,
            start=times[0] if times else None,
            steps=pack_unsigned(list(map(operator.sub, times[1:], times))),
            kinds=pack_unsigned(kinds),
            contexts=[list(pair) for pair in contexts],
            dropped=[self._dropped, self._dropped_start_ms],
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state()`` output (or a version 1 state, which listed the
        events); ``ValueError`` on any other version.

        More events than ``max_events`` (a state saved under a larger bound) are
        forgotten oldest first, as ``update`` would have.
        """
        if state_version(state) == _LISTED_VERSION:
            gap_ms, max_events, events, dropped = read_state(
                state, cls.__name__, "gap_ms", "max_events", "events", "dropped"
            )
        else:
            gap_ms, max_events, start, steps, kinds, contexts, dropped = read_state(
                state, cls.__name__, "gap_ms", "max_events", "start", "steps", "kinds",
                "contexts", "dropped", version=STATE_VERSION,
            )  # fmt: skip
            steps = unpack_unsigned(steps)
            times = [] if start is None else list(itertools.accumulate(steps, initial=start))
            codes = unpack_unsigned(kinds)
            if len(times) != len(codes):
                raise ValueError(f"{cls.__name__} state has {len(times)} times, {len(codes)} kinds")
            events = [
                (t, code & 1, *contexts[code >> 1]) for t, code in zip(times, codes, strict=True)
            ]
        tracker = cls(int(gap_ms), int(max_events))
        tracker._events = sorted((int(t), bool(s), str(d), str(c)) for t, s, d, c in events)
        count, start_ms = dropped
        tracker._dropped = int(count)
        tracker._dropped_start_ms = None if start_ms is None else int(start_ms)
        while len(tracker._events) > tracker.max_events:
            tracker._forget_oldest_event()
        return tracker
