"""List quality: what one list holds, and what the lists of the last while exposed.

Both read items through :class:`ShownItem` (track, artist, genres, discovery),
which :class:`ListItem` and any item type with those attributes satisfy.

Per list (:func:`list_stats`, O(list size), cheap enough for every list):

- **size** — items in the list;
- **distinct artists / genres** — intra-list diversity: how many different
  artists (an item without one counts as none) and genres the items cover;
- **discovery share** — the share of items whose artist is new to the user
  (0.0 for an empty list).

Over a rolling window of the lists shown (:class:`ExposureWindow`):

- **catalogue coverage** — distinct tracks shown in some list in the window,
  divided by the catalogue's size, capped at 1.0 (a track no longer in the
  catalogue still counts as exposed);
- **artist exposure Gini** — :func:`gini` of the per-artist exposure counts in
  the window: 0 when every exposed artist was shown equally often, towards 1
  when a few artists take nearly all the slots. Only artists shown at least
  once take part, so it measures concentration among the exposed; coverage
  says how much of the catalogue was never shown at all.

The window is made of ``buckets`` time slices of ``window_s / buckets`` seconds
on a clock the caller passes in (``now_s``, monotonic); a slice is dropped
whole once it has aged out, so an exposure counts for at least
``window_s - window_s / buckets`` and at most ``window_s`` seconds.

Memory bound: each slice counts at most ``max_keys`` tracks and ``max_keys``
artists, so the window holds at most ``2 * buckets * max_keys`` keys (the id
strings themselves are the caller's, shared). With the defaults (12 slices,
100,000 keys) that is 2.4 million counts: about 40 bytes each in CPython
(measured), 65 once counts pass 256, so 100-160 MB at worst; a slice of a few
thousand lists holds far fewer. Past the cap a slice still counts the keys it
has, ignores new ones, and :attr:`ExposureWindow.dropped` counts the ignored
ones: coverage and Gini then under-count, so raise ``max_keys`` or shorten the
slices.

Costs: :meth:`ExposureWindow.observe` is O(list size); ``coverage``,
``distinct_tracks`` and ``artist_gini`` are O(keys in the window), so a worker
calls them periodically (every few seconds, for the gauges), not per list.

>>> items = [
...     ListItem("t1", "a1", ("rock",), discovery=False),
...     ListItem("t2", "a1", ("rock", "indie"), discovery=False),
...     ListItem("t3", "a2", (), discovery=True),
...     ListItem("t4", None, ("jazz",), discovery=False),
... ]
>>> list_stats(items)
ListStats(size=4, distinct_artists=2, distinct_genres=3, discovery_share=0.25)
>>> window = ExposureWindow(window_s=600.0, buckets=10)
>>> window.observe(items, now_s=0.0)
>>> window.coverage(catalogue_size=8, now_s=30.0)
0.5
>>> round(window.artist_gini(now_s=30.0), 3)  # a1 shown twice, a2 once
0.167
>>> window.coverage(catalogue_size=8, now_s=600.0)  # ten minutes on: aged out
0.0
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

#: The default window: an hour, in twelve five-minute slices.
DEFAULT_WINDOW_S = 3600.0


class ShownItem(Protocol):
    """What list quality reads of an item shown in a list.

    :class:`ListItem` has it, and so does any item type with these four
    attributes: the list builder can pass its own items, no copy needed.
    """

    @property
    def track_id(self) -> str: ...
    @property
    def artist_id(self) -> str | None: ...
    @property
    def genres(self) -> Iterable[str]: ...
    @property
    def discovery(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ListItem:
    """One item of a published list, as list quality sees it."""

    track_id: str
    artist_id: str | None
    genres: tuple[str, ...]
    discovery: bool  # the item's artist is new to the user


@dataclass(frozen=True, slots=True)
class ListStats:
    """Size and intra-list diversity of one list."""

    size: int
    distinct_artists: int
    distinct_genres: int
    discovery_share: float


def list_stats(items: Sequence[ShownItem]) -> ListStats:
    """Size, distinct artists and genres, and discovery share of one list."""
    size = len(items)
    artists = {item.artist_id for item in items if item.artist_id is not None}
    genres = {genre for item in items for genre in item.genres}
    discoveries = sum(1 for item in items if item.discovery)
    return ListStats(
        size=size,
        distinct_artists=len(artists),
        distinct_genres=len(genres),
        discovery_share=discoveries / size if size else 0.0,
    )


def gini(values: Sequence[float] | NDArray[Any]) -> float:
    """Gini coefficient of non-negative values: 0 even, towards 1 concentrated.

    ``sum((2i - n - 1) * x_i) / (n * sum(x))`` over the values sorted
    ascending (``i`` from 1); ``n`` values reach at most ``(n - 1) / n``.
    0.0 for no values or all zeros.

    >>> gini([5, 5, 5, 5])
    0.0
    >>> gini([0, 0, 0, 8])
    0.75
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    if n == 0:
        return 0.0
    if not np.isfinite(x).all() or x[0] < 0.0:
        raise ValueError("gini needs finite, non-negative values")
    total = float(x.sum())
    if total == 0.0:
        return 0.0
    ranks = np.arange(1 - n, n, 2, dtype=np.float64)  # 2i - n - 1 for i = 1..n
    return max(float(ranks @ x) / (n * total), 0.0)  # rounding can dip under 0


@dataclass(slots=True)
class _Slice:
    """The exposure counts of one time slice of the window."""

    number: int  # floor(now_s / slice_s)
    tracks: dict[str, int] = field(default_factory=dict)
    artists: dict[str, int] = field(default_factory=dict)


class ExposureWindow:
    """Track and artist exposure over the last ``window_s`` seconds, in time slices.

    ``observe`` each published list with the clock's time; read ``coverage``,
    ``artist_gini`` and ``distinct_tracks`` periodically. Times are seconds of
    a monotonic clock; one that steps back counts into the newest slice.
    """

    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, buckets: int = 12, max_keys: int = 100_000
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a finite number > 0, got {window_s!r}")
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ValueError(f"buckets must be a whole number >= 1, got {buckets!r}")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be a whole number >= 1, got {max_keys!r}")
        self.window_s = float(window_s)
        self.buckets = buckets
        self.max_keys = max_keys
        self.slice_s = self.window_s / buckets
        #: New keys a full slice ignored (track or artist), since the start.
        self.dropped = 0
        self._slices: deque[_Slice] = deque()  # oldest first, at most ``buckets``

    def __repr__(self) -> str:
        return (
            f"ExposureWindow(window_s={self.window_s!r}, buckets={self.buckets!r}, "
            f"max_keys={self.max_keys!r})"
        )

    def observe(self, items: Sequence[ShownItem], now_s: float) -> None:
        """Count one published list's items as exposed at ``now_s``. O(len(items))."""
        current = self._expire(now_s)
        if not self._slices or self._slices[-1].number < current:
            self._slices.append(_Slice(current))
        newest = self._slices[-1]
        for item in items:
            self._count(newest.tracks, item.track_id)
            if item.artist_id is not None:
                self._count(newest.artists, item.artist_id)

    def distinct_tracks(self, now_s: float) -> int:
        """Tracks shown in some list within the window. O(keys in the window)."""
        slices = self._window(now_s)
        if len(slices) == 1:
            return len(slices[0].tracks)
        return len(set().union(*(s.tracks for s in slices)))

    def coverage(self, catalogue_size: int, now_s: float) -> float:
        """Distinct tracks shown in the window / ``catalogue_size``, at most 1.0.

        0.0 when the catalogue is empty (not loaded yet). O(keys in the window).
        """
        if catalogue_size < 0:
            raise ValueError(f"catalogue_size must be >= 0, got {catalogue_size!r}")
        if catalogue_size == 0:
            return 0.0
        return min(self.distinct_tracks(now_s) / catalogue_size, 1.0)

    def artist_gini(self, now_s: float) -> float:
        """:func:`gini` of the per-artist exposure counts in the window. O(keys)."""
        slices = self._window(now_s)
        if len(slices) == 1:
            counts: dict[str, int] = slices[0].artists
        else:
            counts = Counter()
            for s in slices:
                counts.update(s.artists)
        return gini(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))

    @property
    def stored_keys(self) -> int:
        """Track and artist keys held across the slices: the memory bound's unit."""
        return sum(len(s.tracks) + len(s.artists) for s in self._slices)

    def _count(self, counts: dict[str, int], key: str) -> None:
        seen = counts.get(key)
        if seen is not None:
            counts[key] = seen + 1
        elif len(counts) < self.max_keys:
            counts[key] = 1
        else:
            self.dropped += 1

    def _expire(self, now_s: float) -> int:
        """Drop the slices that aged out at ``now_s``; the current slice's number."""
        current = math.floor(now_s / self.slice_s)
        if self._slices:
            current = max(current, self._slices[-1].number)  # a clock that stepped back
        while self._slices and self._slices[0].number <= current - self.buckets:
            self._slices.popleft()
        return current

    def _window(self, now_s: float) -> deque[_Slice]:
        self._expire(now_s)
        return self._slices
