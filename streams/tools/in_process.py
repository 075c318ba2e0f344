"""The worker's own planner run in process on the events' clock: no Kafka, no Faust.

:class:`Rig` holds a :class:`~streams.pipeline.message.MessagePlanner` as a
worker holds it (:func:`~streams.pipeline.message.planner_of`, the user states
kept in memory and "stored" in a dict) and feeds it one message per event, in
order. Its clock is the events' own (``ts``): the refresh debounce fires as it
would live when the events are published paced. ``python -m benchmarks.pipeline``
times it; ``tunestream replay`` uses it as the offline side of its parity check
(:func:`planned_lists`).

:class:`TrackSide` adds what the worker's second agent and its timer do: fold
each message's by-track items into per-track statistics
(:func:`~streams.pipeline.by_track.fold_track_record`), offer them to each
partition's :class:`~online_models.trending.PartitionTop`, and every
``trending_publish_interval_s`` of the events' clock merge the changed tops into
the board the lists read. Live, the same happens on the wall clock, a by-track
batch (0.1 s) and a topic read later.

No learner runs here: the served models are what the :class:`ModelSlot` starts
with (untrained, or a snapshot the caller offers), while each user's own taste
step, the training examples and the exploration bookkeeping run as in the worker.

>>> from features import TrackInfo
>>> from streams.settings import Settings
>>> catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i}", ("rock",), 200_000) for i in range(5)}
>>> events = [{"event_id": f"e{i}", "user_id": f"u{i // 3}", "track_id": f"t{i % 3}",
...            "type": "play", "ts": 1_767_225_600_000 + i * 180_000, "ms_played": 200_000}
...           for i in range(4)]
>>> records = planned_lists(events, catalog, Settings())
>>> [(r["user_id"], r["trigger_event_id"]) for r in records]
[('u0', 'e0'), ('u0', 'e1'), ('u0', 'e2'), ('u1', 'e3')]
>>> sorted(item["track_id"] for item in records[-1]["items"])  # trending, less what u1 heard
['t1', 't2']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from features import TrackInfo
from features.editorial import EditorialSets
from online_models.published_lists import score_published
from online_models.trending import PartitionTop, TrendingBoard
from streams.contracts.events import Event, encode
from streams.pipeline.by_track import fold_track_record
from streams.pipeline.ingest import Source
from streams.pipeline.learning import ModelSlot
from streams.pipeline.message import Effects, MessagePlanner, planner_of
from streams.settings import Settings
from streams.state.keyed_state import TrackState, UserState
from streams.state.live import LiveStates


class TrackSide:
    """The track-stats agent and the trending timer, on a clock the caller moves."""

    def __init__(self, board: TrendingBoard, settings: Settings) -> None:
        self.board = board
        self.half_life_s = settings.popularity_half_life_s
        self.top_k = settings.trending_top_k
        self.publish_every_s = settings.trending_publish_interval_s
        self.states: dict[str, TrackState] = {}
        self.tops: dict[int, PartitionTop] = {}
        self.next_publish_s: float | None = None

    def add(self, items: Mapping[int, list[bytes]]) -> None:
        """Fold one message's by-track items, as the track agent folds its records."""
        for partition, encoded in items.items():
            record = {"items": [orjson.loads(item) for item in encoded]}
            top = self.tops.setdefault(partition, PartitionTop(self.top_k, self.half_life_s))
            for track_id, state in fold_track_record(record, self._state).items():
                top.offer_track(track_id, state.features)

    def tick(self, now_s: float) -> None:
        """Publish the changed tops into the board when the interval has passed."""
        if self.next_publish_s is None:
            self.next_publish_s = now_s + self.publish_every_s
        if now_s < self.next_publish_s:
            return
        for partition, top in self.tops.items():
            if top.changed:
                self.board.merge(top.snapshot(partition))
        while self.next_publish_s <= now_s:
            self.next_publish_s += self.publish_every_s

    def _state(self, track_id: str) -> TrackState:
        state = self.states.get(track_id)
        if state is None:
            state = self.states[track_id] = TrackState.empty(self.half_life_s)
        return state


@dataclass
class Rig:
    """A planner as a worker holds it, fed one message per event, in order."""

    planner: MessagePlanner
    live: LiveStates[UserState]
    stored: dict[bytes, bytes]
    clock: list[float]
    offset: int = 0
    track_side: TrackSide | None = None
    topic: str = "listening-events"
    #: every recommendation record planned so far, in order (when ``keep_lists``)
    lists: list[dict[str, Any]] = field(default_factory=list)
    keep_lists: bool = False

    def feed(
        self, events: Iterable[Event], on_effects: Callable[[Effects], None] | None = None
    ) -> tuple[int, float]:
        """Plan and apply one message per event; lists built, and seconds spent in them."""
        lists, list_s = 0, 0.0
        for event in events:
            self.clock[0] = event["ts"] / 1000.0
            if self.track_side is not None:
                self.track_side.tick(self.clock[0])
            key = str(event["user_id"]).encode()
            source = Source(self.topic, 0, self.offset)
            self.offset += 1
            effects = self.planner.plan_with_live_state(
                key, encode(event), source, self.live, self.stored.get
            )
            if effects.state is not None:
                self.stored[key] = effects.state
            if effects.built is not None:
                lists += 1
                list_s += sum(effects.built.stage_seconds.values())
            if self.keep_lists and effects.recommendation is not None:
                self.lists.append(effects.recommendation)
            if self.track_side is not None:
                self.track_side.add(effects.track_items)
            self.planner.applied(key, effects)
            if on_effects is not None:
                on_effects(effects)
        return lists, list_s


def rig_of(
    settings: Settings,
    catalog: Mapping[str, TrackInfo],
    trending: TrendingBoard,
    models: ModelSlot,
    start_ms: int,
    *,
    track_side: bool = False,
    keep_lists: bool = False,
) -> Rig:
    """A :class:`Rig` whose planner's clock starts at ``start_ms`` and follows the events.

    ``track_side``: fold the events into ``trending`` as the worker's track agent
    and trending timer do (:class:`TrackSide`); otherwise ``trending`` stays as given.
    """
    clock = [start_ms / 1000.0]
    planner = planner_of(
        settings,
        trending,
        catalog,
        models,
        EditorialSets(),
        {t: info.artist_id for t, info in catalog.items()},
    )
    planner.now_s = lambda: clock[0]
    planner.now_ms = lambda: int(clock[0] * 1000)
    planner.decoder.now_ms = planner.now_ms
    side = TrackSide(trending, settings) if track_side else None
    return Rig(
        planner,
        LiveStates(settings.live_states),
        {},
        clock,
        track_side=side,
        topic=settings.events_topic,
        keep_lists=keep_lists,
    )


def planned_lists(
    events: Sequence[Event], catalog: Mapping[str, TrackInfo], settings: Settings
) -> list[dict[str, Any]]:
    """The recommendation records the worker's planner publishes for ``events`` (one
    message each, in order), on the events' clock, the trending board built from the
    events themselves, untrained served models (no learner), no editorial sets."""
    if not events:
        return []
    trending = TrendingBoard(half_life_s=settings.popularity_half_life_s)
    models = ModelSlot(None, settings.taste_factors, catalog)
    rig = rig_of(
        settings, catalog, trending, models, int(events[0]["ts"]), track_side=True, keep_lists=True
    )
    rig.feed(events)
    return rig.lists


def score_planned(
    events: Sequence[Event], catalog: Mapping[str, TrackInfo], settings: Settings
) -> dict[str, Any]:
    """The lists :func:`planned_lists` makes for ``events``, scored as published lists
    are (:func:`~online_models.published_lists.score_published`): the offline figures
    ``tunestream replay --score`` reads back from a live pipeline."""
    return score_published(events, planned_lists(events, catalog, settings), catalog)


__all__ = ["Rig", "TrackSide", "planned_lists", "rig_of", "score_planned"]
