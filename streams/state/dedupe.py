"""Bounded memory of the event ids a user has already had processed.

Producers retry, and a worker that crashes replays what it had not committed:
at-least-once delivery means the same ``event_id`` can arrive twice. Two
different things are remembered, each for its own kind of repeat.

* **Replays** come back in the very message they came in the first time, from
  the user's own partition: an id remembered with that message's offset is a
  *replay* (:meth:`RecentEventIds.add`): not folded again, its output produced
  again, since the crash may have come before it got out. The memory also keeps
  the position (partition, offset) of the last message that changed the state
  (:meth:`RecentEventIds.replayed`): an event whose id is forgotten and that is
  now too late, in a message at or before that position, was applied or refused
  long ago, and is neither again. (A forgotten id within the lateness is judged
  afresh, so a message Kafka delivers out of order is never lost.)
* **Duplicates** (a producer's retry, a re-publish) come in a later message. The
  memory keeps the ids of the user's recent events, each with the offset of its
  message and its event time. An id seen before is a *duplicate* when it comes
  in a different message, and a *replay* when in the same one (:meth:`add`).

How long an id is kept. An event older than the user's newest by more than the
allowed lateness is refused as too late before dedupe, so an id is useful only
while its event lies within the lateness: :meth:`forget_before` drops the
others. At most ``capacity`` ids are kept (the oldest go first): a user sending
more than ``capacity`` events within one lateness window could have a late
duplicate of the oldest counted again. A typical listener sends a few events a
minute, so their memory holds a handful of ids.

Each id is kept as a 64-bit fingerprint: the first 8 bytes of its BLAKE2b
hash, an int. A new event is taken for a duplicate only if its fingerprint
equals one of the ``n`` remembered ones: a chance of about ``n / 2**64`` per new
event (1.4e-17 at ``n = 256``; one false duplicate expected in some 7 * 10**16
events even of users who fill the memory).

Saved state: the fingerprints as one base64 column (8 bytes each); the offsets
and the event times, each as steps from one to the next (:func:`_steps`: the
events of one message share their offset, and a user's events come seconds
apart); and the last position. Steps are plain JSON ints, written by orjson: no
per-id Python packing on the hot path.

Memory bound: ``capacity`` fingerprints, offsets and times, and one position;
saved, about ``16 * capacity`` characters at most (4.1 KB at the default 256),
about 16 per event within the lateness for most users.

>>> ids = RecentEventIds(capacity=2)
>>> ids.add("a", offset=1, ts_ms=10), ids.add("a", 2, 10), ids.add("a", 1, 10)
('new', 'duplicate', 'replay')
>>> ids.add("b", 3, 20), ids.add("c", 4, 30), ids.add("a", 5, 40)
('new', 'new', 'new')
>>> ids.applied(partition=0, offset=5); ids.replayed(0, 4), ids.replayed(1, 4)
(True, False)
>>> restored = RecentEventIds.from_state(ids.to_state(), capacity=2)
>>> restored.add("c", 9, 30), restored.replayed(0, 5)
('duplicate', True)
>>> restored.forget_before(35); len(restored)
1
"""

from __future__ import annotations

import base64
import operator
import struct
import zlib
from collections.abc import Iterable
from hashlib import blake2b
from itertools import accumulate
from typing import Any, Literal

from features.base import unpack_unsigned

STATE_VERSION = 5
#: Version 4 packed the offsets' steps deflated and the times' steps as varints: a
#: zlib stream and a Python loop per id on every message. It restores as it was.
_PACKED_VERSION = 4
#: Version 3 had no event times and no last position; version 2 also kept every
#: offset as a full 8-byte int. Both restore: their ids with the newest time
#: known (forgotten once the lateness has passed it), and no position.
_NO_TIMES_VERSION = 3
_OFFSETS_UNPACKED_VERSION = 2

Verdict = Literal["new", "duplicate", "replay"]


def fingerprint(event_id: str) -> int:
    """The 64-bit fingerprint an event id is remembered by.

    >>> fingerprint("e1") == fingerprint("e1") != fingerprint("e2")
    True
    """
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big")


class RecentEventIds:
    """The recent distinct event ids of one user, oldest first, with their offsets and
    event times; and the position of the last message applied.

    Memory bound: ``capacity`` fingerprints, offsets and times (ints); saved, see
    the module docstring.
    """

    __slots__ = ("_seen", "capacity", "last_position")

    def __init__(self, capacity: int = 256) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = capacity
        # fingerprint -> (offset, event time); insertion-ordered: oldest first.
        self._seen: dict[int, tuple[int, int]] = {}
        #: ``(partition, offset)`` of the last message applied to the state, if any.
        self.last_position: tuple[int, int] | None = None

    def add(self, event_id: str, offset: int, ts_ms: int) -> Verdict:
        """Remember ``event_id`` (of event time ``ts_ms``) as having come in the message
        at ``offset``."""
        key = fingerprint(event_id)
        seen = self._seen.get(key)
        if seen is not None:
            return "replay" if seen[0] == offset else "duplicate"
        self._seen[key] = (offset, ts_ms)
        if len(self._seen) > self.capacity:
            del self._seen[next(iter(self._seen))]
        return "new"

    def recall(self, event_id: str, offset: int) -> Verdict | None:
        """What :meth:`add` said of ``event_id`` in the message at ``offset``: "replay"
        if it was new there, "duplicate" if it came earlier; None if forgotten."""
        seen = self._seen.get(fingerprint(event_id))
        if seen is None:
            return None
        return "replay" if seen[0] == offset else "duplicate"

    def applied(self, partition: int, offset: int) -> None:
        """Record that the message at ``partition``/``offset`` changed the state."""
        self.last_position = (partition, offset)

    def replayed(self, partition: int, offset: int) -> bool:
        """Whether the message at ``partition``/``offset`` was applied already: it lies
        at or before the last one applied, in the same partition."""
        last = self.last_position
        return last is not None and last[0] == partition and offset <= last[1]

    def forget_before(self, ts_ms: int) -> None:
        """Drop the ids of events older than ``ts_ms`` (past the allowed lateness)."""
        if any(ts < ts_ms for _, ts in self._seen.values()):
            self._seen = {key: seen for key, seen in self._seen.items() if seen[1] >= ts_ms}

    def __len__(self) -> int:
        return len(self._seen)

    def to_state(self) -> dict[str, Any]:
        """JSON-safe, versioned state: ``ids`` (base64, 8 bytes each, oldest first),
        their ``offsets`` and event ``times`` (each the first, then the steps from
        one to the next: :func:`_steps`), and the ``last`` position (or null)."""
        seen = self._seen.values()
        return {
            "v": STATE_VERSION,
            "ids": _pack_fingerprints(self._seen),
            "offsets": _steps([offset for offset, _ in seen]),
            "times": _steps([ts for _, ts in seen]),
            "last": None if self.last_position is None else list(self.last_position),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any] | None, capacity: int = 256, untimed_ts_ms: int = 2**62
    ) -> RecentEventIds:
        """Rebuild from :meth:`to_state` (or a version 2 or 3 state); ``None`` gives an
        empty memory; ``ValueError`` names any other version. The newest ``capacity``
        are kept. The ids of versions without event times take ``untimed_ts_ms``
        (the user's newest event time: no id is forgotten before its time)."""
        memory = cls(capacity)
        if state is None:
            return memory
        version = state.get("v")
        if version == STATE_VERSION:
            offsets = _offsets(state["offsets"])
        elif version in (_PACKED_VERSION, _NO_TIMES_VERSION):
            offsets = _unpack_offsets(state["offsets"])
        elif version == _OFFSETS_UNPACKED_VERSION:
            packed = base64.b64decode(state["offsets"])
            offsets = list(struct.unpack(f">{len(packed) // 8}q", packed))
        else:
            raise ValueError(
                f"RecentEventIds state has version {version!r}; this code reads versions "
                f"{_OFFSETS_UNPACKED_VERSION} to {STATE_VERSION}"
            )
        fingerprints = _unpack_fingerprints(state["ids"])
        times = _times(state, len(fingerprints), untimed_ts_ms, packed=version != STATE_VERSION)
        if not len(fingerprints) == len(offsets) == len(times):
            raise ValueError(
                f"RecentEventIds state has {len(fingerprints)} ids for {len(offsets)} offsets "
                f"and {len(times)} times"
            )
        seen = zip(fingerprints, zip(offsets, times, strict=True), strict=True)
        memory._seen = dict(list(seen)[-capacity:])
        last = state.get("last")
        memory.last_position = None if last is None else (int(last[0]), int(last[1]))
        return memory


def _times(state: dict[str, Any], n: int, untimed_ts_ms: int, packed: bool) -> list[int]:
    if "times" not in state:
        return [untimed_ts_ms] * n
    if packed:  # version 4: the newest, then varint steps back from it
        newest, back = state["times"]
        return [int(newest) - step for step in unpack_unsigned(back)]
    return _from_steps(state["times"], "times")


def _offsets(stored: Any) -> list[int]:
    """The offsets of a version 5 state (:func:`_steps`)."""
    return _from_steps(stored, "offsets")


def _steps(values: list[int]) -> list[Any]:
    """``[first, steps]``: the first value, then the step from each to the next, as
    plain JSON ints. Consecutive ids are close (the events of one message share
    their offset; a user's events come seconds apart), so most steps take a
    character or few, and orjson writes them with no Python loop per id; the
    state's own deflate (:mod:`streams.state.codec`) packs the rest.

    >>> _steps([7, 7, 9, 8]), _from_steps(_steps([7, 7, 9, 8]), "offsets")
    ([7, [0, 2, -1]], [7, 7, 9, 8])
    >>> _steps([])
    [None, []]
    """
    return [values[0] if values else None, list(map(operator.sub, values[1:], values))]


def _from_steps(stored: Any, what: str) -> list[int]:
    first, steps = stored
    steps = _ints(steps, what)
    return [] if first is None else list(accumulate(steps, initial=int(first)))


def _ints(values: Any, what: str) -> list[int]:
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        raise ValueError(f"RecentEventIds {what} are not a list of ints")
    return values


def _pack_fingerprints(fingerprints: Iterable[int]) -> str:
    fingerprints = list(fingerprints)
    return base64.b64encode(struct.pack(f">{len(fingerprints)}Q", *fingerprints)).decode()


def _unpack_fingerprints(text: str) -> list[int]:
    packed = base64.b64decode(text)
    return list(struct.unpack(f">{len(packed) // 8}Q", packed))


def _unpack_offsets(packed_offsets: list[Any]) -> list[int]:
    """The offsets of a version 3 or 4 state: ``[first, steps]``, the steps as ints of
    the narrowest of 1, 2, 4 or 8 bytes (its ``struct`` code first), deflated."""
    first, text = packed_offsets
    code, deflated = text[:1], text[1:]
    if code not in ("q", *(code for code, _ in _UNSIGNED)):
        raise ValueError(f"RecentEventIds offsets of unknown width {code!r}")
    try:
        packed = zlib.decompress(base64.b64decode(deflated), wbits=_RAW_DEFLATE)
    except zlib.error as exc:
        raise ValueError(f"RecentEventIds offsets are not deflated: {exc}") from exc
    steps = struct.unpack(f"<{len(packed) // struct.calcsize(code)}{code}", packed)
    return [] if first is None else list(accumulate(steps, initial=first))


#: ``struct`` codes of unsigned ints of 1, 2 and 4 bytes, each with its first
#: value out of range.
_UNSIGNED = (("B", 2**8), ("H", 2**16), ("I", 2**32))
_RAW_DEFLATE = -15  # no zlib header or checksum: the state carries its own checks
