"""What a worker serves with: the models of one verified snapshot, and the user-side step.

A worker never learns the shared models: the learner does
(:mod:`online_models.learner`). It holds the latest :class:`ServingModels`,
built from a snapshot whose signature verified, and swaps in the next one
whole (one attribute assignment: the stream never pauses). With them, for
each event it folds, it:

* builds the :class:`~online_models.learner.TrainingExample` from the user's
  state before the event (:meth:`ServingModels.example`): the engagement
  features (the track's statistics as the snapshot serves them,
  :mod:`online_models.track_stats`), the label, the user's taste vector and
  the negatives drawn;
* takes the user's own taste step at once (the user lives in this worker's
  partition), so their vector is fresh after their very event;
* ranks candidate tracks for the user by taste (:meth:`ServingModels.rank_by_taste`:
  one gather from the served tracks' arrays, :class:`~online_models.served_tracks.ServedTracks`,
  and one matrix product) and scores engagement
  (:class:`~online_models.engagement.LinearScorer`, over
  :func:`~online_models.candidates.candidate_columns`).

Before the first snapshot, :meth:`ServingModels.untrained` serves: the taste
model's starting values (the same in every process, :mod:`online_models.taste`)
and no engagement weights; its version is ``untrained``.

Negatives are drawn from a generator seeded by the event id, so the same event
gives the same example wherever and however often it is built.

Memory bound: the snapshot's arrays, plus one row per track, artist and genre
met that the snapshot does not hold, and the served tracks' arrays (``k + 9``
numbers a track and one per genre, :mod:`online_models.served_tracks`); the
catalog bounds them.

>>> from features import TrackInfo, UserFeatures
>>> models = ServingModels.untrained(k=4)
>>> models.set_catalog({"t1": TrackInfo("t1", "a1", ("jazz",), 200_000),
...                     "t2": TrackInfo("t2", "a2", ("rock",), 200_000)})
>>> event = {"event_id": "e1", "type": "save", "track_id": "t1", "ts": 0}
>>> example, vector = models.example(UserFeatures(), event, None, None, ["t1", "t2"], 1)
>>> example.y, len(example.user_vector), vector.shape, models.version
(1, 4, (4,), 'untrained')
>>> [track for track, _ in models.rank_by_taste(vector, ["t2", "t1"])]
['t1', 't2']
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import TrackInfo, UserFeatures
from online_models.engagement import LinearScorer
from online_models.example import build_example, engagement_label
from online_models.exploration import ExplorationPolicy
from online_models.learner import SNAPSHOT_NAME, TrainingExample, exploration_of
from online_models.served_tracks import ServedTracks
from online_models.snapshot import Snapshot
from online_models.taste import TasteModel, Vector, array_names, user_step_from
from online_models.track_stats import served_track_stats

UNTRAINED = "untrained"
#: Catalog updates of at most this many tracks refresh their rows; more rebuild all.
_REFRESH_AT_MOST = 64


class ServingModels:
    """The engagement scorer and taste model of one snapshot, read-only in spirit.

    ``metrics`` are the snapshot's (the learner's live quality of the version);
    ``examples_seen`` and ``created_at_ms`` its own fields.
    """

    def __init__(
        self,
        taste: TasteModel,
        engagement: LinearScorer | None,
        version: str = UNTRAINED,
        created_at_ms: int = 0,
        examples_seen: int = 0,
        metrics: Mapping[str, Any] | None = None,
        exploration: ExplorationPolicy | None = None,
        track_stats: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.taste = taste
        self.engagement = engagement
        self.version = version
        self.created_at_ms = created_at_ms
        self.examples_seen = examples_seen
        self.metrics: dict[str, Any] = dict(metrics or {})
        #: the policy exploration slots are drawn from (read-only here: the learner's)
        self.exploration = exploration or ExplorationPolicy()
        #: each track's statistics as of the snapshot (:mod:`online_models.track_stats`)
        self.track_stats: Mapping[str, Mapping[str, float]] = track_stats or {}
        self.catalog: dict[str, TrackInfo] = {}
        #: the served tracks as arrays (built at the first ranking: the catalog comes
        #: after the snapshot)
        self._served: ServedTracks | None = None

    @classmethod
    def untrained(cls, k: int = 16) -> ServingModels:
        """What serves before the first snapshot arrives."""
        return cls(TasteModel(k=k), None)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> ServingModels:
        """The models a verified snapshot carries; ``ValueError`` if it holds other
        models or its arrays do not fit together."""
        if snapshot.model != SNAPSHOT_NAME:
            raise ValueError(f"a snapshot of {snapshot.model!r}, not of {SNAPSHOT_NAME!r}")
        arrays = snapshot.arrays
        taste = TasteModel(k=int(arrays["taste_tracks"].shape[1]))
        taste.load_shared(arrays)
        names = array_names(arrays["engagement_features"])
        weights = [float(w) for w in arrays["engagement_weights"]]
        if len(names) != len(weights):
            raise ValueError(f"{len(names)} engagement features for {len(weights)} weights")
        scorer = LinearScorer(
            dict(zip(names, weights, strict=True)), float(arrays["engagement_intercept"][0])
        )
        return cls(
            taste,
            scorer,
            snapshot.version,
            snapshot.created_at_ms,
            snapshot.examples_seen,
            snapshot.metrics,
            exploration_of(arrays),
            served_track_stats(arrays),
        )

    @property
    def k(self) -> int:
        return self.taste.k

    def set_catalog(self, catalog: Mapping[str, TrackInfo]) -> None:
        """Tell the models each track's artist, genres and facts."""
        self.taste.set_catalog({t: (info.artist_id, info.genres) for t, info in catalog.items()})
        self.catalog.update(catalog)
        served = self._served
        if served is not None and len(catalog) > _REFRESH_AT_MOST:
            self._served = None  # a whole catalog: rebuilt at the next ranking
        elif served is not None:
            for track_id in catalog:
                served.refresh(track_id)

    def warm(self) -> None:
        """Build the served tracks' arrays now (at start-up or a swap, before these
        models serve), not in the first ranking: some 30 ms for 5,000 tracks."""
        self.served.warm()

    @property
    def served(self) -> ServedTracks:
        """Every track this snapshot and the catalog know, as arrays by row."""
        if self._served is None:
            self._served = ServedTracks(self.taste, self.catalog, self.track_stats)
        return self._served

    def track_vector(self, track_id: str) -> tuple[Vector, float]:
        """A track's full taste vector and bias, as served."""
        served = self.served
        row = served.row(track_id)
        return served.vectors[row], float(served.bias[row])

    def user_vector(self, stored: NDArray[Any] | None, track_id: str) -> Vector:
        """The user's vector: the stored one, or (first event, or a model of another
        size) the cold start from the track they play."""
        if stored is not None and stored.shape == (self.k,):
            return np.asarray(stored, dtype=np.float64)
        return self.taste.new_user_vector(track_id)

    def example(
        self,
        features: UserFeatures,
        event: Mapping[str, Any],
        track: TrackInfo | None,
        stored_vector: NDArray[Any] | None,
        track_ids: Sequence[str],
        negatives: int = 4,
    ) -> tuple[TrainingExample, Vector]:
        """The event's training example (from ``features`` before the event) and the
        user's taste vector after their own step on it; negatives are drawn from
        ``track_ids``."""
        track_id = str(event["track_id"])
        user = self.user_vector(stored_vector, track_id)
        label = engagement_label(event, track)
        rng = random.Random(str(event["event_id"]))
        drawn = self.taste.sample_negatives(rng, track_ids, negatives)
        served = self.served
        rows = served.rows([track_id, *drawn])
        vectors, biases = served.vectors[rows], served.bias[rows]
        similarity = float(user @ vectors[0])
        x = build_example(features, event, track, self.track_stats.get(track_id), similarity)
        taste = self.taste
        new_user = user_step_from(user, vectors, biases, label, taste.lr, taste.l2)
        example = TrainingExample(
            str(event["event_id"]),
            x,
            label,
            track_id,
            user.tolist(),
            drawn,
            str(event["type"]),
            int(event["ts"]),
        )
        return example, new_user

    def rank_by_taste(
        self, user: NDArray[Any], candidates: Sequence[str]
    ) -> list[tuple[str, float]]:
        """``candidates`` best first by the taste model's logit (one gather, one matrix
        product)."""
        if not candidates:
            return []
        served = self.served
        rows = served.rows(candidates)
        scores = served.vectors[rows] @ np.asarray(user, dtype=np.float64) + served.bias[rows]
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]

    def describe(self) -> dict[str, Any]:
        """JSON-safe: the version, when it was made, examples seen and its metrics."""
        return {
            "version": self.version,
            "created_at_ms": self.created_at_ms,
            "examples_seen": self.examples_seen,
            "taste_factors": self.k,
            "tracks_known": len(self.taste.tracks.index),
            "engagement_features": 0 if self.engagement is None else len(self.engagement.names),
            "metrics": self.metrics,
        }


__all__ = ["UNTRAINED", "ServingModels"]
