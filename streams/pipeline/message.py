"""One input message's effects, built in full before any of them is applied.

A message changes a user's state and produces records: dead letters, the
clean forward, items for the track side, maybe a list. Every
one of them is built and encoded here, and checked to fit in one producer
request, before the caller writes anything. So a failure while building (a
bug, an event orjson cannot write back, an output too large for the broker)
leaves the stored state untouched, and the message can be dead-lettered as a
whole without having been half applied. The caller then applies the effects:
the state first, then the records, then :meth:`MessagePlanner.applied`.

>>> from streams.contracts.events import EventDecoder
>>> from streams.pipeline.ingest import Source
>>> from streams.pipeline.refresh import RefreshThrottle
>>> from online_models.trending import TrendingBoard
>>> planner = MessagePlanner(
...     PlannerConfig(clean_topic="clean", dlq_topic="dlq", recommendations_topic="recs"),
...     EventDecoder(now_ms=lambda: 1_767_225_600_000), TrendingBoard(),
...     RefreshThrottle(interval_s=2.0), now_ms=lambda: 1_767_225_600_000, now_s=lambda: 0.0)
>>> value = b'{"event_id":"e1","user_id":"u1","track_id":"t1","type":"play",'
>>> value += b'"ts":1767225599000,"ms_played":1000}'
>>> effects = planner.plan(b"u1", value, Source("events", 0, 7), stored=None)
>>> [output.topic for output in effects.outputs], list(effects.track_items)
(['clean', 'recs'], [3])
>>> effects.state is not None
True
>>> planner.plan(b"u1", b"nope", Source("events", 0, 8), stored=None).state is None
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from features import TrackInfo, UserFeatureConfig
from features.editorial import EditorialSets
from online_models.base import Ranker
from online_models.exploration import CreditStatus, FeedbackEntry, FeedbackLog, RewardConfig
from online_models.exploration_slot import SlotPick
from online_models.learner import TrainingExample
from online_models.recommender import BuiltList, ListBuilder, ListConfig
from online_models.reranking import RerankConfig
from streams.contracts.clock import now_ms
from streams.contracts.events import Event, EventDecoder, Rejection, encode
from streams.pipeline.by_track import record_size, track_items
from streams.pipeline.exploring import Exploration
from streams.pipeline.ingest import (
    BeforeFold,
    IngestOutcome,
    Source,
    dead_letter,
    dead_letter_key,
    ingest_message,
)
from streams.pipeline.learning import ExampleMaker, ModelSlot
from streams.pipeline.lists import ListMaker
from streams.pipeline.output import Output
from streams.pipeline.refresh import RefreshThrottle, immediate_reason
from streams.state.codec import decode_state, encode_state
from streams.state.keyed_state import UserState
from streams.state.live import LiveStates

#: Room kept in a producer request for the record batch, record and header framing.
RECORD_OVERHEAD_BYTES = 1_024


@dataclass
class Effects:
    """Everything one message does, built but not yet applied."""

    outcome: IngestOutcome
    #: the user's new stored state (:func:`streams.state.codec.encode_state`); None
    #: when the message changes no state
    state: bytes | None = None
    outputs: list[Output] = field(default_factory=list)
    #: the accepted events as items for the track side, by destination partition
    #: (:class:`~streams.pipeline.by_track.TrackBatches` gathers them into records)
    track_items: dict[int, list[bytes]] = field(default_factory=dict)
    #: the recommendation list among ``outputs``, if one goes out
    recommendation: dict[str, Any] | None = None
    #: the decoded state ``state`` encodes, to keep in memory for the next message
    live: UserState | None = None
    #: the training examples of the events folded now (:class:`ExampleBatcher` sends them)
    examples: list[TrainingExample] = field(default_factory=list)
    #: exploration rewards recorded for the learner (sent with the examples)
    feedback: list[FeedbackEntry] = field(default_factory=list)
    #: what became of each folded event's exploration credit
    credits: list[CreditStatus] = field(default_factory=list)
    #: the arm that filled the list's exploration slot, if the list has one
    explored: str | None = None
    #: the list among ``outputs`` as built: its items, rule counts and stage times
    built: BuiltList | None = None
    #: why the list went out (:data:`~streams.pipeline.refresh.IMMEDIATE_REASONS`, or
    #: ``debounced``)
    trigger: str | None = None


@dataclass(frozen=True)
class PlannerConfig:
    """Topic names and limits the planner needs (a slice of :class:`Settings`)."""

    clean_topic: str
    dlq_topic: str
    recommendations_topic: str
    producer_max_request_bytes: int = 1_048_576
    dlq_original_max_bytes: int = 16_384
    dedupe_ids_per_user: int = 256
    #: partitions of the by-track topic (every topic is created with the same count)
    track_partitions: int = 4
    feature_config: UserFeatureConfig = field(default_factory=UserFeatureConfig)
    #: where the training examples go; None: learning is off
    training_examples_topic: str | None = None
    #: trending tracks a list's retrieval takes
    trending_candidates: int = 100
    #: skips in a row that refresh a list at once
    refresh_skip_streak: int = 3
    #: how lists are made (retrieval, blending, re-ranking rules)
    lists: ListConfig = field(default_factory=ListConfig)

    @classmethod
    def from_settings(cls, settings: Any) -> PlannerConfig:
        return cls(
            clean_topic=settings.clean_topic,
            dlq_topic=settings.dlq_topic,
            recommendations_topic=settings.recommendations_topic,
            producer_max_request_bytes=settings.producer_max_request_bytes,
            dlq_original_max_bytes=settings.dlq_original_max_bytes,
            dedupe_ids_per_user=settings.dedupe_ids_per_user,
            track_partitions=settings.partitions,
            feature_config=UserFeatureConfig(
                lateness_ms=settings.allowed_lateness_ms, session_gap_ms=settings.session_gap_ms
            ),
            training_examples_topic=(
                settings.training_examples_topic if settings.learning == "on" else None
            ),
            trending_candidates=settings.trending_top_k,
            refresh_skip_streak=settings.refresh_skip_streak,
            lists=list_config(settings),
        )

    @property
    def max_record_bytes(self) -> int:
        """The largest key + value + headers one producer request carries."""
        return self.producer_max_request_bytes - RECORD_OVERHEAD_BYTES


def list_config(settings: Any) -> ListConfig:
    """The list builder's configuration from the ``TUNESTREAM_*`` settings."""
    return ListConfig(
        rerank=RerankConfig(
            size=settings.list_size,
            max_per_artist=settings.max_per_artist,
            max_per_genre=settings.max_per_genre,
            mmr_lambda=settings.mmr_lambda,
            popular_head=settings.popular_head,
            max_popular_share=settings.max_popular_share,
            skip_memory_s=settings.skip_memory_s,
            replay_after_s=settings.replay_after_s,
            discovery_slot=settings.discovery_slot == "on",
            max_rotation=settings.max_rotation,
            genre_cap_by_diet=settings.genre_cap_by_diet == "on",
        ),
        taste_weight=settings.taste_weight,
        affinity_weight=settings.affinity_weight,
        explicit_filter=settings.explicit_filter == "on",
    )


def _no_catalog(track_id: str) -> TrackInfo | None:
    return None


def exploration_of(settings: Any) -> Exploration | None:
    """The exploration policy's bookkeeping, if learning and exploration are both on."""
    if settings.learning != "on" or settings.exploration != "on":
        return None
    reward = RewardConfig(
        engaged=settings.reward_engaged,
        saved=settings.reward_saved,
        returned=settings.reward_returned,
        session=settings.reward_session,
        skip_penalty=settings.reward_skip_penalty,
    )
    return Exploration(reward, settings.offer_memory_lists, settings.session_gap_ms)


def planner_of(
    settings: Any,
    trending: Ranker,
    catalog: Mapping[str, TrackInfo],
    models: ModelSlot,
    editorial: EditorialSets | None = None,
    artist_of: Mapping[str, str] | None = None,
) -> MessagePlanner:
    """The planner a worker runs with ``settings`` (a :class:`~streams.settings.Settings`).

    ``catalog``, ``artist_of`` and ``editorial`` are the worker's live views: the
    planner reads them at each message, so records that arrive later are seen.
    """
    decoder = EventDecoder(
        max_message_bytes=settings.max_message_bytes,
        max_batch_events=settings.max_batch_events,
        max_future_ms=settings.max_future_ms,
        max_json_depth=settings.max_json_depth,
    )
    learning = (
        ExampleMaker(models, catalog, settings.negatives_per_event)
        if settings.learning == "on"
        else None
    )
    return MessagePlanner(
        PlannerConfig.from_settings(settings),
        decoder,
        trending,
        RefreshThrottle(settings.refresh_interval_s),
        track_of=catalog.get,
        artist_of=artist_of,
        learning=learning,
        exploration=exploration_of(settings),
        models=models,
        editorial=editorial,
    )


class MessagePlanner:
    """Builds :class:`Effects` for one message, and applies their in-memory part."""

    def __init__(
        self,
        config: PlannerConfig,
        decoder: EventDecoder,
        trending: Ranker,
        throttle: RefreshThrottle,
        track_of: Callable[[str], TrackInfo | None] = _no_catalog,
        artist_of: Mapping[str, str] | None = None,
        now_ms: Callable[[], int] = now_ms,
        now_s: Callable[[], float] = time.monotonic,
        learning: ExampleMaker | None = None,
        exploration: Exploration | None = None,
        models: ModelSlot | None = None,
        editorial: EditorialSets | None = None,
    ) -> None:
        self.config = config
        self.learning = learning if config.training_examples_topic else None
        # Rewards reach the one policy through the learner: no learning, no exploration.
        self.exploration = exploration if self.learning is not None else None
        self.decoder = decoder
        self.trending = trending
        self.throttle = throttle
        self.track_of = track_of
        self.artist_of = artist_of if artist_of is not None else {}
        self.now_ms = now_ms
        self.now_s = now_s
        if models is None:
            models = learning.slot if learning is not None else ModelSlot(None)
        self.lists = ListMaker(
            ListBuilder(config.lists),
            models,
            trending,
            editorial,
            exploring=self.exploration is not None,
            trending_candidates=config.trending_candidates,
        )

    def load(self, stored: bytes | None) -> UserState:
        """A working copy of a user's state (the stored value is never modified)."""
        config = self.config
        decoded = None if stored is None else decode_state(stored)
        return UserState.from_state(decoded, config.dedupe_ids_per_user, config.feature_config)

    def plan(
        self,
        key: bytes | None,
        value: bytes | None,
        source: Source,
        stored: bytes | None,
        live: UserState | None = None,
    ) -> Effects:
        """All of one message's effects; raises (having changed no stored state) if one
        cannot be built.

        ``live`` is the user's decoded state held in memory, used (and changed) in
        place of decoding ``stored``; when this raises, or returns effects without
        a ``state``, the caller must drop it (see :mod:`streams.state.live`).
        """
        state = live if live is not None else self.load(stored)
        examples: list[TrainingExample] = []
        feedback, credits = FeedbackLog(), list[CreditStatus]()
        urgent: list[str] = []
        outcome = ingest_message(
            self.decoder,
            state,
            key,
            value,
            source.offset,
            track_of=self.track_of,
            partition=source.partition,
            before_fold=self._before_fold(examples, feedback, credits, urgent),
        )
        if not outcome.accepted:
            dead = self.dead_letters(outcome.rejections, source, key, value)
            return Effects(outcome, outputs=dead)
        assert key is not None  # accepted events match their message key
        clean = self._clean_forward(key, outcome.accepted)
        # Replays go again too: the track side drops positions it has applied.
        items = track_items(
            source.partition, source.offset, outcome.accepted, self.config.track_partitions
        )
        largest = max(clean.size, *(record_size(batch) for batch in items.values()))
        if largest > self.config.max_record_bytes:
            return self._refuse_oversize(outcome, largest, source, key, value)
        effects = Effects(outcome, state=encode_state(state.to_state()), live=state)
        effects.outputs = [*self.dead_letters(outcome.rejections, source, key, value), clean]
        effects.track_items = items
        if urgent or self.throttle.due(key, self.now_s()):
            effects.trigger = urgent[0] if urgent else "debounced"
            self._recommend(effects, outcome.accepted[-1], state, feedback)
            effects.outputs.append(
                Output(self.config.recommendations_topic, key, encode(effects.recommendation))
            )
        if self.learning is not None:
            effects.examples, effects.feedback, effects.credits = (
                examples,
                feedback.entries,
                credits,
            )
        return effects

    def _before_fold(
        self,
        examples: list[TrainingExample],
        feedback: FeedbackLog,
        credits: list[CreditStatus],
        urgent: list[str],
    ) -> BeforeFold:
        """The ingest hook: whether the event refreshes the list at once, its example,
        then its exploration credit."""
        streak = self.config.refresh_skip_streak

        def refresh_now(event: Event, state: UserState, track: TrackInfo | None) -> None:
            session = state.features.session.read(int(event["ts"]))
            reason = immediate_reason(event, session, streak)
            if reason is not None:
                urgent.append(reason)

        hooks: list[BeforeFold] = [refresh_now]
        if self.learning is not None:
            hooks.append(self.learning.hook(examples))
        if self.exploration is not None:
            hooks.append(self.exploration.hook(feedback, credits))

        def before_fold(event: Event, state: UserState, track: TrackInfo | None) -> None:
            for hook in hooks:
                hook(event, state, track)

        return before_fold

    def plan_with_live_state(
        self,
        key: bytes | None,
        value: bytes | None,
        source: Source,
        live: LiveStates[UserState],
        stored_of: Callable[[bytes], bytes | None],
    ) -> Effects:
        """:meth:`plan` with the user's state from memory, or from ``stored_of`` on a miss.

        Keeps ``live`` equal to what the table will hold: the new state on
        success; nothing when planning fails or leaves the stored state as it was.
        """
        if key is None:
            return self.plan(key, value, source, None)
        state = live.get(key)
        stored = stored_of(key) if state is None else None
        try:
            effects = self.plan(key, value, source, stored, state)
        except Exception:
            live.drop(key)  # it may be half changed; the table is untouched
            raise
        if effects.live is None:
            live.drop(key)
        else:
            live.put(key, effects.live)
        return effects

    def applied(self, key: bytes | None, effects: Effects) -> None:
        """The in-memory part of the effects, once the state and records are out."""
        if effects.recommendation is not None and key is not None:
            self.throttle.refreshed(key, self.now_s())

    def dead_letters(
        self, rejections: list[Rejection], source: Source, key: bytes | None, value: bytes | None
    ) -> list[Output]:
        """One bounded DLQ record per rejection, its reason also as a header."""
        now_ms = self.now_ms()
        return [
            Output(
                self.config.dlq_topic,
                dead_letter_key(key),
                encode(
                    dead_letter(
                        rejection, source, key, value, now_ms, self.config.dlq_original_max_bytes
                    )
                ),
                {"reason": rejection.reason.encode()},
            )
            for rejection in rejections
        ]

    def _clean_forward(self, key: bytes, accepted: list[Event]) -> Output:
        """The clean forward: the message's accepted events, as one record."""
        return Output(self.config.clean_topic, key, encode(accepted))

    def _refuse_oversize(
        self, outcome: IngestOutcome, size: int, source: Source, key: bytes, value: bytes | None
    ) -> Effects:
        """Valid events whose forward would not fit one request: dead-lettered, state unchanged."""
        limit = self.config.max_record_bytes
        detail = f"re-encoded, an output record takes {size} bytes; at most {limit} fit"
        refused = [
            Rejection("oversize", detail, event=event, event_id=event["event_id"])
            for event in outcome.accepted
        ]
        outcome = IngestOutcome(
            duplicates=outcome.duplicates, rejections=[*outcome.rejections, *refused]
        )
        return Effects(outcome, outputs=self.dead_letters(outcome.rejections, source, key, value))

    def _recommend(
        self, effects: Effects, trigger: Event, state: UserState, feedback: FeedbackLog
    ) -> None:
        """The user's list into ``effects``; its exploration slot, if any, offered."""
        built = self.lists.build(trigger, state)
        effects.built = built
        effects.recommendation = self.lists.record(trigger, built, self.now_ms())
        explored = built.explored
        if explored is None or self.exploration is None or explored.arm is None:
            return
        effects.explored = explored.arm
        pick = SlotPick(explored.arm, explored.track_id, explored.score)
        list_id = effects.recommendation["recommendation_id"]
        at_ms = int(trigger["ts"])
        self.exploration.offered(list_id, str(trigger["user_id"]), at_ms, pick, feedback)

    def processing_error(
        self, exc: Exception, source: Source, key: bytes | None, value: bytes | None
    ) -> Output:
        """The dead letter of a message whose effects could not be built."""
        rejection = Rejection("processing_error", f"{type(exc).__name__}: {exc}")
        return self.dead_letters([rejection], source, key, value)[0]
