"""Offline prequential evaluation: a log replayed through the worker's own feature and model code.

Events are taken in event-time order, and for each one, in this order:

1. the example is built from what was known *before* it (:func:`build_example`);
2. every engagement candidate predicts, its quality is scored, then it learns
   (test-then-train: each prediction is made on an event the model has not seen);
3. on a positive event sampled for ranking (every ``hit_every``-th), each taste
   ranker's top ``k`` is checked for the track (hit-rate@k) and the rank of the
   track in its full ranking gives NDCG@k, before any of them learns it;
4. the taste models learn, then the user's and the track's rolling features.

Baselines, side by side: ``random`` (``k`` tracks drawn at random), ``popularity``
(the decayed most-played, :class:`online_models.popularity.DecayedPopularity`),
River's ``reco.BiasedMF`` alone (the library anchor), and for the engagement
model a ``popularity-only`` logistic regression that sees the track's popularity
and nothing else.

The taste model scores with the shared parts of its last *snapshot*, refreshed
every ``snapshot_every`` events, as the workers do; the user's vector is always
fresh. Memory: the rolling features of every user and track in the log, the
models, and the quality window (``quality_window`` examples per candidate: the
whole replay by default, so its AUC is exact over all of it).

Over time: every ``curve_every`` events (and after the last one) a point of
``report()["curve"]`` records, for each engagement candidate, the ROC AUC and
log loss of its last ``curve_window`` examples, and for each taste ranker the
hit-rate@k of the positives it ranked in the last ``curve_window`` events
(counted in whole ``curve_every`` steps). The whole-replay figures are unchanged
by it. Each event costs the curve O(1) (an append per candidate, a count per
ranker); the figures are computed only at the points. Its memory: the points,
the last ``curve_window`` (label, prediction) pairs per candidate and
``curve_window / curve_every`` counts per ranker.

>>> from features import TrackInfo
>>> catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 3}", ("jazz",), 200_000) for i in range(6)}
>>> replay = PrequentialReplay(catalog, engagement=["logistic"], k=2, hit_every=1)
>>> for i in range(40):
...     replay.process({"user_id": f"u{i % 4}", "track_id": f"t{i % 6}", "ts": i * 60_000,
...                     "type": "play" if i % 3 else "skip", "ms_played": 150_000})
>>> report = replay.report()
>>> report["events"], sorted(report["ranking"])
(40, ['BiasedMF', 'popularity', 'random', 'taste'])

The curve, with a point every 500 events by default (here every 16):

>>> replay = PrequentialReplay(catalog, engagement=["logistic"], k=2, curve_every=16)
>>> for i in range(40):
...     replay.process({"user_id": f"u{i % 4}", "track_id": f"t{i % 6}", "ts": i * 60_000,
...                     "type": "play" if i % 3 else "skip", "ms_played": 150_000})
>>> curve = replay.report()["curve"]
>>> [point["events"] for point in curve], sorted(curve[-1]["engagement"]["logistic"])
([16, 32, 40], ['log_loss', 'roc_auc'])
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import reco

from features import TrackFeatures, TrackInfo, UserFeatures
from online_models.engagement import DEFAULT, RiverEngagementModel, make_engagement_model
from online_models.example import build_example, engagement_label
from online_models.popularity import DecayedPopularity
from online_models.quality import EPSILON, QualityReport
from online_models.taste import TasteModel, Vector

POPULARITY_ONLY = "popularity-only"


@dataclass
class _Scores:
    """The quality of one engagement candidate over the whole replay and over its
    last examples (for the curve), and its time."""

    quality: QualityReport
    #: The last (label, prediction) pairs: an append per event, figures only per point.
    recent: deque[tuple[bool, float]]
    seconds: float = 0.0

    def update(self, y: bool, p: float) -> None:
        self.quality.update(y, p)
        self.recent.append((y, p))  # the oldest falls off (maxlen)


@dataclass
class _Ranks:
    """Hit and NDCG sums of one taste ranker over the sampled positive events, and
    (hits, ranked) per curve step: the open step's, and the last closed ones'."""

    steps: deque[tuple[int, int]]
    hits: int = 0
    ndcg: float = 0.0
    n: int = 0
    step_hits: int = 0
    step_n: int = 0

    def close_step(self) -> None:
        self.steps.append((self.step_hits, self.step_n))  # the oldest falls off (maxlen)
        self.step_hits = self.step_n = 0

    def recent(self, with_open_step: bool) -> tuple[int, int]:
        """Hits and ranked events in the window: the closed steps, and for the point
        after the last event the open one too (pushing out the oldest of a full window)."""
        steps = list(self.steps)
        if with_open_step:
            full = len(steps) == self.steps.maxlen
            steps = [*steps[full:], (self.step_hits, self.step_n)]
        return sum(h for h, _ in steps), sum(n for _, n in steps)


class PrequentialReplay:
    """Test-then-train over a log, for every engagement candidate and taste ranker."""

    def __init__(
        self,
        catalog: Mapping[str, TrackInfo],
        engagement: Sequence[str] = (DEFAULT,),
        k: int = 10,
        hit_every: int = 10,
        snapshot_every: int = 1_000,
        taste_factors: int = 16,
        negatives: int = 4,
        quality_window: int = 1_000_000,
        curve_every: int = 500,
        curve_window: int | None = None,
        seed: int = 7,
    ) -> None:
        """``curve_window`` is in events, ``4 * curve_every`` when not given."""
        self.catalog = dict(catalog)
        self.k, self.hit_every, self.snapshot_every = k, hit_every, snapshot_every
        self.curve_every = _whole(curve_every, "curve_every")
        window = 4 * self.curve_every if curve_window is None else curve_window
        self.curve_window = _whole(window, "curve_window")
        self.negatives = negatives
        self.models: dict[str, RiverEngagementModel] = {
            name: make_engagement_model(name) for name in engagement
        }
        self.models[POPULARITY_ONLY] = make_engagement_model("logistic")
        self.scores = {
            name: _Scores(
                QualityReport(name, "offline", window=quality_window),
                deque(maxlen=self.curve_window),
            )
            for name in self.models
        }
        self.users: dict[str, UserFeatures] = {}
        self.tracks: dict[str, TrackFeatures] = {}
        self.taste = TasteModel(k=taste_factors, seed=seed)
        self.taste.set_catalog({t: (i.artist_id, i.genres) for t, i in self.catalog.items()})
        self.user_vectors: dict[str, Vector] = {}
        self.biased_mf = reco.BiasedMF(n_factors=taste_factors, seed=seed)
        self.popularity = DecayedPopularity()
        self.track_ids = list(self.catalog)
        self.position = {track_id: i for i, track_id in enumerate(self.track_ids)}
        steps = -(-self.curve_window // self.curve_every)  # the window in whole steps
        self.ranks = {
            name: _Ranks(deque(maxlen=steps))
            for name in ("taste", "BiasedMF", "popularity", "random")
        }
        self.curve: list[dict[str, Any]] = []
        self.rng = random.Random(seed)
        self.events = self.positives = 0
        #: The taste model's track matrix and biases as of its last snapshot.
        self._snapshot: tuple[np.ndarray, np.ndarray] | None = None

    def process(self, event: Mapping[str, Any]) -> None:
        """Score, then learn, one event (events must come in event-time order)."""
        user_id, track_id, ts = event["user_id"], event["track_id"], int(event["ts"])
        user = self.users.setdefault(user_id, UserFeatures())
        track = self.tracks.setdefault(track_id, TrackFeatures())
        info = self.catalog.get(track_id)
        label = engagement_label(event, info)
        vector = self.user_vectors.get(user_id)
        if vector is None:
            vector = self.taste.new_user_vector(track_id)
        stats = track.read(ts)
        similarity = float(vector @ self.taste.track_vector(track_id))
        x = build_example(user, event, info, stats, similarity)
        self._score_engagement(x, {"t_popularity_log": x["t_popularity_log"]}, label)
        if label and info is not None and self.events % self.hit_every == 0:
            self._score_ranking(user_id, vector, track_id, ts)
        self._learn(event, user_id, vector, track_id, label)
        user.update(event, info)
        track.update(event)
        self.events += 1
        self.positives += label
        if self.events % self.curve_every == 0:
            for ranks in self.ranks.values():
                ranks.close_step()
            self.curve.append(self._point(with_open_step=False))

    def _score_engagement(
        self, x: dict[str, float], popularity_x: dict[str, float], y: int
    ) -> None:
        for name, model in self.models.items():
            inputs = popularity_x if name == POPULARITY_ONLY else x
            started = time.perf_counter()
            p = model.predict_one(inputs)
            model.learn_one(inputs, y)
            scores = self.scores[name]
            scores.seconds += time.perf_counter() - started
            scores.update(bool(y), p)

    def _score_ranking(self, user_id: str, vector: Vector, track_id: str, ts: int) -> None:
        if self._snapshot is None or self.events % self.snapshot_every == 0:
            matrix = self.taste.track_matrix(self.track_ids)
            self._snapshot = matrix, self.taste.biases(self.track_ids)
        matrix, bias = self._snapshot
        taste = matrix @ vector + bias
        mf = [self.biased_mf.predict_one(user_id, t) for t in self.track_ids]
        popular = [t for t, _ in self.popularity.rank(self.k, ts)]  # only the top k can hit
        position = self.position[track_id]
        self._rank("taste", _rank_of(taste, position))
        self._rank("BiasedMF", _rank_of(np.asarray(mf), position))
        self._rank("popularity", popular.index(track_id) if track_id in popular else self.k)
        drawn = self.rng.sample(self.track_ids, min(self.k, len(self.track_ids)))
        self._rank("random", drawn.index(track_id) if track_id in drawn else self.k)

    def _rank(self, name: str, rank: int) -> None:
        ranks = self.ranks[name]
        ranks.n += 1
        ranks.step_n += 1
        if rank < self.k:
            ranks.hits += 1
            ranks.step_hits += 1
            ranks.ndcg += 1.0 / math.log2(rank + 2)

    def _point(self, with_open_step: bool) -> dict[str, Any]:
        """The curve's point now: each candidate's and ranker's recent figures."""
        engagement = {name: _recent_figures(s.recent) for name, s in self.scores.items()}
        ranking = {}
        for name, ranks in self.ranks.items():
            hits, n = ranks.recent(with_open_step)
            ranking[name] = {f"hit_rate@{self.k}": hits / n if n else None, "events_ranked": n}
        return {"events": self.events, "engagement": engagement, "ranking": ranking}

    def _learn(
        self, event: Mapping[str, Any], user_id: str, vector: Vector, track: str, y: int
    ) -> None:
        # The same negatives for both factor models: the anchor is not handicapped.
        negatives = self.taste.sample_negatives(self.rng, self.track_ids, self.negatives)
        self.user_vectors[user_id] = self.taste.learn(vector, track, y, negatives)
        self.biased_mf.learn_one(user_id, track, float(y))
        for negative in negatives:
            self.biased_mf.learn_one(user_id, negative, 0.0)
        self.popularity.learn_one(event)

    def report(self) -> dict[str, Any]:
        """Every figure, JSON-safe: per engagement candidate ROC AUC, log loss, ECE and
        µs per event (predict + learn); per ranker hit-rate@k and NDCG@k; and the
        ``curve`` of recent figures over the replay, with its ``curve_window``."""
        engagement = {
            name: {
                **s.quality.gauges(),
                "us_per_event": 1e6 * s.seconds / max(1, s.quality.examples),
            }
            for name, s in self.scores.items()
        }
        ranking = {
            name: {
                f"hit_rate@{self.k}": r.hits / r.n if r.n else None,
                f"ndcg@{self.k}": r.ndcg / r.n if r.n else None,
                "events_ranked": r.n,
            }
            for name, r in self.ranks.items()
        }
        curve = list(self.curve)
        if self.events % self.curve_every:  # the curve ends where the replay did
            curve.append(self._point(with_open_step=True))
        return {
            "events": self.events,
            "positive_share": self.positives / self.events if self.events else None,
            "engagement": engagement,
            "ranking": ranking,
            "curve": curve,
            "curve_window": self.curve_window,
        }


def replay(
    events: Iterable[Mapping[str, Any]], catalog: Mapping[str, TrackInfo], **options: Any
) -> dict[str, Any]:
    """:class:`PrequentialReplay` over ``events``, its report."""
    run = PrequentialReplay(catalog, **options)
    for event in events:
        run.process(event)
    return run.report()


def _recent_figures(pairs: Iterable[tuple[bool, float]]) -> dict[str, float | None]:
    """ROC AUC and log loss of (label, probability) pairs, as the live
    :class:`~online_models.quality.QualityReport` computes them (ties count half,
    probabilities clipped to [EPSILON, 1 - EPSILON], None when unknown), at once with
    NumPy: a point costs O(window log window) rather than each event O(window).

    >>> _recent_figures([(True, 0.8), (False, 0.3), (True, 0.6), (False, 0.7)])["roc_auc"]
    0.75
    """
    table = np.array(list(pairs), dtype=float).reshape(-1, 2)
    y, p = table[:, 0].astype(bool), table[:, 1]
    if not len(p):
        return {"roc_auc": None, "log_loss": None}
    clipped = np.clip(p, EPSILON, 1.0 - EPSILON)
    losses = np.where(y, -np.log(clipped), -np.log1p(-clipped))
    return {"roc_auc": _auc(y, p), "log_loss": float(losses.mean())}


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """The Mann-Whitney form of ROC AUC: from the positives' ranks, ties averaged."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, a tie's mean rank
    won = ranks[y].sum() - positives * (positives + 1) / 2
    return float(won / (positives * negatives))


def _whole(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number >= 1, got {value!r}")
    return value


def _rank_of(scores: np.ndarray, position: int) -> int:
    """Place of ``scores[position]`` in descending order (ties count against it)."""
    return int(np.count_nonzero(scores > scores[position]))


__all__ = ["POPULARITY_ONLY", "PrequentialReplay", "replay"]
