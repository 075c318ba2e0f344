"""Every track a worker can rank, as arrays by position: what makes scoring NumPy.

Ranking a few hundred candidates for one user must be a few array operations,
not a loop over tracks. A :class:`ServedTracks` holds one row per track the
served snapshot or the catalog knows:

* ``vectors`` and ``bias``: the taste model's full vector and bias (fixed while
  one snapshot serves, so each track's is summed from its parts once);
* ``features``: the track's own engagement features, one column per name of
  :data:`~online_models.example.TRACK_FEATURES` (catalog facts,
  :func:`~online_models.example.track_side`, and statistics as the snapshot
  serves them, :func:`~online_models.example.track_stats_side`; absent is 0);
* ``artist`` and ``genres``: indices into ``artist_index`` and ``genre_index``
  (``-1`` pads a track's genres, and stands for "no catalog entry").

A list of candidates becomes one index array (:meth:`ServedTracks.rows`) and
every per-track quantity a gather (of a 2-D array by ``take(rows, axis=0)``: the
same rows as ``[rows]``, several times faster for a few hundred). A track met
later gets its row at once.

Memory bound: per track, ``k + 1`` floats of taste (and ``k`` of unit vector),
the catalog's content vector if it has one (:mod:`online_models.content`), one
float per track feature, one int for its artist and one per genre of the
track with the most, a flag, a reference to its id, and one int in the by-artist
popularity order (plus one per artist); the catalog bounds the tracks.

>>> from features import TrackInfo
>>> from online_models.taste import TasteModel
>>> catalog = {"t1": TrackInfo("t1", "a1", ("jazz",), 180_000)}
>>> stats = {"t1": {"trending": 2.0, "skip_rate_1d": 0.3, "save_rate_7d": 0.05, "popularity": 9.0}}
>>> served = ServedTracks(TasteModel(k=4), catalog, stats)
>>> rows = served.rows(["t1", "unknown"])
>>> served.vectors[rows].shape, served.artist[rows].tolist()
((2, 4), [0, -1])
>>> round(float(served.column("t_trending_log")[rows[0]]), 3)
0.693
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import TrackInfo
from online_models.content import ContentIndex
from online_models.cosine import nearest_by_cosine, unit_rows
from online_models.example import TRACK_FEATURES, track_side, track_stats_side
from online_models.taste import TasteModel

#: Numbers each :class:`ServedTracks` apart (:attr:`ServedTracks.key`).
_INSTANCES = itertools.count()


class _Rows:
    """A 2-D array grown by rows (its capacity doubles: amortised O(1) a row)."""

    def __init__(self, width: int, dtype: Any, fill: object = 0) -> None:
        self.fill = fill
        self.data = np.full((16, width), fill, dtype=dtype)
        self.n = 0

    def extend(self, rows: NDArray[Any]) -> None:
        """Append many rows at once."""
        needed = self.n + len(rows)
        if needed > len(self.data):
            grown = np.full((max(16, 2 * needed), self.data.shape[1]), self.fill, self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : needed, : rows.shape[1]] = rows
        self.n = needed

    def widen(self, width: int) -> None:
        if width > self.data.shape[1]:
            wider = np.full((len(self.data), width), self.fill, self.data.dtype)
            wider[:, : self.data.shape[1]] = self.data
            self.data = wider

    @property
    def view(self) -> NDArray[Any]:
        return self.data[: self.n]


class ServedTracks:
    """The served tracks' taste vectors, features, artists and genres, row by position."""

    def __init__(
        self,
        taste: TasteModel,
        catalog: Mapping[str, TrackInfo],
        stats: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.taste, self.catalog, self.stats = taste, catalog, stats
        #: unique to this instance in the process (``id()`` may be reused): what a cache
        #: of rows, valid while one instance serves, compares
        self.key = next(_INSTANCES)
        self.position: dict[str, int] = {}
        #: the track of each row
        self.track_ids: list[str] = []
        self.artist_index: dict[str, int] = {}
        self.genre_index: dict[str, int] = {}
        self._ids = _Rows(1, object, None)  # track_ids, to gather many at once
        self._vectors = _Rows(taste.k, np.float64)
        self._bias = _Rows(1, np.float64)
        self._values = _Rows(len(TRACK_FEATURES), np.float64)
        self._artist = _Rows(1, np.intp, -1)
        self._genres = _Rows(1, np.intp, -1)
        self._blocked = _Rows(1, np.bool_, False)
        self._unit: NDArray[np.float64] | None = None
        self._content: ContentIndex | None = None
        #: rows grouped by artist, each group most popular first, and where each
        #: artist's group starts (:meth:`top_rows_of_artist`); None: to be rebuilt
        self._by_artist: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None
        self._add(list(dict.fromkeys((*taste.tracks.index, *catalog))))

    def row(self, track_id: str) -> int:
        """The row of ``track_id``, added if new."""
        at = self.position.get(track_id)
        if at is None:
            self._add([track_id])
            at = self.position[track_id]
        return at

    def rows(self, track_ids: Sequence[str]) -> NDArray[np.intp]:
        """The rows of ``track_ids``, in order (new tracks added)."""
        try:  # the usual case, every track known: the lookups run in C
            return np.fromiter(map(self.position.__getitem__, track_ids), np.intp, len(track_ids))
        except KeyError:
            return np.fromiter(map(self.row, track_ids), np.intp, len(track_ids))

    def ids_of(self, rows: NDArray[np.intp]) -> list[str]:
        """The track of each of ``rows``: one gather, not a Python loop over them."""
        return self._ids.view[rows, 0].tolist()  # type: ignore[no-any-return]

    @property
    def vectors(self) -> NDArray[np.float64]:
        return self._vectors.view

    @property
    def features(self) -> NDArray[np.float64]:
        """Every row's track features, one column per name of
        :data:`~online_models.example.TRACK_FEATURES`, in that order."""
        return self._values.view

    @property
    def bias(self) -> NDArray[np.float64]:
        return self._bias.view[:, 0]

    @property
    def artist(self) -> NDArray[np.intp]:
        return self._artist.view[:, 0]

    @property
    def genres(self) -> NDArray[np.intp]:
        return self._genres.view

    @property
    def unit_vectors(self) -> NDArray[np.float64]:
        """``vectors`` scaled to length 1 (a zero vector stays 0): cosine similarity is
        one matrix product. Computed once, again after rows change."""
        if self._unit is None or len(self._unit) != self._vectors.n:
            self._unit = unit_rows(self.vectors)
        return self._unit

    @property
    def content(self) -> ContentIndex:
        """The catalog's content vectors of every row (:mod:`online_models.content`).
        Computed once, again after rows change."""
        if self._content is None:
            self._content = ContentIndex.of(self.track_ids, self.catalog)
        elif len(self._content.has_content) < len(self.track_ids):  # tracks met since
            new = self.track_ids[len(self._content.has_content) :]
            self._content = self._content.extended(new, self.catalog)
        return self._content

    @property
    def blocked(self) -> NDArray[np.bool_]:
        """The catalog's ``blocked`` flag (blocked or unsafe) of every row."""
        return self._blocked.view[:, 0]

    def warm(self) -> None:
        """Build the arrays computed on first use (unit vectors, content vectors, the
        by-artist order) now, so that no ranking pays for them."""
        self.unit_vectors  # noqa: B018  the properties build them
        self.content  # noqa: B018
        self._artist_order()

    def neighbours(self, row: int, n: int) -> NDArray[np.intp]:
        """The ``n`` rows nearest to ``row`` by positive cosine, best first, ``row``
        itself left out (one product with every row: callers keep the answer,
        :class:`~online_models.retrieval.NeighbourCache`)."""
        return nearest_by_cosine(self.unit_vectors, row, n)

    def rows_of_artist(self, artist_id: str) -> NDArray[np.intp]:
        """The rows of the artist's tracks (none for an artist the catalog does not name)."""
        at = self.artist_index.get(artist_id)
        return np.empty(0, np.intp) if at is None else np.flatnonzero(self.artist == at)

    def top_rows_of_artist(self, artist_id: str, n: int) -> NDArray[np.intp]:
        """The rows of the artist's ``n`` most popular tracks (``t_popularity_log``), most
        popular first, ties by row: :meth:`rows_of_artist` in a stable sort by
        popularity, read from an order sorted once (until rows change), not per call."""
        at = self.artist_index.get(artist_id)
        if at is None:
            return np.empty(0, np.intp)
        order, starts = self._artist_order()
        start, end = starts[at], starts[at + 1]
        return order[start : min(end, start + n)]

    def _artist_order(self) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        if self._by_artist is None:
            artist = self.artist
            # lexsort is stable: within an artist, equal popularity keeps the row order
            order = np.lexsort((-self.column("t_popularity_log"), artist))
            starts = np.searchsorted(artist[order], np.arange(len(self.artist_index) + 1))
            self._by_artist = (order, starts)
        return self._by_artist

    def column(self, name: str) -> NDArray[np.float64]:
        """One track feature of every row (``KeyError`` for a name not in
        :data:`~online_models.example.TRACK_FEATURES`)."""
        return self._values.view[:, TRACK_FEATURES.index(name)]

    def refresh(self, track_id: str) -> None:
        """Recompute the row of ``track_id`` (its catalog entry changed), or add it."""
        at = self.position.get(track_id)
        if at is None:
            self._add([track_id])
            return
        vectors, bias, values, artist, genres, blocked = self._rows_of([track_id])
        self._vectors.data[at], self._bias.data[at] = vectors[0], bias[0]
        self._values.data[at], self._artist.data[at] = values[0], artist[0]
        self._blocked.data[at] = blocked[0]
        self._unit = self._by_artist = self._content = None
        self._genres.widen(genres.shape[1])
        self._genres.data[at] = -1
        self._genres.data[at, : genres.shape[1]] = genres[0]

    def _add(self, track_ids: list[str]) -> None:
        """Rows for new ``track_ids``, all at once: one matrix of the taste vectors (a
        snapshot swap must not stall the stream for small NumPy calls per track)."""
        if not track_ids:
            return
        for track_id in track_ids:
            self.position[track_id] = len(self.position)
        self.track_ids.extend(track_ids)
        self._ids.extend(np.fromiter(track_ids, object, len(track_ids))[:, None])
        vectors, bias, values, artist, genres, blocked = self._rows_of(track_ids)
        self._blocked.extend(blocked)
        self._vectors.extend(vectors)
        self._bias.extend(bias)
        self._values.extend(values)
        self._artist.extend(artist)
        self._genres.widen(genres.shape[1])
        self._genres.extend(genres)
        if (artist >= 0).any():  # a track with no catalog entry joins no artist
            self._by_artist = None

    def _rows_of(self, track_ids: list[str]) -> tuple[NDArray[Any], ...]:
        """The rows of ``track_ids``: taste vectors, biases, feature values, artist
        indices, genre indices padded with ``-1``, and blocked flags (each 2-D)."""
        taste = self.taste
        infos = [self.catalog.get(t) for t in track_ids]
        indices = [self._indices(info) for info in infos]
        genres = np.full((len(indices), max(1, *(len(g) for _, g in indices))), -1, np.intp)
        for i, (_, genre_rows) in enumerate(indices):
            genres[i, : len(genre_rows)] = genre_rows
        return (
            taste.track_matrix(track_ids),
            taste.biases(track_ids)[:, None],
            np.array([self._values_of(t) for t in track_ids], dtype=np.float64),
            np.array([[artist] for artist, _ in indices], dtype=np.intp),
            genres,
            np.array([[bool(info and info.blocked)] for info in infos], dtype=np.bool_),
        )

    def _values_of(self, track_id: str) -> list[float]:
        """The track's features, in :data:`~online_models.example.TRACK_FEATURES` order."""
        info, stats = self.catalog.get(track_id), self.stats.get(track_id)
        features = track_side(info) if info else {}
        if stats is not None:
            features.update(track_stats_side(stats))
        return [features.get(name, 0.0) for name in TRACK_FEATURES]

    def _indices(self, info: TrackInfo | None) -> tuple[int, list[int]]:
        """The indices of the track's artist and genres (``-1`` and none uncatalogued)."""
        if info is None:
            return -1, []
        artist = _index_of(self.artist_index, info.artist_id)
        return artist, [_index_of(self.genre_index, genre) for genre in info.genres]


def row_max(values: NDArray[np.float64], initial: float | None = None) -> NDArray[np.float64]:
    """The largest value of each row, as ``values.max(axis=1, initial=initial)``, for
    rows of a few columns (one per genre of a track): a maximum per column costs a
    fraction of NumPy's reduction along rows this short. ``IndexError`` for rows of
    no column without an ``initial``.

    >>> row_max(np.array([[0.1, 0.4], [0.3, -1.0]])).tolist(), row_max(np.zeros((2, 0)), 0.0)
    ([0.4, 0.3], array([0., 0.]))
    """
    if initial is None:
        best, rest = values[:, 0].copy(), values.T[1:]
    else:
        best, rest = np.full(len(values), initial), values.T
    for column in rest:
        np.maximum(best, column, out=best)
    return best


def _index_of(index: dict[str, int], key: str) -> int:
    at = index.get(key)
    if at is None:
        at = index[key] = len(index)
    return at


__all__ = ["ServedTracks", "row_max"]
