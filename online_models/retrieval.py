"""Candidate retrieval: a few hundred tracks worth ranking for one user, each with its source.

Ranking every track for every list would cost too much and say little; each
*source* proposes the tracks it has a reason for, and ranking
(:mod:`online_models.ranking`) then scores them all in one pass. The sources,
in their order of precedence (a track several sources propose keeps the first,
the most personal reason):

* ``rotation``: the user's own tracks heard or liked before the replay rest
  (:func:`~online_models.rotation.rested_tracks`, the caller's): favourites
  back in rotation, the most recently heard first.
* ``similar``: the nearest tracks, by cosine of the taste model's vectors, to
  the user's most recently liked tracks (saved, or played through). The
  vectors are learned from who listens to what, so nearness is co-listening.
* ``sounds_like``: where the catalog has content vectors (acoustic features,
  :mod:`online_models.content`), the tracks that sound most like the user's most
  recently liked tracks. They need no listener to learn them, so they also serve
  a user or a track the models do not know yet.
* ``liked_artist``: the most popular tracks of the artists the user plays most
  (decayed affinity, :mod:`features.user`).
* ``editorial``: the tracks of the editorial sets that fit the moment
  (:mod:`features.editorial`): the editors' say, with a boost; at most
  ``editorial`` of them, a run starting where the triggering event's id says.
* ``taste``: the best tracks of the whole served set by the user's taste
  (one matrix-vector product over every served track).
* ``trending``: the most engaging tracks now, from every partition
  (:class:`~online_models.trending.TrendingBoard`).

A user the models do not know yet (``user_vector`` None) gets no ``similar``
and no ``taste`` candidates: cold start is trending, editorial, the artists
they just played, tracks that sound like the ones they liked and their own
rested tracks. The exploration slot's arms
(:mod:`online_models.exploration_slot`) draw from these candidates at
re-ranking.

Cost: O(served tracks x k) for ``taste`` and ``similar`` (one product each),
O(served tracks x content width) per ``sounds_like`` seed,
O(served tracks) per liked artist, O(candidates) for the rest (``rotation``
reads at most the user's 32 remembered tracks). Memory: the
candidates only (a few hundred rows); nothing is kept between lists.

>>> from features import TrackInfo, UserFeatures
>>> from online_models.served_tracks import ServedTracks
>>> from online_models.taste import TasteModel
>>> catalog = {t: TrackInfo(t, a, ("pop",), 200_000) for t, a in
...            (("t1", "a1"), ("t2", "a1"), ("t3", "a2"))}
>>> served = ServedTracks(TasteModel(k=4), catalog, {})
>>> user = UserFeatures()
>>> _ = user.update({"type": "save", "track_id": "t1", "ts": 0}, catalog["t1"])
>>> found = retrieve(user, None, served, 0, trending=[("t3", 5.0)], editorial=[])
>>> list(zip(found.track_ids, found.sources))
[('t1', 'liked_artist'), ('t2', 'liked_artist'), ('t3', 'trending')]
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from features import UserFeatures
from features.editorial import EditorialSet
from online_models.cosine import top_indices
from online_models.exploration_slot import TASTE, TRENDING
from online_models.served_tracks import ServedTracks

ROTATION: Final = "rotation"
SIMILAR: Final = "similar"
SOUNDS_LIKE: Final = "sounds_like"
LIKED_ARTIST: Final = "liked_artist"
EDITORIAL: Final = "editorial"
#: Every retrieval source, most personal first: a track proposed twice keeps the first.
SOURCES: Final = (ROTATION, SIMILAR, SOUNDS_LIKE, LIKED_ARTIST, EDITORIAL, TASTE, TRENDING)


@dataclass(frozen=True)
class RetrievalConfig:
    """How many candidates each source proposes (before duplicates are merged)."""

    #: best tracks by taste over the whole served set
    taste: int = 150
    #: liked tracks whose neighbours are looked up, newest first
    similar_seeds: int = 5
    #: neighbours per liked track
    similar_per_seed: int = 10
    #: most played artists whose tracks are proposed
    liked_artists: int = 5
    #: tracks per liked artist (its most popular)
    per_artist: int = 8
    #: editorial picks that fit the moment, in the sets' order (largest boost first)
    editorial: int = 20
    #: the user's own rested tracks proposed back, the most recently heard first
    #: (32: all :class:`~features.UserFeatures` remembers, 20 plays and 12 liked)
    rotation: int = 32
    #: liked tracks whose nearest tracks by content vector are looked up, newest first
    content_seeds: int = 3
    #: tracks by content vector per liked track
    content_per_seed: int = 8

    def __post_init__(self) -> None:
        for name in (
            "rotation",
            "taste",
            "similar_seeds",
            "similar_per_seed",
            "liked_artists",
            "per_artist",
            "editorial",
            "content_seeds",
            "content_per_seed",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)!r}")


@dataclass
class Candidates:
    """The retrieved tracks, one row each: where they are served, and why they came.

    ``seeds[i]`` is what brought track ``i`` (the liked track of ``similar``, the
    artist of ``liked_artist``, the set of ``editorial``; None for the others);
    ``retrieval_scores[i]`` is its source's own score (hours since the user heard
    it for ``rotation``; cosine, affinity weight, boost, taste logit, trend value).
    """

    track_ids: list[str]
    rows: NDArray[np.intp]
    sources: list[str]
    seeds: list[str | EditorialSet | None]
    retrieval_scores: NDArray[np.float64]
    #: ``sources`` as an object array (one comparison finds a source's candidates),
    #: if the maker has it; else built at the first :meth:`from_source`
    source_array: NDArray[np.object_] | None = field(default=None, repr=False, compare=False)
    _position: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.track_ids)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._positions()

    def index(self, track_id: str) -> int:
        """The position of a candidate (``KeyError`` if it is not one)."""
        return self._positions()[track_id]

    def from_source(self, source: str) -> NDArray[np.bool_]:
        """Which candidates ``source`` brought (one flag each)."""
        if self.source_array is None:
            self.source_array = np.array(self.sources, dtype=object)
        return self.source_array == source  # type: ignore[no-any-return]

    def _positions(self) -> dict[str, int]:
        # Built on first use: most lists never look a candidate up by id.
        if self._position is None:
            self._position = {t: i for i, t in enumerate(self.track_ids)}
        return self._position


class _Proposals:
    """Each source's rows, in order of precedence, merged at the end (vectorised)."""

    def __init__(self) -> None:
        self.rows: list[NDArray[np.intp]] = []
        self.sources: list[str] = []
        self.seeds: list[list[str | EditorialSet | None]] = []
        self.scores: list[NDArray[np.float64]] = []

    def add(
        self,
        rows: NDArray[np.intp],
        source: str,
        seeds: list[str | EditorialSet | None],
        scores: NDArray[np.float64],
    ) -> None:
        if len(rows):
            self.rows.append(rows)
            self.sources.append(source)
            self.seeds.append(seeds)
            self.scores.append(scores)

    def merged(self, served: ServedTracks) -> Candidates:
        """One candidate per row, keeping the first source that proposed it."""
        if not self.rows:
            empty = np.empty(0, np.intp)
            return Candidates([], empty, [], [], np.empty(0))
        rows = np.concatenate(self.rows)
        first = _first_places(rows)
        kept = rows[first]
        # Sources and seeds as object arrays: one gather each picks the kept ones.
        sources = np.array(self.sources, object).repeat([len(r) for r in self.rows])
        seeds = np.fromiter(itertools.chain.from_iterable(self.seeds), object, len(rows))
        kept_sources = sources[first]
        return Candidates(
            served.ids_of(kept),
            kept,
            kept_sources.tolist(),
            seeds[first].tolist(),
            np.concatenate(self.scores)[first],
            kept_sources,
        )


def _first_places(values: NDArray[np.intp]) -> NDArray[np.intp]:
    """Where each distinct value first occurs, in order of place: what
    ``np.unique(values, return_index=True)`` finds, sorted, in a handful of array
    methods (``np.unique``'s own Python costs more than its sort at this size).

    >>> _first_places(np.array([7, 3, 7, 1, 3])).tolist()
    [0, 1, 3]
    """
    order = values.argsort(kind="stable")  # stable: equal values keep their places' order
    ordered = values[order]
    first = np.ones(len(values), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    places = order[first]
    places.sort()
    return places


class NeighbourCache:
    """Each seed track's nearest tracks, kept across snapshots while fresh enough.

    Finding a track's neighbours costs a product with every served vector; the
    vectors move a little with each snapshot (every few seconds), the
    neighbours far less. So they are kept for ``max_age_ms`` of snapshot time
    and recomputed after. Memory bound: ``capacity`` tracks (least recently
    computed dropped first), ``n`` track ids and ``n`` rows each.
    """

    def __init__(self, max_age_ms: int = 300_000, capacity: int = 50_000) -> None:
        self.max_age_ms, self.capacity = max_age_ms, capacity
        self._kept: dict[str, _Neighbours] = {}

    def rows(self, served: ServedTracks, track_id: str, n: int, models_ms: int) -> NDArray[np.intp]:
        """The served rows of ``track_id``'s ``n`` nearest tracks, best first."""
        kept = self._kept.get(track_id)
        if kept is None or models_ms - kept.models_ms > self.max_age_ms or len(kept.track_ids) < n:
            near = served.neighbours(served.position[track_id], n)
            ids = [served.track_ids[r] for r in near.tolist()]
            kept = _Neighbours(models_ms, ids, served.key, near)
            self._kept.pop(track_id, None)
            self._kept[track_id] = kept
            if len(self._kept) > self.capacity:
                del self._kept[next(iter(self._kept))]
        return kept.rows_in(served, n)


@dataclass
class _Neighbours:
    """A track's nearest tracks, and their rows in the served tracks that last read them
    (a track keeps its row while one :class:`ServedTracks` serves: read once, not per list)."""

    models_ms: int
    track_ids: list[str]
    _served: int | None = None  # the :attr:`ServedTracks.key` of those served tracks
    _rows: NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))

    def rows_in(self, served: ServedTracks, n: int) -> NDArray[np.intp]:
        """The rows of the first ``n`` tracks in ``served``."""
        if self._served != served.key or len(self._rows) < min(n, len(self.track_ids)):
            self._rows, self._served = served.rows(self.track_ids[:n]), served.key
        return self._rows[:n]


def retrieve(
    user: UserFeatures,
    user_vector: NDArray[np.float64] | None,
    served: ServedTracks,
    ts_ms: int,
    trending: Sequence[tuple[str, float]],
    editorial: Sequence[tuple[str, EditorialSet]],
    config: RetrievalConfig | None = None,
    draw_key: str = "",
    neighbours: NeighbourCache | None = None,
    models_ms: int = 0,
    rested: Sequence[tuple[str, int]] = (),
) -> Candidates:
    """Every source's candidates for ``user`` at ``ts_ms``, merged, with their served rows.

    More editorial picks than ``config.editorial`` are taken from a place ``draw_key``
    (the triggering event's id) decides, so lists share the editors' exposure.
    ``neighbours`` keeps the ``similar`` source's neighbours across calls (the
    models made at ``models_ms``). ``rested`` is the user's own tracks past the
    replay rest, with when each was last heard, the most recent first
    (:func:`~online_models.rotation.rested_tracks`): the ``rotation`` source."""
    config = config or RetrievalConfig()
    found = _Proposals()
    _rotation(found, served, ts_ms, rested[: config.rotation])
    if user_vector is not None:
        _similar(found, user, served, config, neighbours or NeighbourCache(), models_ms)
    _sounds_like(found, user, served, config)
    _liked_artists(found, user, served, ts_ms, config)
    picks = _rotated(editorial, config.editorial, draw_key)
    if picks:
        sets: list[str | EditorialSet | None] = [s for _, s in picks]
        boosts = np.array([s.boost for _, s in picks])
        found.add(served.rows([t for t, _ in picks]), EDITORIAL, sets, boosts)
    if user_vector is not None and config.taste:
        logits = served.vectors @ np.asarray(user_vector, np.float64) + served.bias
        best = top_indices(logits, config.taste)
        found.add(best, TASTE, [None] * len(best), logits[best])
    if trending:
        track_ids, values = zip(*trending, strict=True)
        found.add(served.rows(track_ids), TRENDING, [None] * len(trending), np.array(values))
    return found.merged(served)


def _rotation(
    found: _Proposals, served: ServedTracks, ts_ms: int, rested: Sequence[tuple[str, int]]
) -> None:
    if rested:  # the reason's "heard ... ago" is worded for the few items listed only
        hours = (ts_ms - np.array([at for _, at in rested], np.float64)) / 3_600_000
        found.add(served.rows([t for t, _ in rested]), ROTATION, [None] * len(rested), hours)


def _similar(
    found: _Proposals,
    user: UserFeatures,
    served: ServedTracks,
    config: RetrievalConfig,
    neighbours: NeighbourCache,
    models_ms: int,
) -> None:
    position = served.position
    seeds = [t for t in list(user.recent_liked())[: config.similar_seeds] if t in position]
    if not config.similar_per_seed:
        return
    unit = served.unit_vectors
    for seed in seeds:
        near = neighbours.rows(served, seed, config.similar_per_seed, models_ms)
        cosines = unit.take(near, axis=0) @ unit[position[seed]]
        found.add(near, SIMILAR, [seed] * len(near), cosines)


def _sounds_like(
    found: _Proposals, user: UserFeatures, served: ServedTracks, config: RetrievalConfig
) -> None:
    if not (config.content_per_seed and config.content_seeds):
        return
    content = served.content
    if not content.width:  # the catalog has no content vectors
        return
    position = served.position
    liked = [t for t in user.recent_liked() if t in position][: config.content_seeds]
    for seed in liked:
        at = position[seed]
        near = content.nearest(at, config.content_per_seed)
        cosines = content.unit.take(near, axis=0) @ content.unit[at]
        found.add(near, SOUNDS_LIKE, [seed] * len(near), cosines)


def _liked_artists(
    found: _Proposals, user: UserFeatures, served: ServedTracks, ts_ms: int, config: RetrievalConfig
) -> None:
    if not config.per_artist:
        return
    for artist, weight in user.artists.top(ts_ms, config.liked_artists):
        best = served.top_rows_of_artist(artist, config.per_artist)
        found.add(best, LIKED_ARTIST, [artist] * len(best), np.full(len(best), float(weight)))


def _rotated(
    picks: Sequence[tuple[str, EditorialSet]], n: int, draw_key: str
) -> Sequence[tuple[str, EditorialSet]]:
    """``n`` picks in a row, cyclically, from a start ``draw_key`` fixes."""
    if len(picks) <= n:
        return picks
    start = zlib.crc32(draw_key.encode()) % len(picks)
    return [picks[(start + i) % len(picks)] for i in range(n)]


__all__ = [
    "EDITORIAL",
    "LIKED_ARTIST",
    "ROTATION",
    "SIMILAR",
    "SOURCES",
    "TASTE",
    "TRENDING",
    "Candidates",
    "NeighbourCache",
    "RetrievalConfig",
    "retrieve",
]
