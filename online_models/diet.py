"""A listener's diet: which genres and artists make up what they play, lately and now.

Two readings of the same user state (:class:`features.UserFeatures`), as shares
by the served tracks' genre and artist indices
(:class:`~online_models.served_tracks.ServedTracks`):

* **long-run**: the decayed genre and artist affinities (a week's half-life),
  each divided by its total plus :data:`PRIOR_WEIGHT` (pseudo-plays of no genre
  and no artist): a listener's first plays do not make a diet yet;
* **this session**: the genres and artists of the tracks played in the running
  session (the plays since the session's first event, among the last 20
  remembered), each over their count; none when no session is running.

The list builder uses it twice. Ranking adds each candidate's :meth:`Diet.affinity`
(:mod:`online_models.ranking`): a listener in the middle of an album or a jazz
session is likelier to want more of that artist or genre next than what a
co-listening model says alone. Re-ranking lets a genre take as much of the
list as the listener gives it next to their favourite (:meth:`Diet.genre_shares`,
the genre cap by diet of :mod:`online_models.reranking`).

Cost: O(the user's genres, artists and session plays: a few dozen) to build,
then one gather per candidate array. Memory: two arrays of the served genres
and two of the served artists, for one list.

>>> from features import TrackInfo, UserFeatures
>>> from online_models.served_tracks import ServedTracks
>>> from online_models.taste import TasteModel
>>> catalog = {t: TrackInfo(t, a, (g,), 200_000) for t, a, g in
...            (("t1", "a1", "jazz"), ("t2", "a1", "jazz"), ("t3", "a2", "rock"))}
>>> served = ServedTracks(TasteModel(k=4), catalog, {})
>>> user = UserFeatures()
>>> _ = user.update({"type": "play", "track_id": "t1", "ts": 0, "ms_played": 200_000},
...                 catalog["t1"])
>>> diet = Diet.of(user, served, 60_000)
>>> diet.affinity(served, served.rows(["t2", "t3"])).round(3).tolist()  # t2: t1's artist, genre
[0.583, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from features import UserFeatures
from online_models.served_tracks import ServedTracks, row_max

#: Pseudo-plays added to the long-run total: one play is a share of 1/6, not all of
#: a diet (like the user features' rate priors, :mod:`features.user`).
PRIOR_WEIGHT = 5.0


@dataclass(frozen=True)
class Diet:
    """Shares by served genre and artist index, long-run and in the running session;
    each array has one more entry, always 0, for index ``-1`` (no genre, unknown
    artist). A session share is all 0 when no session is running."""

    genres: NDArray[np.float64]
    artists: NDArray[np.float64]
    session_genres: NDArray[np.float64]
    session_artists: NDArray[np.float64]

    @classmethod
    def of(cls, user: UserFeatures, served: ServedTracks, ts_ms: int) -> Diet:
        """The diet of ``user`` at ``ts_ms``, by ``served``'s indices."""
        rows = served.rows(_session_plays(user, ts_ms))  # first: it may add rows
        n_genres, n_artists = len(served.genre_index), len(served.artist_index)
        return cls(
            _shares(user.genres.read(ts_ms), served.genre_index, n_genres),
            _shares(user.artists.read(ts_ms), served.artist_index, n_artists),
            _counted(served.genres.take(rows, axis=0).ravel(), n_genres),
            _counted(served.artist[rows], n_artists),
        )

    def genre_shares(self) -> NDArray[np.float64]:
        """Each genre's share of what the user plays, long-run or in this session,
        whichever is larger (by genre index, without the ``-1`` entry)."""
        return np.maximum(self.genres, self.session_genres)[:-1]

    def affinity(self, served: ServedTracks, rows: NDArray[np.intp]) -> NDArray[np.float64]:
        """How much of what the user plays, lately and in this session, is each candidate's
        artist and genre: the mean of its artist's and its best genre's shares, each
        share the mean of the long-run and the session one (0..1)."""
        artist, genres = served.artist[rows], served.genres.take(rows, axis=0)
        artist_share = (self.artists[artist] + self.session_artists[artist]) / 2
        by_genre = (self.genres[genres] + self.session_genres[genres]) / 2  # -1 reads 0
        genre_share = row_max(by_genre) if genres.shape[1] else np.zeros(len(rows))
        return (artist_share + genre_share) / 2  # type: ignore[no-any-return]


def _session_plays(user: UserFeatures, ts_ms: int) -> list[str]:
    """The remembered plays of the session running at ``ts_ms`` (none if none runs)."""
    session = user.session.read(ts_ms)
    start = session.session_start_ms
    if not session.active or start is None:
        return []
    return [track_id for track_id, at in user.track_last_ms.items() if start <= at <= ts_ms]


def _shares(weights: Mapping[str, float], index: Mapping[str, int], n: int) -> NDArray[np.float64]:
    """``weights`` over their total and :data:`PRIOR_WEIGHT`, by ``index`` (keys it lacks
    are left out), and a 0 for index ``-1``."""
    shares = np.zeros(n + 1)
    if weights:
        at = np.fromiter((index.get(key, -1) for key in weights), np.intp, len(weights))
        values = np.fromiter(weights.values(), np.float64, len(weights))
        shares[at] = values / (values.sum() + PRIOR_WEIGHT)
        shares[-1] = 0.0  # the keys ``index`` lacks landed on ``-1``
    return shares


def _counted(indices: NDArray[np.intp], n: int) -> NDArray[np.float64]:
    """Each index's share of the known ``indices`` (``-1`` left out), and a 0 for ``-1``:
    a two-genre play counts half to each, as in the long-run affinity."""
    known = indices[indices >= 0]
    shares = np.zeros(n + 1)
    if len(known):
        shares[:n] = np.bincount(known, minlength=n) / len(known)
    return shares


__all__ = ["PRIOR_WEIGHT", "Diet"]
