"""The engagement features of many candidate tracks for one user, as columns.

Ranking scores a few hundred candidates for one user in one context. Their
examples (:func:`~online_models.example.build_example`) share the user's and the
context's features (:func:`shared_features`); what differs is built here as one
NumPy array per feature, with no Python loop over the candidates:

* the track's own features: a gather from
  :class:`~online_models.served_tracks.ServedTracks`;
* the taste similarity: one matrix-vector product;
* the crosses with this user (affinity for the artist and the best-fitting
  genre, a new artist, time since the track and the artist were last played):
  the user holds a bounded handful of each (:mod:`features.user`), so each value
  is computed once per key the user holds, with
  :mod:`online_models.example`'s own formulas, set in a table by the served
  tracks' index (0 elsewhere) and gathered onto the candidates.

:meth:`~online_models.engagement.LinearScorer.score_columns` then scores them
all at once. A linear model reads an absent feature as 0, and a column holds 0
where the example would have no such feature, so the scores are those of River's
``predict_one`` on each candidate's full example (a test checks it).

>>> from features import TrackInfo, UserFeatures
>>> from online_models.served_tracks import ServedTracks
>>> from online_models.taste import TasteModel
>>> catalog = {t: TrackInfo(t, a, ("jazz",), 200_000) for t, a in (("t1", "a1"), ("t2", "a2"))}
>>> user = UserFeatures()
>>> played = {"type": "play", "track_id": "t1", "ts": 0, "ms_played": 200_000}
>>> _ = user.update(played, catalog["t1"])
>>> served = ServedTracks(TasteModel(k=4), catalog, {})
>>> columns = candidate_columns(user, served, served.rows(["t1", "t2"]), 60_000, np.zeros(4))
>>> columns["artist_new"].tolist(), columns["artist_affinity_share"].tolist()
([0.0, 1.0], [1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import UserFeatures
from online_models.example import (
    TRACK_FEATURES,
    Example,
    context_side,
    log_seconds_since,
    share_of,
    user_side,
)
from online_models.served_tracks import ServedTracks, row_max

Columns = dict[str, NDArray[np.float64]]


def shared_features(user: UserFeatures, ts: int, context: Mapping[str, Any]) -> Example:
    """The features every candidate's example has in common: the user's and the context's."""
    return {**user_side(user, ts), **context_side(ts, context)}


def candidate_columns(
    user: UserFeatures,
    served: ServedTracks,
    rows: NDArray[np.intp],
    ts: int,
    user_vector: NDArray[Any],
    similarity: NDArray[np.float64] | None = None,
) -> Columns:
    """One column per feature that differs between the candidates in ``rows``;
    ``similarity`` is their taste similarity if the caller has it (``served.vectors[rows]
    @ user_vector``)."""
    features = served.features.take(rows, axis=0)  # one gather; each column a view of it
    columns = dict(zip(TRACK_FEATURES, features.T, strict=True))
    if similarity is None:
        similarity = served.vectors.take(rows, axis=0) @ np.asarray(user_vector, np.float64)
    columns["taste_similarity"] = similarity
    columns.update(_crosses(user, served, rows, ts))
    return columns


def _crosses(user: UserFeatures, served: ServedTracks, rows: NDArray[np.intp], ts: int) -> Columns:
    artist, genres = served.artist[rows], served.genres.take(rows, axis=0)

    def by_artist(values: Mapping[str, float]) -> NDArray[np.float64]:
        return _table(served.artist_index, values)[artist]

    artists_total, genres_total = user.artists.total(ts), user.genres.total(ts)
    artist_share = {a: share_of(w, artists_total) for a, w in user.artists.read(ts).items()}
    genre_share = {g: share_of(w, genres_total) for g, w in user.genres.read(ts).items()}
    known = by_artist(dict.fromkeys(user.first_play_ms, 1.0))
    track_recency = _recency(user.track_last_ms, ts)
    return {
        "artist_new": np.where(artist >= 0, 1.0 - known, 0.0),  # uncatalogued: no crosses
        "artist_affinity_share": by_artist(artist_share),
        "genre_affinity_share": row_max(_table(served.genre_index, genre_share)[genres], 0.0),
        "artist_last_played_log_s": by_artist(_recency(user.artist_last_ms, ts)),
        "track_last_played_log_s": _table(served.position, track_recency)[rows],
    }


def _recency(last_ms: Mapping[str, int], ts: int) -> dict[str, float]:
    return {key: log_seconds_since(then, ts) or 0.0 for key, then in last_ms.items()}


def _table(index: Mapping[str, int], values: Mapping[str, float]) -> NDArray[np.float64]:
    """``values`` by their key's place in ``index``, 0 for every place no key of ``values``
    holds, and one more 0 at the end, which index ``-1`` (none) reads. Keys ``index``
    lacks are dropped: no candidate can hold them. A gather from it is each candidate's
    value: a few NumPy calls, however many candidates."""
    table = np.zeros(len(index) + 1)
    for key, value in values.items():  # a handful: one at a time beats building arrays
        at = index.get(key)
        if at is not None:
            table[at] = value
    return table


__all__ = ["Columns", "candidate_columns", "shared_features"]
