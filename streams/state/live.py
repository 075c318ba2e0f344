"""Decoded per-user states kept in memory between a user's messages.

Rebuilding a user's state from the table's stored dict on every message cost
more than everything else the message did, so the worker keeps the decoded
:class:`~streams.state.keyed_state.UserState` objects of the users it has
recently seen, for the partitions it owns.

The table stays the truth, and memory only ever equals it:

* every processed message still writes the user's whole encoded state to the
  table (one changelog record per message; no coalescing), so a restarted or
  newly assigned worker restores exactly what memory held;
* a message whose planning fails, or which leaves the stored state as it was
  (everything refused), drops its user from memory: the state object may have
  been changed half-way, and the next message rebuilds it from the table;
* a rebalance clears everything: the partitions may move, and recovery then
  rewrites the table from the changelog.

Memory bound: at most ``capacity`` states (least recently used dropped first);
with the compact state that is about 2 KB each when encoded, a few times that
as Python objects.

>>> live = LiveStates(capacity=2)
>>> live.put(b"u1", "state-1"); live.put(b"u2", "state-2"); live.put(b"u3", "state-3")
>>> live.get(b"u1") is None, live.get(b"u3"), len(live)
(True, 'state-3', 2)
>>> live.clear(); len(live)
0
"""

from __future__ import annotations

from typing import Generic, TypeVar

State = TypeVar("State")


class LiveStates(Generic[State]):
    """A bounded, least-recently-used map of key -> decoded state."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._states: dict[bytes, State] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> State | None:
        """The state held for ``key``, now the most recently used; None on a miss."""
        state = self._states.pop(key, None)
        if state is None:
            self.misses += 1
            return None
        self.hits += 1
        self._states[key] = state
        return state

    def put(self, key: bytes, state: State) -> None:
        """Hold ``state`` for ``key``; drops the least recently used past capacity."""
        self._states.pop(key, None)
        self._states[key] = state
        if len(self._states) > self.capacity:
            del self._states[next(iter(self._states))]

    def drop(self, key: bytes) -> None:
        """Forget ``key``: its next message rebuilds the state from the table."""
        self._states.pop(key, None)

    def clear(self) -> None:
        """Forget everything (a rebalance: partitions and table contents may change)."""
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


__all__ = ["LiveStates"]
