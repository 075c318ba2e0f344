"""When a user's list is refreshed: at once when their state changes meaningfully,
otherwise at most once per interval, with bounded memory.

An event that changes what the user wants now refreshes the list at once
(:func:`immediate_reason`): a ``save``, a streak of ``skip_streak`` skips in a
row, or a new device or context type within the session. Any other event is
debounced: a list per event would flood the output topic for a busy user, so
the throttle lets one through per ``interval_s`` per user (the first at once:
a leading-edge debounce, so no timer holds a list back). It remembers only users refreshed
within the last interval (older entries allow a refresh anyway, so they are
dropped), and never more than ``capacity`` of them.

Memory bound: at most ``capacity`` entries (key and one float each); in steady
state, the users refreshed within the last ``interval_s``.

>>> throttle = RefreshThrottle(interval_s=2.0, capacity=100)
>>> throttle.due(b"u1", now_s=10.0)
True
>>> throttle.refreshed(b"u1", now_s=10.0)
>>> throttle.due(b"u1", now_s=11.0), throttle.due(b"u1", now_s=12.5)
(False, True)
>>> from features.session import NO_SESSION
>>> immediate_reason({"type": "save"}, NO_SESSION, skip_streak=3)
'save'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from features.event_types import SAVE, SKIP
from features.session import SessionFeatures

#: Why a list went out at once rather than debounced (a metric label each).
IMMEDIATE_REASONS: Final = ("save", "skip_streak", "context_change")


def immediate_reason(
    event: Mapping[str, Any], session: SessionFeatures, skip_streak: int
) -> str | None:
    """Why ``event`` refreshes the user's list at once (None: it is debounced);
    ``session`` is the user's running session just before it."""
    kind = event["type"]
    if kind == SAVE:
        return "save"
    if kind == SKIP and session.skips_in_a_row + 1 >= skip_streak:
        return "skip_streak"
    context = event.get("context")
    if session.active and isinstance(context, Mapping):
        device, context_type = context.get("device"), context.get("context_type")
        if _changed(device, session.device) or _changed(context_type, session.context_type):
            return "context_change"
    return None


def _changed(now: Any, before: str | None) -> bool:
    """A context value that replaces another (naming one for the first time is not a change)."""
    return bool(now) and before is not None and now != before


class RefreshThrottle:
    """Per-key time of the last refresh, oldest first; monotonic seconds."""

    __slots__ = ("_last", "capacity", "interval_s")

    def __init__(self, interval_s: float, capacity: int = 100_000) -> None:
        if not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s!r}")
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity!r}")
        self.interval_s = interval_s
        self.capacity = capacity
        self._last: OrderedDict[bytes, float] = OrderedDict()

    def due(self, key: bytes, now_s: float) -> bool:
        """Whether a list for ``key`` may go out at ``now_s``."""
        last = self._last.get(key)
        return last is None or now_s - last >= self.interval_s

    def refreshed(self, key: bytes, now_s: float) -> None:
        """Record that a list for ``key`` went out at ``now_s``."""
        self._last[key] = now_s
        self._last.move_to_end(key)
        self._forget_expired(now_s)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)

    def _forget_expired(self, now_s: float) -> None:
        while self._last:
            oldest_key, oldest_s = next(iter(self._last.items()))
            if now_s - oldest_s < self.interval_s:
                return
            del self._last[oldest_key]

    def __len__(self) -> int:
        return len(self._last)
