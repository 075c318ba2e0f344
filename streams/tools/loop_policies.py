"""The recommenders the closed-loop listeners meet: one small protocol, five policies.

A policy answers :meth:`Policy.lists_for` (the list a listener reads now: its
``recommendation_id`` and track ids, or ``None`` and ``[]`` when it has none) and learns
from :meth:`Policy.observe` (the events the listeners publish, in event-time order per
listener).

* ``tunestream`` (:class:`PlannerPolicy` with the worker's default settings): the
  worker's own :class:`~streams.pipeline.message.MessagePlanner`, in process, on the
  events' clock, one message per event, exactly as a worker plans and applies them
  (decode, validate, dedupe, features, training example and taste step, exploration
  credit, the list when one is due), with the worker's track side and trending timer
  (:mod:`streams.tools.in_process`) and the demo's editorial sets. Around it, the
  learner process: a :class:`~online_models.learner.Learner` learns every example and
  exploration feedback and publishes a signed snapshot every ``snapshot_every_s`` of
  event time, which the planner's :class:`~streams.pipeline.learning.ModelSlot`
  verifies and swaps in. The listener reads the newest list the planner published for
  them (the ``recommendations`` topic's newest per user).
* ``no-exploration-rerank``: the same with re-ranking relaxed as in
  :func:`online_models.list_evaluation.unconstrained_rerank` (no artist or genre cap, no
  MMR, no exposure or rotation cap, no discovery slot) and exploration off: what the
  worker does with ``TUNESTREAM_MAX_PER_ARTIST=10 TUNESTREAM_MAX_PER_GENRE=10
  TUNESTREAM_MMR_LAMBDA=1 TUNESTREAM_MAX_POPULAR_SHARE=1 TUNESTREAM_DISCOVERY_SLOT=off
  TUNESTREAM_MAX_ROTATION=10 TUNESTREAM_EXPLORATION=off`` (:func:`ablation_settings`).
  The removals (recently heard, skipped, blocked) stay.
* ``random``: ``size`` catalogue tracks, seeded.
* ``popularity``: the top ``size`` of a trending board fed by every listener's events
  (the worker's ``popularity-v1``: decayed engagement, one hour's half-life), the same
  for everyone.
* ``oracle``: the ``size`` tracks of highest true value
  (:meth:`~streams.tools.listeners.Listener.values`) for this listener, context and
  moment: the simulator's own preferences, the upper bound of a one-step greedy policy.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import numpy as np

from features import TrackFeatures, TrackInfo
from features.editorial import EditorialSet
from online_models.learner import Learner
from online_models.snapshot import encode_snapshot
from online_models.trending import PartitionTop, TrendingBoard
from streams.pipeline.learning import ModelSlot
from streams.pipeline.message import Effects
from streams.settings import Settings
from streams.tools.in_process import Rig, rig_of
from streams.tools.listeners import Catalog, Context, Listener

Event = dict[str, Any]

TUNESTREAM: Final = "tunestream"
NO_EXPLORATION_RERANK: Final = "no-exploration-rerank"
RANDOM: Final = "random"
POPULARITY: Final = "popularity"
ORACLE: Final = "oracle"
#: Every policy, in the report's order.
POLICIES: Final = (TUNESTREAM, NO_EXPLORATION_RERANK, RANDOM, POPULARITY, ORACLE)
#: Signs the in-process snapshots (never leaves the process; not a secret).
_LOCAL_KEY: Final = b"tunestream-closed-loop-in-process-snapshots"


class Policy(Protocol):
    """What a closed-loop listener asks of a recommender."""

    name: str

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        """The list the listener reads now: ``(recommendation_id, track_ids)``."""
        ...

    def observe(self, events: Sequence[Event]) -> None:
        """The listeners' events, each user's in event-time order."""
        ...


def ablation_settings(settings: Settings) -> Settings:
    """``settings`` with re-ranking relaxed and exploration off (the module docstring)."""
    size = settings.list_size
    return settings.replace(
        max_per_artist=size,
        max_per_genre=size,
        mmr_lambda=1.0,
        max_popular_share=1.0,
        discovery_slot="off",
        max_rotation=size,
        exploration="off",
    )


def catalog_infos(catalog: Catalog) -> dict[str, TrackInfo]:
    """The catalog as the worker holds it (from the ``track-catalog`` records)."""
    return {str(r["track_id"]): TrackInfo.from_record(r) for r in catalog.records()}


class PlannerPolicy:
    """The worker's planner in process (:func:`~streams.tools.in_process.rig_of`, with its
    track side), and the learner around it."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        catalog: Catalog,
        start_ms: int,
        editorial: Sequence[EditorialSet] = (),
        snapshot_every_s: float = 3600.0,
    ) -> None:
        self.name = name
        self.settings = settings
        infos = catalog_infos(catalog)
        self.slot = ModelSlot(_LOCAL_KEY, settings.taste_factors, infos)
        self.learner = Learner(
            taste_factors=settings.taste_factors,
            track_half_life_s=settings.popularity_half_life_s,
        )
        self.learner.set_catalog({t: (i.artist_id, i.genres) for t, i in infos.items()})
        board = TrendingBoard(settings.popularity_half_life_s)
        self.rig: Rig = rig_of(settings, infos, board, self.slot, start_ms, track_side=True)
        for editorial_set in editorial:
            self.rig.planner.lists.editorial.put(editorial_set)
        self.latest: dict[str, tuple[str, list[str]]] = {}
        self.snapshot_every_ms = int(snapshot_every_s * 1000)
        self.next_snapshot_ms = start_ms + self.snapshot_every_ms
        self.clock_ms = start_ms
        #: events the planner refused (dead-lettered): none, unless something is wrong
        self.refused = 0
        self.lists = 0
        self.snapshots = 0
        #: the items of every list published, by retrieval source
        self.sources: Counter[str] = Counter()

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        latest = self.latest.get(user_id)
        return (None, []) if latest is None else (latest[0], list(latest[1]))

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            self.clock_ms = max(self.clock_ms, int(event["ts"]))
            if self.clock_ms >= self.next_snapshot_ms:
                self._snapshot()
            self.rig.feed([event], self._effects)

    def _effects(self, effects: Effects) -> None:
        """What leaves the worker: examples and feedback to the learner, the list to the
        listener."""
        self.refused += len(effects.outcome.rejections)
        if effects.examples or effects.feedback:
            self.learner.learn_many(effects.examples, 0, self.rig.offset, effects.feedback)
        record = effects.recommendation
        if record is not None:
            items = [str(item["track_id"]) for item in record["items"]]
            self.latest[str(record["user_id"])] = (str(record["recommendation_id"]), items)
            self.lists += 1
            self.sources.update(str(item["source"]) for item in record["items"])

    def _snapshot(self) -> None:
        """The learner publishes; the worker verifies the snapshot and swaps it in."""
        blob = encode_snapshot(self.learner.snapshot(self.clock_ms), _LOCAL_KEY)
        self.slot.offer(blob)
        self.snapshots += 1
        self.next_snapshot_ms = self.clock_ms + self.snapshot_every_ms


class RandomPolicy:
    """``size`` catalogue tracks drawn uniformly, seeded."""

    def __init__(self, catalog: Catalog, size: int, seed: int) -> None:
        self.name = RANDOM
        self.track_ids = catalog.track_ids
        self.size = min(size, len(self.track_ids))
        self.rng = random.Random(f"closed-loop-random:{seed}")
        self.count = 0

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        self.count += 1
        return f"{RANDOM}-{self.count}", self.rng.sample(self.track_ids, self.size)

    def observe(self, events: Sequence[Event]) -> None:
        return None


class PopularityPolicy:
    """The trending board's top ``size``, fed by every listener's events."""

    def __init__(self, size: int, half_life_s: float = 3600.0, top_k: int = 100) -> None:
        self.name = POPULARITY
        self.size = size
        self.tracks: dict[str, TrackFeatures] = {}
        self.top = PartitionTop(top_k, half_life_s)
        self.board = TrendingBoard(half_life_s)
        self.count = 0

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        if self.top.changed:
            self.board.merge(self.top.snapshot(partition=0))
        ranked = [track_id for track_id, _ in self.board.rank(self.size, now_ms)]
        if not ranked:
            return None, []
        self.count += 1
        return f"{POPULARITY}-{self.count}", ranked

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            track_id = str(event["track_id"])
            track = self.tracks.get(track_id)
            if track is None:
                track = self.tracks[track_id] = TrackFeatures(self.board.half_life_s)
            track.update(event)
            self.top.offer_track(track_id, track)


class OraclePolicy:
    """The ``size`` tracks the listener truly values most, in this context, now."""

    def __init__(self, listeners: Mapping[str, Listener], catalog: Catalog, size: int) -> None:
        self.name = ORACLE
        self.listeners = listeners
        self.track_ids = catalog.track_ids
        self.size = min(size, len(self.track_ids))
        self.count = 0

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        values = self.listeners[user_id].values(context, now_ms)
        top = np.argpartition(-values, self.size - 1)[: self.size]
        top = top[np.lexsort((top, -values[top]))]  # best first; ties: catalogue order
        self.count += 1
        return f"{ORACLE}-{self.count}", [self.track_ids[int(i)] for i in top]

    def observe(self, events: Sequence[Event]) -> None:
        return None


__all__ = [
    "NO_EXPLORATION_RERANK",
    "ORACLE",
    "POLICIES",
    "POPULARITY",
    "RANDOM",
    "TUNESTREAM",
    "OraclePolicy",
    "PlannerPolicy",
    "Policy",
    "PopularityPolicy",
    "RandomPolicy",
    "ablation_settings",
    "catalog_infos",
]
