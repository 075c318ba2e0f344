"""The central learner: learns the shared models from every worker's examples, and snapshots them.

The design is Monolith's. Each worker builds one :class:`TrainingExample` per
event it folds, from the user's state before the event, and updates that user's
taste vector itself (the user lives in its partition). The example carries the
user vector it was made with, so the learner can take the shared steps exactly
as the worker would have (:meth:`online_models.taste.TasteModel.learn_shared`).
The learner consumes the examples from one topic, in order, and for each one:

1. the engagement model predicts, its live quality is scored over a rolling
   window (:class:`online_models.quality.QualityReport`), then it learns
   (prequential: test, then train); the window rolls on across versions, and each
   snapshot carries its figures as of that snapshot; on every ``hit_every``-th positive example,
   the taste ranking of the last snapshot (what the workers serve) is checked
   for the track: the rolling hit-rate@10;
2. the taste model's shared parts (tracks, artists, genres, biases) learn;
3. the track's statistics (:mod:`online_models.track_stats`) fold in the event's
   type and time: every snapshot serves them to the workers' examples.

The same records carry the workers' exploration feedback (each offered slot
as a trial, each credit as a revision, :class:`~online_models.exploration.FeedbackLog`):
the learner applies it to the one :class:`~online_models.exploration.ExplorationPolicy`
every worker draws from, and each snapshot carries the policy (its JSON state
as an array). A record is a JSON list whose items are examples (objects) or
feedback entries (``[arm, old, new]``): :func:`read_record`.

Every few seconds :meth:`Learner.snapshot` gives a :class:`Snapshot`: the
engagement weights, the taste model's shared parts, the quality so far and the
next offset to read per source partition. :meth:`Learner.resume` starts a
learner from one, so a restarted learner resumes where its last snapshot ended
and learns no example twice (:meth:`Learner.learn` skips positions already
learned). Only models whose state is plain arrays are published (the
``logistic`` engagement model; :data:`SNAPSHOT_MODELS`).

Scaling limit: one learner learns every event of the stream, so the stream's
rate must stay below its rate (``python -m benchmarks.models`` measures it: 7,255
examples/s in process on the 2-core development machine, under load; ~16 µs of
each for ``logistic``, the rest the taste model's five small NumPy steps, one per
track and negative, where NumPy's per-call overhead dominates). Beyond that: fewer
negatives, or the taste steps batched per message.

Memory bound: the models (``k`` floats per track, artist and genre; one weight
per feature), six decayed statistics per track, and one quality window.

>>> learner = Learner(taste_factors=4)
>>> example = TrainingExample("e1", {"artist_affinity_share": 1.0}, 1, "t1", [0.0] * 4, ["t2"])
>>> learner.learn(example, partition=0, offset=41), learner.learn(example, 0, 41)
(True, False)
>>> snap = learner.snapshot(created_at_ms=1_767_225_600_000)
>>> snap.examples_seen, snap.source_offsets
(1, {0: 42})
>>> Learner.resume(snap).learn(example, 0, 41)  # already learned before the snapshot
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from river import utils

from features.event_types import EVENT_TYPES
from online_models.engagement import RiverEngagementModel, make_engagement_model
from online_models.example import Example
from online_models.exploration import ExplorationPolicy, FeedbackEntry, read_feedback
from online_models.quality import QualityReport, RollingHitRate
from online_models.snapshot import Snapshot, array_json, json_array
from online_models.taste import CatalogView, TasteModel, array_names, names_array
from online_models.track_stats import TrackStatistics

#: The engagement models whose state a snapshot can carry (weights as arrays).
SNAPSHOT_MODELS = ("logistic",)
#: The snapshot's ``model`` field: everything one learner publishes.
SNAPSHOT_NAME = "tunestream-models"
#: The snapshot array holding the exploration policy's JSON state.
EXPLORATION_ARRAY = "exploration_policy"
#: The taste model's live hit-rate is @10: the size of a list.
HIT_K = 10


@dataclass(frozen=True)
class TrainingExample:
    """One event as the learner needs it: features, label, the user vector it was made
    with, the tracks drawn as negatives for the taste model, and the event's type and
    time (the track's statistics learn from them; ``kind`` is empty in records from
    before they did)."""

    event_id: str
    x: Example
    y: int
    track_id: str
    user_vector: Sequence[float]
    negatives: Sequence[str] = field(default_factory=tuple)
    kind: str = ""
    ts: int = 0

    def to_record(self) -> dict[str, Any]:
        """JSON-safe: what goes on the training-examples topic."""
        return {
            "event_id": self.event_id,
            "x": self.x,
            "y": self.y,
            "track_id": self.track_id,
            "user_vector": list(self.user_vector),
            "negatives": list(self.negatives),
            "type": self.kind,
            "ts": self.ts,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TrainingExample:
        """Read :meth:`to_record` output; ``ValueError`` names a missing or bad field."""
        try:
            x = {str(name): float(value) for name, value in record["x"].items()}
            return cls(
                str(record["event_id"]),
                x,
                1 if record["y"] else 0,
                str(record["track_id"]),
                [float(value) for value in record["user_vector"]],
                [str(track) for track in record.get("negatives", ())],
                str(record.get("type", "")),
                int(record.get("ts", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a training example: {type(exc).__name__}: {exc}") from exc


class Learner:
    """Learns the engagement model and the taste model's shared parts, one example at a time."""

    def __init__(
        self,
        engagement: str = "logistic",
        taste_factors: int = 16,
        quality_window: int = 10_000,
        version_prefix: str = "v",
        hit_every: int = 10,
        track_half_life_s: float = 3600.0,
    ) -> None:
        if engagement not in SNAPSHOT_MODELS:
            raise ValueError(f"the learner snapshots only {SNAPSHOT_MODELS}, not {engagement!r}")
        self.engagement: RiverEngagementModel = make_engagement_model(engagement)
        self.taste = TasteModel(k=taste_factors)
        self.quality_window = quality_window
        self.version_prefix = version_prefix
        self.generation = 0
        self.quality = QualityReport(engagement, self.version, quality_window)
        self.examples_seen = 0
        #: when the last snapshot (made, or resumed from) is dated
        self.last_created_at_ms = 0
        self.next_offsets: dict[int, int] = {}
        self.hit_every = hit_every
        self.hit_rate = RollingHitRate(HIT_K, quality_window)
        self.exploration = ExplorationPolicy()
        self.track_stats = TrackStatistics(track_half_life_s)
        #: The tracks, their full vectors and biases as of the last snapshot: what the
        #: workers rank with, so the hit-rate measures the version they serve.
        self._served: tuple[dict[str, int], NDArray[np.float64], NDArray[np.float64]] | None = None

    @property
    def version(self) -> str:
        """The version being learned: the next snapshot's."""
        return f"{self.engagement.name}-{self.version_prefix}{self.generation + 1}"

    def set_catalog(self, catalog: CatalogView) -> None:
        self.taste.set_catalog(catalog)

    def learn(self, example: TrainingExample, partition: int, offset: int) -> bool:
        """Score, then learn, the example at ``partition``/``offset``; False (and nothing
        learned) if that position was learned already."""
        return self.learn_many([example], partition, offset) == 1

    def learn_many(
        self,
        examples: Sequence[TrainingExample],
        partition: int,
        offset: int,
        feedback: Sequence[FeedbackEntry] = (),
    ) -> int:
        """Score, then learn, the examples of one record at ``partition``/``offset``, in
        order, and apply its exploration ``feedback``; how many examples were learned
        (none, and no feedback applied, if that position was learned already)."""
        if offset < self.next_offsets.get(partition, 0):
            return 0
        for example in examples:
            self._learn(example)
        self.exploration.apply(feedback)
        self.next_offsets[partition] = offset + 1
        return len(examples)

    def _learn(self, example: TrainingExample) -> None:
        self.quality.update(bool(example.y), self.engagement.predict_one(example.x))
        self.engagement.learn_one(example.x, example.y)
        user = np.asarray(example.user_vector, dtype=np.float64)
        if user.shape == (self.taste.k,):  # a vector of another size is a worker's mistake
            if example.y and self.examples_seen % self.hit_every == 0:
                self.hit_rate.update(self._in_served_top(user, example.track_id))
            self.taste.learn_shared(user, example.track_id, example.y)
            for negative in example.negatives:
                self.taste.learn_shared(user, negative, 0)
        if example.kind in EVENT_TYPES:  # a record of another kind would be a worker's mistake
            self.track_stats.update(example.track_id, example.kind, example.ts)
        self.examples_seen += 1

    def snapshot(self, created_at_ms: int) -> Snapshot:
        """The models as they stand, under the current version; the next version starts.

        Dated ``created_at_ms``, or just after the snapshot before it if that is
        later: readers keep the newest by date, so a learner restarted on a host whose
        clock is behind its predecessor's must not publish snapshots they take for old.
        """
        created_at_ms = self.last_created_at_ms = max(created_at_ms, self.last_created_at_ms + 1)
        classifier = self.engagement.classifier
        weights = dict(classifier.weights)
        arrays = {
            "engagement_features": names_array(weights),
            "engagement_weights": np.fromiter(weights.values(), float, len(weights)),
            "engagement_intercept": np.array([float(classifier.intercept)]),
            **self.taste.shared_arrays(),
            **self.track_stats.arrays(),
            EXPLORATION_ARRAY: json_array(self.exploration.to_state()),
        }
        snapshot = Snapshot(
            model=SNAPSHOT_NAME,
            version=self.version,
            created_at_ms=created_at_ms,
            examples_seen=self.examples_seen,
            source_offsets=dict(self.next_offsets),
            metrics={
                "engagement": self.quality.gauges(),
                "engagement_model": self.engagement.name,
                "taste": {
                    f"hit_rate_at_{HIT_K}": self.hit_rate.get(),
                    "ranked": len(self.hit_rate),
                },
                "exploration": self.exploration.stats(),
            },
            arrays=arrays,
        )
        self.generation += 1
        # The windows roll on across versions: a version made every few seconds would
        # otherwise be judged on a handful of examples. Each snapshot's figures are the
        # last ``quality_window`` examples, each scored before the model learned it.
        self.quality.version = self.version
        self._served = None  # the hit-rate ranks with what the workers now serve
        return snapshot

    def _in_served_top(self, user: NDArray[np.float64], track_id: str) -> bool:
        """Is ``track_id`` among the top :data:`HIT_K` of the served taste ranking?"""
        if self._served is None:
            tracks = list(self.taste.tracks.index)
            matrix = self.taste.track_matrix(tracks)
            bias = self.taste.biases(tracks)
            self._served = {t: i for i, t in enumerate(tracks)}, matrix, bias
        position, matrix, bias = self._served
        at = position.get(track_id)
        if at is None:
            return False  # a track the served model had not met yet cannot be listed
        scores = matrix @ user + bias
        return int(np.count_nonzero(scores > scores[at])) < HIT_K

    @classmethod
    def resume(
        cls,
        snapshot: Snapshot,
        taste_factors: int | None = None,
        track_half_life_s: float = 3600.0,
    ) -> Learner:
        """A learner that goes on from ``snapshot`` (a verified one)."""
        arrays = snapshot.arrays
        k = taste_factors or int(arrays["taste_tracks"].shape[1]) or 16
        model = str(snapshot.metrics.get("engagement_model", "logistic"))
        learner = cls(model, k, track_half_life_s=track_half_life_s)
        load_engagement(learner.engagement, arrays)
        learner.taste.load_shared(arrays)
        learner.track_stats = TrackStatistics.from_arrays(arrays, track_half_life_s)
        learner.exploration = exploration_of(arrays)
        learner.examples_seen = snapshot.examples_seen
        learner.last_created_at_ms = snapshot.created_at_ms
        learner.next_offsets = dict(snapshot.source_offsets)
        generation = snapshot.version.rpartition(learner.version_prefix)[2]
        learner.generation = int(generation) if generation.isdigit() else 0
        learner.quality.version = learner.version  # a fresh window of the learner's size
        return learner


def exploration_of(arrays: Mapping[str, Any]) -> ExplorationPolicy:
    """The exploration policy a snapshot carries; a fresh one if it carries none (a
    snapshot from before exploration)."""
    if EXPLORATION_ARRAY not in arrays:
        return ExplorationPolicy()
    return ExplorationPolicy.from_state(array_json(arrays[EXPLORATION_ARRAY]))


def read_record(value: bytes | None) -> tuple[list[TrainingExample], list[FeedbackEntry]]:
    """A ``training-examples`` record: its examples and its exploration feedback;
    ``ValueError`` if it is not JSON or an item is neither.

    >>> read_record(b'[["trending", null, 0.0]]')
    ([], [('trending', None, 0.0)])
    """
    try:
        items = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ValueError(f"a record is a JSON list, not {type(items).__name__}")
    examples: list[TrainingExample] = []
    feedback: list[FeedbackEntry] = []
    for item in items:
        if isinstance(item, list):
            feedback.append(read_feedback(item))
        else:
            examples.append(TrainingExample.from_record(item))
    return examples, feedback


def load_engagement(model: RiverEngagementModel, arrays: Mapping[str, Any]) -> None:
    """Set a ``logistic`` model's weights and intercept from a snapshot's arrays."""
    names = array_names(arrays["engagement_features"])
    values = [float(value) for value in arrays["engagement_weights"]]
    if len(names) != len(values):
        raise ValueError(f"{len(names)} engagement features for {len(values)} weights")
    classifier = model.classifier
    classifier._weights = utils.VectorDict(dict(zip(names, values, strict=True)))
    classifier.intercept = float(arrays["engagement_intercept"][0])


__all__ = [
    "EXPLORATION_ARRAY",
    "SNAPSHOT_MODELS",
    "SNAPSHOT_NAME",
    "Learner",
    "TrainingExample",
    "exploration_of",
    "load_engagement",
    "read_record",
]
