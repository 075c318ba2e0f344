"""Exponentially decayed sums, counts and rates in event time.

A value ``v`` seen at ``t_i`` weighs ``v * 2**(-(t - t_i) / half_life)`` when read
at ``t``: half after one half-life, about 1% after seven. Typical half-lives are
an hour (this session's mood), a day, or a week (taste).

Exactness. An update older than the newest one is folded in with its own age, so
for every read time ``t`` at or after the newest update the value equals the
brute-force sum over all updates, in whatever order they arrived. A read *before*
the newest update is answered at the newest update's time: what has been folded
in cannot be taken out again, and extrapolating backwards would weigh later
events by more than their value.

How, in O(1). Stored values live in the frame of a reference time ``origin``:
``v`` seen at ``t_i`` is stored as ``v * e**(rate * (t_i - origin))``. An update,
in order or late, is then one ``exp`` and one addition; a read is one ``exp`` and
one multiplication, and every key of an affinity map shares that one factor. The
origin jumps forward to the newest update (one rescale of the stored values)
before those numbers could overflow, i.e. every ~430 half-lives of event time.

Memory: O(1) per stat: a handful of floats and ints, whatever the event rate.

>>> skips = DecayedRate(half_life_s=86_400, prior_rate=0.25, prior_weight=4.0)
>>> round(skips.read(ts_ms=0), 3)  # a new user reads the prior, not 0 or 1
0.25
>>> for ts_ms, skipped in [(0, 1.0), (1_000, 1.0), (2_000, 0.0)]:
...     _ = skips.update(ts_ms, skipped)
>>> round(skips.read(ts_ms=2_000), 3)  # (2 + 0.25 * 4) / (3 + 4)
0.429
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

from features.base import read_state, versioned_state

_LN2 = math.log(2.0)
# Stored values stay below e**300 times their decayed total: far from overflow (e**709).
_MAX_EXPONENT = 300.0
# "No update yet": earlier than any real event time, still a JSON-safe int.
_NEVER_MS = -(2**62)


class Decayed:
    """Base of the decayed stats: half-life maths in a moving reference frame.

    Subclasses keep their running values in the frame, multiply a value seen at
    ``ts_ms`` by ``_grow(ts_ms)`` before adding it, multiply stored values by
    ``_shrink(ts_ms)`` to read them, and rescale them in ``_rescale``.
    """

    __slots__ = ("_last_ms", "_origin_ms", "_rate", "_span_ms", "half_life_s")

    def __init__(self, half_life_s: float) -> None:
        rate = _LN2 / (half_life_s * 1000.0) if half_life_s else 0.0
        if not 0.0 < rate < math.inf:  # rejects <= 0, NaN, inf and underflowing extremes
            raise ValueError(f"half_life_s must be a finite number > 0, got {half_life_s!r}")
        self.half_life_s = half_life_s
        self._rate = rate
        self._span_ms = _MAX_EXPONENT / rate
        self._origin_ms: int = _NEVER_MS
        self._last_ms: int = _NEVER_MS

    def _grow(self, ts_ms: int) -> float:
        """The factor that carries a value seen at ``ts_ms`` into the stored frame."""
        if ts_ms > self._last_ms:
            self._last_ms = ts_ms
            if ts_ms - self._origin_ms > self._span_ms:
                self._rescale(math.exp((self._origin_ms - ts_ms) * self._rate))
                self._origin_ms = ts_ms
                return 1.0
        # A late ts can only lie below the origin by a lot, where exp underflows to 0.0
        # (the value weighs under 2**-1000 by then), never overflows.
        return math.exp((ts_ms - self._origin_ms) * self._rate)

    def _shrink(self, ts_ms: int) -> float:
        """The factor that carries stored values to ``ts_ms``, clamped to the newest update."""
        t = ts_ms if ts_ms > self._last_ms else self._last_ms
        return math.exp((self._origin_ms - t) * self._rate)

    def _rescale(self, factor: float) -> None:
        raise NotImplementedError

    def rebase(self, ts_ms: int) -> None:
        """Express the stored values at ``ts_ms`` and take it as the newest update time.

        Reads at or after ``ts_ms`` change only by float rounding. A state saved at
        ``ts_ms`` restores into exactly this frame, so after a rebase the stat and
        one restored from its saved values go on alike, bit for bit. ``ValueError``
        if ``ts_ms`` is before the newest update (that would drop information).

        >>> plays = DecayedSum(half_life_s=60)
        >>> _ = plays.update(ts_ms=0, value=8.0)
        >>> plays.rebase(ts_ms=60_000)
        >>> plays.read(ts_ms=60_000), plays.to_state()["value"]
        (4.0, 4.0)
        """
        if ts_ms < self._last_ms:
            raise ValueError(f"cannot rebase to {ts_ms}, before the newest update {self._last_ms}")
        if ts_ms != self._origin_ms:
            self._rescale(math.exp((self._origin_ms - ts_ms) * self._rate))
        self._origin_ms = self._last_ms = ts_ms

    def _frame_state(self, **config: Any) -> tuple[dict[str, Any], float]:
        """The versioned state with the newest update time, and the factor to express
        stored values at that time (so the saved numbers are plain decayed values)."""
        state = versioned_state(half_life_s=self.half_life_s, **config)
        if self._last_ms != _NEVER_MS:
            state["ts_ms"] = self._last_ms
        return state, math.exp((self._origin_ms - self._last_ms) * self._rate)

    def _restore_frame(self, state: Mapping[str, Any]) -> None:
        ts_ms = state.get("ts_ms")
        if ts_ms is not None:
            self._origin_ms = self._last_ms = int(ts_ms)


class DecayedSum(Decayed):
    """Sum of values, each decayed by its age in event time.

    Exact for late and out-of-order updates; reads before the newest update are
    answered at the newest update's time (see the module docstring).

    >>> played = DecayedSum(half_life_s=60)
    >>> played.update(ts_ms=0, value=8.0)
    True
    >>> played.read(ts_ms=60_000)  # one half-life later
    4.0
    >>> played.update(ts_ms=-60_000, value=8.0)  # a minute late: folded in at its own age
    True
    >>> played.read(ts_ms=120_000)  # 8 * 2**-2 + 8 * 2**-3
    3.0
    """

    __slots__ = ("_stored",)

    def __init__(self, half_life_s: float = 3600.0) -> None:
        super().__init__(half_life_s)
        self._stored = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(half_life_s={self.half_life_s!r})"

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Add ``value`` seen at ``ts_ms``; always accepted."""
        grown = value * self._grow(ts_ms)  # before reading _stored: _grow may rescale it
        self._stored += grown
        return True

    def read(self, ts_ms: int) -> float:
        """The decayed sum at ``ts_ms`` (at the newest update if ``ts_ms`` is earlier)."""
        return self._stored * self._shrink(ts_ms)

    def _rescale(self, factor: float) -> None:
        self._stored *= factor

    def to_state(self) -> dict[str, Any]:
        """``{"v", "half_life_s"}`` plus ``"ts_ms"`` and ``"value"`` once updated."""
        state, to_last = self._frame_state()
        if "ts_ms" in state:
            state["value"] = self._stored * to_last
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state()`` output; ``ValueError`` on an unknown version."""
        (half_life_s,) = read_state(state, cls.__name__, "half_life_s")
        stat = cls(half_life_s)
        stat._restore_frame(state)
        stat._stored = float(state.get("value", 0.0))
        return stat


class DecayedCounter(DecayedSum):
    """Decayed number of events: a ``DecayedSum`` of non-negative weights (default 1).

    >>> plays = DecayedCounter(half_life_s=3600)
    >>> for ts_ms in (0, 0, 3_600_000):
    ...     _ = plays.update(ts_ms)
    >>> plays.read(ts_ms=3_600_000)  # two plays an hour ago count as one
    2.0
    """

    __slots__ = ()

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Count one event of weight ``value`` (>= 0) at ``ts_ms``; always accepted."""
        if value < 0:
            raise ValueError(f"a count weight must be >= 0, got {value!r}")
        grown = value * self._grow(ts_ms)
        self._stored += grown
        return True


class DecayedRate(Decayed):
    """Smoothed, decayed rate of hits among trials: skip rate, save rate.

    ``update(ts_ms, value)`` records one trial whose outcome ``value`` lies in
    [0, 1] (1.0 = skipped / saved). The read is

        (hits + prior_rate * prior_weight) / (trials + prior_weight)

    with ``hits`` and ``trials`` decayed alike, so a new user reads ``prior_rate``
    rather than 0 or 1, and recent behaviour outweighs old. ``prior_weight`` is
    the number of pseudo-trials; the defaults (0.5, 2.0) are Laplace's rule of
    succession. Set ``prior_rate`` to the population's rate.

    >>> saves = DecayedRate(half_life_s=3600)
    >>> saves.update(ts_ms=0, value=1.0)
    True
    >>> saves.read(ts_ms=0)  # (1 + 1) / (1 + 2)
    0.6666666666666666
    >>> saves.trials(ts_ms=3_600_000)
    0.5
    """

    __slots__ = ("_hits", "_trials", "prior_rate", "prior_weight")

    def __init__(
        self, half_life_s: float = 3600.0, prior_rate: float = 0.5, prior_weight: float = 2.0
    ) -> None:
        super().__init__(half_life_s)
        if not 0.0 <= prior_rate <= 1.0:
            raise ValueError(f"prior_rate must lie in [0, 1], got {prior_rate!r}")
        if not 0.0 < prior_weight < math.inf:  # > 0 keeps an empty read defined
            raise ValueError(f"prior_weight must be a finite number > 0, got {prior_weight!r}")
        self.prior_rate = prior_rate
        self.prior_weight = prior_weight
        self._hits = 0.0
        self._trials = 0.0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(half_life_s={self.half_life_s!r}, "
            f"prior_rate={self.prior_rate!r}, prior_weight={self.prior_weight!r})"
        )

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Record one trial at ``ts_ms`` with outcome ``value`` in [0, 1]; always accepted."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a rate outcome must lie in [0, 1], got {value!r}")
        grown = self._grow(ts_ms)
        self._hits += value * grown
        self._trials += grown
        return True

    def read(self, ts_ms: int) -> float:
        """The smoothed rate at ``ts_ms`` (at the newest update if ``ts_ms`` is earlier)."""
        shrink = self._shrink(ts_ms)
        weight = self.prior_weight
        return (self._hits * shrink + self.prior_rate * weight) / (self._trials * shrink + weight)

    def hits(self, ts_ms: int) -> float:
        """Decayed sum of outcomes at ``ts_ms``, without the prior."""
        return self._hits * self._shrink(ts_ms)

    def trials(self, ts_ms: int) -> float:
        """Decayed number of trials at ``ts_ms``, without the prior."""
        return self._trials * self._shrink(ts_ms)

    def _rescale(self, factor: float) -> None:
        self._hits *= factor
        self._trials *= factor

    def to_state(self) -> dict[str, Any]:
        """Configuration, plus ``"ts_ms"``, ``"hits"`` and ``"trials"`` once updated."""
        state, to_last = self._frame_state(
            prior_rate=self.prior_rate, prior_weight=self.prior_weight
        )
        if "ts_ms" in state:
            state["hits"] = self._hits * to_last
            state["trials"] = self._trials * to_last
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state()`` output; ``ValueError`` on an unknown version."""
        config = read_state(state, cls.__name__, "half_life_s", "prior_rate", "prior_weight")
        stat = cls(*config)
        stat._restore_frame(state)
        stat._hits = float(state.get("hits", 0.0))
        stat._trials = float(state.get("trials", 0.0))
        return stat
