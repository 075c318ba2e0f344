"""Offline evaluation of the lists each policy would have published, side by side.

:mod:`online_models.evaluation` scores rankers on one number each; here whole
lists are scored, the way users meet them. A log is replayed in event-time
order, and on a *sampled positive event* (below) every policy builds the list
it would have shown the user **just before** the event: from the user's state
before it, at the event's time, with the event's context and id. Then every
model learns the event, as it would live.

The policies (:data:`POLICIES`), on the same events and users:

* ``random``: ``size`` catalogue tracks drawn by a seeded generator, none the
  user played or liked recently (what the list builder removes);
* ``popularity``: the top ``size`` of the trending board: each track's decayed
  engagement (:class:`~features.TrackFeatures` ``popularity``), ranked by a
  :class:`~online_models.trending.PartitionTop` merged into a
  :class:`~online_models.trending.TrendingBoard`, as the worker keeps them;
* ``biasedmf``: River's ``reco.BiasedMF`` alone, the top ``size`` of the whole
  catalogue by its score; it learns as in :mod:`online_models.evaluation` (every
  event, and ``negatives`` uniform draws as 0);
* ``tunestream``: the :class:`~online_models.recommender.ListBuilder` with the
  default :class:`~online_models.recommender.ListConfig`, the
  :class:`~online_models.serving.ServingModels` of a
  :class:`~online_models.learner.Learner` snapshot (one every ``refresh_every``
  events, the worker's few seconds; untrained before the first), the user's
  taste vector as the worker keeps it (its own step per event,
  :meth:`~online_models.serving.ServingModels.example`, stored as float32), the
  board's top ``trending_candidates`` as trending, no editorial sets, and the
  snapshot's exploration policy for the exploration slot;
* ``tunestream-no-rerank``: the same, with the re-ranking rules relaxed
  (:func:`unconstrained_rerank`: no artist or genre cap, no MMR, no exposure cap,
  no rotation cap, no discovery slot) and no exploration slot: what
  responsibility costs. The
  removals (recently played, skipped, blocked) stay.

The offline replay has no users to answer the exploration slot, so the policy
stays as the learner starts it (no feedback reaches it).

**Which events.** A positive event is a save or a play heard through
(:func:`features.event_types.engagement_label` is 1) of a catalogued track. The
first ``warmup_events`` events only train; after them, every
``sample_every``-th positive event is listed, until ``max_lists`` are made.
:func:`sample_every` picks the stride that spreads ``max_lists`` over a log's
positives (:func:`count_positives`), so the sample covers the whole replay
rather than its start. Everything is seeded: the same log, catalog and
configuration give the same figures.

**Definitions**, per policy (lists of ``size`` items, 10 by default; the keys say 10):

* ``hit_rate_at_10``: the share of lists holding the event's track;
* ``ndcg_at_10``: with the one relevant track at 1-based rank ``r`` in the list,
  ``1 / log2(r + 1)``, 0 when absent (:func:`hit_and_ndcg`); the mean over lists;
* ``coverage``: distinct tracks shown in any list / catalogue size;
* ``distinct_artists``, ``distinct_genres``: intra-list diversity, the mean over
  lists of :func:`~online_models.list_quality.list_stats`'s counts;
* ``artist_gini``: :func:`~online_models.list_quality.gini` of the per-artist
  counts of every item shown, over every artist of the catalogue (one never
  shown counts 0): a policy that shows a few artists is concentrated, however
  evenly it shows them. ``artist_gini_exposed`` is the live gauge's definition
  (:class:`~online_models.list_quality.ExposureWindow`): among the artists shown
  at least once only;
* ``discovery_share``: items whose artist the user had never played (not among
  :attr:`features.UserFeatures.first_play_ms`) / items shown, by the same test
  for every policy (the builder's own ``discovery`` flag is not used);
* ``lists``: lists made (each policy makes one per sampled event);
* ``exposure_per_artist``: the items shown of each artist shown at least once,
  ascending (the artists never shown are the report's ``catalogue_artists`` less
  their number): what ``artist_gini`` is computed from, for a Lorenz curve.

Per model version, ``by_snapshot``: for each learner snapshot the ``tunestream``
lists were built with (0: the untrained models, before the first; snapshot ``v``
serves from event ``v * refresh_every``), the lists made while it served and each
policy's ``hit_rate_at_10`` over them (the baselines on the same events, for
comparison). Snapshots under which no list was made are left out.

Recently played tracks. Both ``tunestream`` policies (and ``random``) leave out
what the user played or liked recently (the list builder's
``recently_played`` removal: among the user's last 20 plays and 12 liked tracks,
those within ``replay_after_s``, 10 minutes by default), so
they can never hit a positive event that *repeats* one of those; ``popularity``
and ``biasedmf`` keep them. The report gives the share of such events
(``repeat_share``) and, per policy, ``hit_rate_at_10_not_recent``: the hit-rate
over the other sampled events only.

Memory bound: per user, the rolling features (:mod:`features.user`, bounded) and
two factor vectors (BiasedMF's and the taste model's); per track, its rolling
statistics, the models' rows and one exposure count; per artist one exposure
count per policy; the trending top ``trending_top_k``; per snapshot one count of
lists and hits per policy (one snapshot per ``refresh_every`` events). Nothing else
grows with the number of events or lists. Cost (measured on the 2-core development machine,
under load, 2,000 tracks): about 0.5 ms an event (the learner's step, the
worker's user step, BiasedMF's ``1 + negatives`` steps, the rolling features)
and 5 ms more a sampled event (two list builds and one BiasedMF scoring of the
whole catalogue): 20,000 events with 1,800 lists take some 20 s.

>>> from features import TrackInfo
>>> catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 4}", ("rock",), 200_000) for i in range(30)}
>>> run = ListReplay(catalog, ListEvalConfig(size=5, warmup_events=20, refresh_every=10))
>>> for i in range(60):
...     run.process({"event_id": f"e{i}", "user_id": f"u{i % 3}", "track_id": f"t{i % 7}",
...                  "ts": i * 60_000, "type": "save"})
>>> report = run.report()
>>> report["lists_made"], sorted(report["policies"]["tunestream"])[:3]
(40, ['artist_gini', 'artist_gini_exposed', 'coverage'])
>>> [(s["snapshot"], s["from_event"], s["lists"]) for s in report["by_snapshot"]]
[(2, 20, 10), (3, 30, 10), (4, 40, 10), (5, 50, 10)]
>>> hit_and_ndcg(["t3", "t1", "t2"], "t1")  # rank 2: 1 / log2(3)
(True, 0.6309297535714575)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from river import reco

from features import TrackFeatures, TrackInfo, UserFeatures
from features.event_types import engagement_label
from online_models.learner import Learner
from online_models.list_quality import ListItem, ShownItem, gini, list_stats
from online_models.recommender import ListBuilder, ListConfig, ListRequest, recently_heard
from online_models.reranking import RerankConfig
from online_models.serving import ServingModels
from online_models.trending import PartitionTop, TrendingBoard

RANDOM: Final = "random"
POPULARITY: Final = "popularity"
BIASED_MF: Final = "biasedmf"
TUNESTREAM: Final = "tunestream"
NO_RERANK: Final = "tunestream-no-rerank"
#: Every policy, in the report's order.
POLICIES: Final = (RANDOM, POPULARITY, BIASED_MF, TUNESTREAM, NO_RERANK)


@dataclass(frozen=True)
class ListEvalConfig:
    """What is replayed, how often lists are made, and the models' settings.

    ``trending_candidates`` and ``trending_top_k`` are the worker's defaults
    (``TUNESTREAM_TRENDING_TOP_K``); ``half_life_s`` its popularity half-life.
    """

    size: int = 10
    warmup_events: int = 0
    #: list every n-th positive event after the warm-up
    sample_every: int = 1
    max_lists: int = 2_000
    #: events between two learner snapshots the lists are built with
    refresh_every: int = 1_000
    taste_factors: int = 16
    negatives: int = 4
    trending_candidates: int = 100
    trending_top_k: int = 100
    half_life_s: float = 3600.0
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("size", "sample_every", "refresh_every", "taste_factors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("warmup_events", "max_lists", "negatives"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if self.trending_top_k < self.size:
            raise ValueError(
                f"trending_top_k ({self.trending_top_k}) must be at least size ({self.size})"
            )


def unconstrained_rerank(size: int = 10) -> RerankConfig:
    """Re-ranking with its rules relaxed: caps at the list's size, MMR off, no exposure
    cap, no rotation cap, no discovery slot (the removals stay)."""
    return RerankConfig(
        size=size,
        max_per_artist=size,
        max_per_genre=size,
        mmr_lambda=1.0,
        max_popular_share=1.0,
        discovery_slot=False,
        max_rotation=size,
    )


def hit_and_ndcg(track_ids: Sequence[str], target: str) -> tuple[bool, float]:
    """Is ``target`` in the list, and its NDCG with one relevant item:
    ``1 / log2(rank + 1)`` at 1-based ``rank``, 0.0 when absent.

    >>> hit_and_ndcg(["a", "b"], "a"), hit_and_ndcg(["a", "b"], "c")
    ((True, 1.0), (False, 0.0))
    """
    for rank, track_id in enumerate(track_ids, 1):
        if track_id == target:
            return True, 1.0 / math.log2(rank + 1)
    return False, 0.0


@dataclass
class ListTally:
    """One policy's lists, summed: hits, NDCG, diversity, discovery and exposure.

    Memory: the distinct tracks shown and one count per artist shown.

    >>> tally = ListTally()
    >>> tally.add([ListItem("t1", "a1", ("rock",), False), ListItem("t2", "a1", ("pop",), True)],
    ...           target="t2")
    >>> tally.add([ListItem("t3", "a2", ("rock",), True)], target="t9", recent=True)
    >>> figures = tally.figures(catalogue_tracks=6, catalogue_artists=4)
    >>> figures["hit_rate_at_10"], figures["coverage"], figures["distinct_artists"]
    (0.5, 0.5, 1.0)
    >>> round(figures["ndcg_at_10"], 4), figures["hit_rate_at_10_not_recent"]
    (0.3155, 1.0)
    >>> round(figures["artist_gini"], 4), round(figures["artist_gini_exposed"], 4)
    (0.5833, 0.1667)
    """

    lists: int = 0
    hits: int = 0
    ndcg: float = 0.0
    #: lists and hits for targets the user had not played or liked recently
    lists_not_recent: int = 0
    hits_not_recent: int = 0
    items: int = 0
    discoveries: int = 0
    artists_per_list: int = 0
    genres_per_list: int = 0
    tracks: set[str] = field(default_factory=set)
    artists: Counter[str] = field(default_factory=Counter)

    def add(self, items: Sequence[ShownItem], target: str, recent: bool = False) -> None:
        """Count one list shown just before a positive event on ``target``; ``recent``:
        the user had played or liked ``target`` recently."""
        hit, ndcg = hit_and_ndcg([item.track_id for item in items], target)
        stats = list_stats(items)
        self.lists += 1
        self.hits += hit
        self.ndcg += ndcg
        if not recent:
            self.lists_not_recent += 1
            self.hits_not_recent += hit
        self.items += stats.size
        self.discoveries += sum(1 for item in items if item.discovery)
        self.artists_per_list += stats.distinct_artists
        self.genres_per_list += stats.distinct_genres
        for item in items:
            self.tracks.add(item.track_id)
            if item.artist_id is not None:
                self.artists[item.artist_id] += 1

    def figures(self, catalogue_tracks: int, catalogue_artists: int) -> dict[str, Any]:
        """The definitions of the module docstring; None where no list was made."""
        n, fresh = self.lists, self.lists_not_recent
        counts = np.fromiter(self.artists.values(), np.float64, len(self.artists))
        unshown = np.zeros(max(0, catalogue_artists - len(counts)))
        return {
            "hit_rate_at_10": self.hits / n if n else None,
            "ndcg_at_10": self.ndcg / n if n else None,
            "coverage": len(self.tracks) / catalogue_tracks if catalogue_tracks else None,
            "distinct_artists": self.artists_per_list / n if n else None,
            "distinct_genres": self.genres_per_list / n if n else None,
            "artist_gini": gini(np.concatenate([counts, unshown])) if n else None,
            "discovery_share": self.discoveries / self.items if self.items else None,
            "lists": n,
            "hit_rate_at_10_not_recent": self.hits_not_recent / fresh if fresh else None,
            "artist_gini_exposed": gini(counts) if n else None,
            "exposure_per_artist": sorted(self.artists.values()),
        }


def is_positive(event: Mapping[str, Any], catalog: Mapping[str, TrackInfo]) -> bool:
    """A positive event of a catalogued track: one a list can be judged on."""
    info = catalog.get(str(event["track_id"]))
    return info is not None and engagement_label(event, info) == 1


def count_positives(
    events: Iterable[Mapping[str, Any]], catalog: Mapping[str, TrackInfo], warmup_events: int = 0
) -> int:
    """The positive events after the first ``warmup_events``: those a list can be made for."""
    return sum(
        1 for i, event in enumerate(events) if i >= warmup_events and is_positive(event, catalog)
    )


def sample_every(positives: int, max_lists: int) -> int:
    """The stride that spreads at most ``max_lists`` lists evenly over ``positives``.

    >>> sample_every(10_000, 2_000), sample_every(10_001, 2_000), sample_every(50, 2_000)
    (5, 6, 1)
    """
    if max_lists <= 0:
        return 1
    return max(1, -(-positives // max_lists))


def biased_mf_scores(model: reco.BiasedMF, user_id: str, track_ids: Sequence[str]) -> NDArray[Any]:
    """``model.predict_one(user_id, t)`` for every ``t`` at once: one matrix product.

    Like ``predict_one``, it gives an unknown user or track its starting values.

    >>> model = reco.BiasedMF(n_factors=3, seed=1)
    >>> model.learn_one("u1", "t1", 1.0)
    >>> scores = biased_mf_scores(model, "u1", ["t1", "t2"])
    >>> bool(np.allclose(scores, [model.predict_one("u1", t) for t in ("t1", "t2")]))
    True
    """
    user = model.u_latents[user_id]
    offset = model.global_mean.get() + model.u_biases[user_id]
    latents = np.stack([model.i_latents[t] for t in track_ids])
    biases = np.fromiter((model.i_biases[t] for t in track_ids), np.float64, len(track_ids))
    return offset + biases + latents @ user


@dataclass(frozen=True)
class _Moment:
    """What every policy is given: the user before the event, and the event."""

    user_id: str
    user: UserFeatures
    vector: NDArray[np.float64] | None
    ts_ms: int
    context: Mapping[str, Any]
    draw_key: str
    played: frozenset[str]


class ListReplay:
    """Replays a log and scores the lists every policy of :data:`POLICIES` would have
    shown just before its sampled positive events."""

    def __init__(
        self, catalog: Mapping[str, TrackInfo], config: ListEvalConfig | None = None
    ) -> None:
        self.config = config = config or ListEvalConfig()
        self.catalog = dict(catalog)
        self.track_ids = list(self.catalog)
        self.catalogue_artists = len({info.artist_id for info in self.catalog.values()})
        self.users: dict[str, UserFeatures] = {}
        #: each user's taste vector as the worker stores it (float32)
        self.vectors: dict[str, NDArray[np.float32]] = {}
        self.tracks: dict[str, TrackFeatures] = {}
        self.top = PartitionTop(config.trending_top_k, config.half_life_s)
        self.board = TrendingBoard(config.half_life_s)
        self.learner = Learner(taste_factors=config.taste_factors)
        self.learner.set_catalog({t: (i.artist_id, i.genres) for t, i in self.catalog.items()})
        self.models = ServingModels.untrained(config.taste_factors)
        self.models.set_catalog(self.catalog)
        self.biased_mf = reco.BiasedMF(n_factors=config.taste_factors, seed=config.seed)
        self.builders = {
            TUNESTREAM: ListBuilder(ListConfig(rerank=RerankConfig(size=config.size))),
            NO_RERANK: ListBuilder(ListConfig(rerank=unconstrained_rerank(config.size))),
        }
        self.tallies = {name: ListTally() for name in POLICIES}
        #: per snapshot version: lists made while it served, and each policy's hits
        self.version_lists: Counter[int] = Counter()
        self.version_hits: dict[str, Counter[int]] = {name: Counter() for name in POLICIES}
        self.rng = random.Random(config.seed)  # BiasedMF's negatives
        self.draws = random.Random(f"random-lists:{config.seed}")  # the random policy
        self.events = self.snapshots = 0
        self.positives_after_warmup = self.repeats = 0

    def __repr__(self) -> str:
        return f"ListReplay({len(self.catalog)} tracks, {self.config!r})"

    @property
    def lists_made(self) -> int:
        return self.tallies[RANDOM].lists

    def process(self, event: Mapping[str, Any]) -> None:
        """List (if the event is sampled), then learn, one event; in event-time order."""
        user_id, track_id, ts = str(event["user_id"]), str(event["track_id"]), int(event["ts"])
        info = self.catalog.get(track_id)
        user = self.users.setdefault(user_id, UserFeatures())
        label = engagement_label(event, info)
        if label and info is not None and self._sampled():
            self._list(self._moment(event, user_id, user, ts), track_id)
        self._learn(event, user_id, user, info)
        user.update(event, info)
        track = self.tracks.setdefault(track_id, TrackFeatures(self.config.half_life_s))
        track.update(event)
        self.top.offer_track(track_id, track)
        self.events += 1
        if self.events % self.config.refresh_every == 0:
            self._refresh(ts)

    def _sampled(self) -> bool:
        config = self.config
        if self.events < config.warmup_events or self.lists_made >= config.max_lists:
            return False
        self.positives_after_warmup += 1
        return (self.positives_after_warmup - 1) % config.sample_every == 0

    def _moment(
        self, event: Mapping[str, Any], user_id: str, user: UserFeatures, ts: int
    ) -> _Moment:
        stored = self.vectors.get(user_id)
        context = event.get("context")
        return _Moment(
            user_id,
            user,
            None if stored is None else stored.astype(np.float64),
            ts,
            context if isinstance(context, Mapping) else {},
            str(event.get("event_id", self.events)),
            frozenset(recently_heard(user, ts, self.builders[TUNESTREAM].config.rerank)),
        )

    def _list(self, moment: _Moment, target: str) -> None:
        """Every policy's list for ``moment``, counted against ``target``."""
        if self.top.changed:  # the worker publishes its partitions' tops every few seconds
            self.board.merge(self.top.snapshot(partition=0))
        recent = target in moment.played
        self.repeats += recent
        size, known = self.config.size, moment.user.first_play_ms
        trending = self.board.rank(self.config.trending_candidates, moment.ts_ms)
        chosen = {
            RANDOM: self._random(moment),
            POPULARITY: [t for t, _ in trending[:size]],
            BIASED_MF: self._biased_mf(moment),
        }
        request = ListRequest(
            moment.user, moment.vector, moment.ts_ms, moment.context, moment.draw_key
        )
        for name, builder in self.builders.items():
            policy = self.models.exploration if name == TUNESTREAM else None
            built = builder.build(request, self.models, trending, (), policy)
            chosen[name] = [item.track_id for item in built.items]
        self.version_lists[self.snapshots] += 1
        for name, track_ids in chosen.items():  # one discovery test for every policy
            items = [self._item(t, known) for t in track_ids]
            self.tallies[name].add(items, target, recent)
            self.version_hits[name][self.snapshots] += target in track_ids

    def _random(self, moment: _Moment) -> list[str]:
        n = min(len(self.track_ids), self.config.size + len(moment.played))
        drawn = self.draws.sample(self.track_ids, n)
        return [t for t in drawn if t not in moment.played][: self.config.size]

    def _biased_mf(self, moment: _Moment) -> list[str]:
        scores = biased_mf_scores(self.biased_mf, moment.user_id, self.track_ids)
        size = min(self.config.size, len(scores))
        top = np.argpartition(-scores, size - 1)[:size]
        top = top[np.lexsort((top, -scores[top]))]  # best first, ties: catalogue order
        return [self.track_ids[i] for i in top]

    def _item(self, track_id: str, known: Mapping[str, int]) -> ListItem:
        info = self.catalog.get(track_id)
        if info is None:
            return ListItem(track_id, None, (), False)
        return ListItem(track_id, info.artist_id, info.genres, info.artist_id not in known)

    def _learn(
        self,
        event: Mapping[str, Any],
        user_id: str,
        user: UserFeatures,
        info: TrackInfo | None,
    ) -> None:
        """Every model learns the event: the worker's user step and the learner (for
        both ``tunestream`` policies), then BiasedMF."""
        config = self.config
        keyed = {**event, "event_id": str(event.get("event_id", self.events))}
        example, vector = self.models.example(
            user, keyed, info, self.vectors.get(user_id), self.track_ids, config.negatives
        )
        self.vectors[user_id] = vector.astype(np.float32)
        self.learner.learn(example, partition=0, offset=self.events)
        track_id, y = example.track_id, float(example.y)
        self.biased_mf.learn_one(user_id, track_id, y)
        for _ in range(config.negatives):
            negative = self.track_ids[self.rng.randrange(len(self.track_ids))]
            self.biased_mf.learn_one(user_id, negative, 0.0)

    def _refresh(self, ts_ms: int) -> None:
        """The learner's snapshot becomes what the lists are built with."""
        models = ServingModels.from_snapshot(self.learner.snapshot(created_at_ms=ts_ms))
        models.set_catalog(self.catalog)
        self.models = models
        self.snapshots += 1

    def report(self) -> dict[str, Any]:
        """JSON-safe: how the events were sampled, and each policy's figures."""
        config, made = self.config, self.lists_made
        return {
            "events": self.events,
            "size": config.size,
            "warmup_events": config.warmup_events,
            "sample_every": config.sample_every,
            "max_lists": config.max_lists,
            "refresh_every": config.refresh_every,
            "snapshots": self.snapshots,
            "lists_made": made,
            "repeat_share": self.repeats / made if made else None,
            "catalogue_tracks": len(self.catalog),
            "policies": {
                name: tally.figures(len(self.catalog), self.catalogue_artists)
                for name, tally in self.tallies.items()
            },
            "catalogue_artists": self.catalogue_artists,
            "by_snapshot": self._by_snapshot(),
        }

    def _by_snapshot(self) -> list[dict[str, Any]]:
        """Per snapshot version that served lists: when it began, its lists, each
        policy's hit-rate over them."""
        return [
            {
                "snapshot": version,
                "from_event": version * self.config.refresh_every,
                "lists": lists,
                "hit_rate_at_10": {
                    name: hits[version] / lists for name, hits in self.version_hits.items()
                },
            }
            for version, lists in sorted(self.version_lists.items())
        ]


def replay_lists(
    events: Iterable[Mapping[str, Any]],
    catalog: Mapping[str, TrackInfo],
    config: ListEvalConfig | None = None,
) -> dict[str, Any]:
    """:class:`ListReplay` over ``events``, its report."""
    run = ListReplay(catalog, config)
    for event in events:
        run.process(event)
    return run.report()


__all__ = [
    "BIASED_MF",
    "NO_RERANK",
    "POLICIES",
    "POPULARITY",
    "RANDOM",
    "TUNESTREAM",
    "ListEvalConfig",
    "ListReplay",
    "ListTally",
    "biased_mf_scores",
    "count_positives",
    "hit_and_ndcg",
    "is_positive",
    "replay_lists",
    "sample_every",
    "unconstrained_rerank",
]
