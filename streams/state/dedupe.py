"""Bounded memory of the event ids a user has already had processed.

Producers retry, and a worker that crashes replays what it had not committed:
at-least-once delivery means the same ``event_id`` can arrive twice. Each user
keeps the ids of their last ``capacity`` events, each with the offset of the
message it came in. An id seen before is

* a **duplicate** when it arrives in a different message (a producer retry):
  dropped;
* a **replay** when it arrives again in the very same message (same offset):
  the worker crashed after saving its state but perhaps before its output got
  out, so the output is produced again (at-least-once output, nothing lost).

Ids are kept as 64-bit BLAKE2b hashes (a false "duplicate" needs two of one
user's recent ids to collide: odds about ``capacity**2 / 2**65``), packed with
their offsets into base64 strings so the changelog record stays small and
JSON-safe.

Memory bound: ``16 * capacity`` bytes per user (4 KiB at the default 256).

>>> ids = RecentEventIds(capacity=2)
>>> ids.add("a", offset=1), ids.add("a", offset=2), ids.add("a", offset=1)
('new', 'duplicate', 'replay')
>>> ids.add("b", 3), ids.add("c", 4), ids.add("a", 5)
('new', 'new', 'new')
>>> RecentEventIds.from_state(ids.to_state(), capacity=2).add("c", 9)
'duplicate'
"""

from __future__ import annotations

import base64
import struct
from hashlib import blake2b
from typing import Any, Literal

STATE_VERSION = 2

Verdict = Literal["new", "duplicate", "replay"]


class RecentEventIds:
    """The last ``capacity`` distinct event ids of one user, oldest first, with offsets."""

    __slots__ = ("_offsets", "capacity")

    def __init__(self, capacity: int = 256) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = capacity
        self._offsets: dict[bytes, int] = {}  # insertion-ordered: oldest first

    def add(self, event_id: str, offset: int) -> Verdict:
        """Remember ``event_id`` as having come in the message at ``offset``."""
        digest = blake2b(event_id.encode(), digest_size=8).digest()
        seen_at = self._offsets.get(digest)
        if seen_at is not None:
            return "replay" if seen_at == offset else "duplicate"
        self._offsets[digest] = offset
        if len(self._offsets) > self.capacity:
            del self._offsets[next(iter(self._offsets))]
        return "new"

    def __len__(self) -> int:
        return len(self._offsets)

    def to_state(self) -> dict[str, Any]:
        """JSON-safe, versioned state."""
        ids = b"".join(self._offsets)
        offsets = struct.pack(f">{len(self._offsets)}q", *self._offsets.values())
        return {
            "v": STATE_VERSION,
            "ids": base64.b64encode(ids).decode(),
            "offsets": base64.b64encode(offsets).decode(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, capacity: int = 256) -> RecentEventIds:
        """Rebuild from :meth:`to_state`; ``None`` gives an empty memory."""
        memory = cls(capacity)
        if state is None:
            return memory
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unknown RecentEventIds state version {state.get('v')!r}")
        ids = base64.b64decode(state["ids"])
        packed = base64.b64decode(state["offsets"])
        offsets = struct.unpack(f">{len(packed) // 8}q", packed)
        digests = [ids[i : i + 8] for i in range(0, len(ids), 8)]
        memory._offsets = dict(list(zip(digests, offsets, strict=True))[-capacity:])
        return memory
