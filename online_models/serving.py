"""What a worker serves with: the models of one verified snapshot, and the user-side step.

A worker never learns the shared models: the learner does
(:mod:`online_models.learner`). It holds the latest :class:`ServingModels`,
built from a snapshot whose signature verified, and swaps in the next one
whole (one attribute assignment: the stream never pauses). With them, for
each event it folds, it:

* builds the :class:`~online_models.learner.TrainingExample` from the user's
  state before the event (:meth:`ServingModels.example`): the engagement
  features, the label, the user's taste vector and the negatives drawn;
* takes the user's own taste step at once (the user lives in this worker's
  partition), so their vector is fresh after their very event;
* ranks candidate tracks for the user by taste (:meth:`ServingModels.rank_by_taste`:
  one matrix product) and scores engagement (:class:`~online_models.engagement.LinearScorer`).

Before the first snapshot, :meth:`ServingModels.untrained` serves: the taste
model's starting values (the same in every process, :mod:`online_models.taste`)
and no engagement weights; its version is ``untrained``.

Negatives are drawn from a generator seeded by the event id, so the same event
gives the same example wherever and however often it is built.

Memory bound: the snapshot's arrays, plus one row per track, artist and genre
met that the snapshot does not hold (the catalog bounds them).

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
from online_models.snapshot import Snapshot
from online_models.taste import TasteModel, Vector, array_names, user_step_from

UNTRAINED = "untrained"


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
    ) -> None:
        self.taste = taste
        self.engagement = engagement
        self.version = version
        self.created_at_ms = created_at_ms
        self.examples_seen = examples_seen
        self.metrics: dict[str, Any] = dict(metrics or {})
        #: the policy exploration slots are drawn from (read-only here: the learner's)
        self.exploration = exploration or ExplorationPolicy()
        #: track -> (full vector, bias): the served parts never change, so each
        #: track's vector is summed from its parts once (memory: k + 1 floats a track)
        self._vectors: dict[str, tuple[Vector, float]] = {}

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
        )

    @property
    def k(self) -> int:
        return self.taste.k

    def set_catalog(self, catalog: Mapping[str, TrackInfo]) -> None:
        """Tell the taste model each track's artist and genres."""
        self.taste.set_catalog({t: (info.artist_id, info.genres) for t, info in catalog.items()})
        for track_id in catalog:
            self._vectors.pop(track_id, None)

    def track_vector(self, track_id: str) -> tuple[Vector, float]:
        """A track's full taste vector and bias, as served."""
        cached = self._vectors.get(track_id)
        if cached is None:
            taste = self.taste
            cached = self._vectors[track_id] = (
                taste.track_vector(track_id),
                taste.bias.get(track_id, 0.0),
            )
        return cached

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
        parts = [self.track_vector(t) for t in (track_id, *drawn)]
        vectors = np.stack([vector for vector, _ in parts])
        biases = np.fromiter((bias for _, bias in parts), float, len(parts))
        similarity = float(user @ vectors[0])
        x = build_example(features, event, track, taste_similarity=similarity)
        taste = self.taste
        new_user = user_step_from(user, vectors, biases, label, taste.lr, taste.l2)
        example = TrainingExample(str(event["event_id"]), x, label, track_id, user.tolist(), drawn)
        return example, new_user

    def rank_by_taste(
        self, user: NDArray[Any], candidates: Sequence[str]
    ) -> list[tuple[str, float]]:
        """``candidates`` best first by the taste model's logit (one matrix product)."""
        if not candidates:
            return []
        parts = [self.track_vector(t) for t in candidates]
        matrix = np.stack([vector for vector, _ in parts])
        biases = np.fromiter((bias for _, bias in parts), float, len(parts))
        scores = matrix @ np.asarray(user, dtype=np.float64) + biases
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
