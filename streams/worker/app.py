"""The Faust application: topics, the user table and the ingest agent, wired to pure logic.

Nothing here decides anything about events: :mod:`streams.pipeline.ingest` sorts them,
:mod:`online_models.trending` ranks, :mod:`streams.contracts.recommendations` shapes the
output. This module moves bytes between Kafka and those functions and keeps the
per-message framework cost low (raw bytes in, orjson by hand, one table write
and at most one send per topic per message).

``create_app(settings)`` builds a new app; nothing is created at import time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import faust
import orjson
import prometheus_client

from features import EditorialSet, EditorialSets, TrackInfo, UserFeatureConfig
from features.event_types import EVENT_TYPES as KNOWN_EVENT_TYPES
from online_models.exploration import CREDIT_STATUSES
from online_models.exploration_slot import ARMS
from online_models.learner import HIT_K
from online_models.list_quality import ExposureWindow, list_stats
from online_models.serving import ServingModels
from online_models.snapshot import REFUSAL_REASONS, SnapshotKeyError, SnapshotRefused, load_key
from online_models.trending import PartitionTop, TrendingBoard
from streams.api.features import install_feature_routes
from streams.api.models import install_model_routes
from streams.api.recommendations import install_recommendation_routes
from streams.api.web import faust_web_options, without_faust_internals
from streams.contracts.events import REASONS, Event, encode
from streams.kafka.before_commit import BeforeCommit
from streams.kafka.direct import ChangelogWriter, DirectSender
from streams.kafka.faust_fixes import (
    commit_only_contiguous_offsets,
    contiguous_commits,
    drop_records_fetched_before_a_seek,
    hand_over_without_tasks,
    probe_end_offsets_by_fetching,
    seek_again_after_recovery,
    seek_stream,
    stop_when_the_broker_lost_our_data,
    tune_fetch_wait,
)
from streams.kafka.replicated import ReplicatedTopic
from streams.kafka.security import faust_credentials, security_options
from streams.kafka.topics import missing_topics
from streams.ops.broker_watch import BrokerWatch, probe_any
from streams.ops.fatal import stop_worker_now
from streams.ops.heap import settle_the_heap
from streams.ops.metrics import Metrics
from streams.ops.observability import Observer
from streams.pipeline.by_track import TRACK_BATCH_INTERVAL_S, TrackBatches, fold_track_record
from streams.pipeline.ingest import IngestOutcome, Source
from streams.pipeline.learning import ExampleBatcher, ModelSlot
from streams.pipeline.message import Effects, Output, planner_of
from streams.settings import Settings
from streams.state.keyed_state import TrackState, UserState
from streams.state.live import LiveStates

log = logging.getLogger("tunestream.worker")

#: Longest a training example waits for its record to fill (lost if the worker dies).
EXAMPLES_FLUSH_INTERVAL_S = 0.25
#: How often the rolling coverage and exposure Gini gauges are recomputed: they
#: cost O(tracks shown in the window), too much for every list.
EXPOSURE_INTERVAL_S = 10.0


class Worker:
    """The wiring of one tunestream worker: build with :func:`create_app`."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics | None = None) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics or Metrics(
            latency_objective_s=settings.latency_objective_s,
            model_auc_floor=settings.model_auc_floor,
        )
        self.metrics.declare_reasons(REASONS)
        self.metrics.declare_refusal_reasons(REFUSAL_REASONS)
        self.metrics.declare_exploration(ARMS, CREDIT_STATUSES)
        self.trending = TrendingBoard(half_life_s=settings.popularity_half_life_s)
        #: the top tracks of each by-track partition this worker owns, to publish
        self.local_tops: dict[int, PartitionTop] = {}
        self.feature_config = UserFeatureConfig(
            lateness_ms=settings.allowed_lateness_ms, session_gap_ms=settings.session_gap_ms
        )
        self.events_topic = self._raw_topic(settings.events_topic)
        self.track_events_topic = self._raw_topic(settings.track_events_topic)
        self.users = app.Table(
            "users",
            partitions=settings.partitions,
            key_type=bytes,  # raw: the message key, the user_id
            value_type=bytes,  # raw: streams.state.codec's deflated JSON
            help="per-user state: recent event ids, the last message applied, rolling features",
        )
        self.tracks = app.Table(
            "tracks",
            partitions=settings.partitions,
            key_type=bytes,  # raw: the track_id
            value_type=bytes,  # raw: TrackState.to_stored's JSON
            help="per-track statistics: popularity, skip and save rates",
        )
        self.catalog: dict[str, TrackInfo] = {}
        self.artist_of: dict[str, str] = {}
        self.editorial = EditorialSets()
        #: the last list published per user, with its trigger (``GET .../recommendations``)
        self.last_lists: LiveStates[tuple[bytes, Event]] = LiveStates(settings.lists_remembered)
        self.exposure = ExposureWindow()
        self.models = ModelSlot(
            self._snapshot_key(), settings.taste_factors, self.catalog, settings.snapshot_max_bytes
        )
        #: snapshots refused since start, by reason (``GET /models``)
        self.snapshots_refused: Counter[str] = Counter()
        self.planner = planner_of(
            settings, self.trending, self.catalog, self.models, self.editorial, self.artist_of
        )
        self.learning = self.planner.learning
        self.examples = ExampleBatcher(settings.training_examples_topic)
        #: the track side's items, sent as a few records per interval (and before commits)
        self.track_batches = TrackBatches(
            settings.track_events_topic, self.planner.config.max_record_bytes
        )
        self.live: LiveStates[UserState] = LiveStates(settings.live_states)
        self.sender = DirectSender(app, on_failure=stop_worker_now)
        self.user_changelog = ChangelogWriter(self.users, self.sender)
        #: decoded track states, as the table holds them (same bound and rules as users)
        self.live_tracks: LiveStates[TrackState] = LiveStates(settings.live_states)
        self.track_changelog = ChangelogWriter(self.tracks, self.sender)
        app.on_partitions_revoked.connect(self._forget_what_memory_holds)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._forget_what_memory_holds)  # type: ignore[arg-type]
        self.catalog_reader = ReplicatedTopic(settings, settings.catalog_topic, self._apply_track)
        app.task(self.catalog_reader.run)
        self.trending_reader = ReplicatedTopic(
            settings, settings.trending_topic, self._apply_trending
        )
        app.task(self.trending_reader.run)
        self.editorial_reader = ReplicatedTopic(
            settings, settings.editorial_topic, self._apply_editorial
        )
        app.task(self.editorial_reader.run)
        app.timer(EXPOSURE_INTERVAL_S)(self._publish_exposure)
        app.timer(settings.trending_publish_interval_s)(self._publish_trending)
        app.timer(EXAMPLES_FLUSH_INTERVAL_S)(self._send_waiting_examples)
        app.timer(TRACK_BATCH_INTERVAL_S)(self._send_track_batches_timer)
        app.sensors.add(BeforeCommit(self._send_track_batches))
        app.on_before_shutdown.connect(self._send_waiting_examples_at_shutdown)  # type: ignore[arg-type]
        self.observer = Observer(app, settings, self.metrics, tables=[self.users, self.tracks])
        self.observer.prerequisites["loading the track catalog"] = self.catalog_reader.caught_up
        self.observer.prerequisites["loading the trending lists"] = self.trending_reader.caught_up
        self.observer.prerequisites["loading the editorial sets"] = self.editorial_reader.caught_up
        self.snapshot_reader: ReplicatedTopic | None = None
        if self.learning is not None and self.models.key is not None:
            self.snapshot_reader = ReplicatedTopic(
                settings,
                settings.snapshots_topic,
                self._apply_snapshot,
                max_record_bytes=settings.snapshot_max_bytes,
            )
            app.task(self.snapshot_reader.run)
            self.observer.prerequisites["loading the model snapshot"] = (
                self.snapshot_reader.caught_up
            )
        self.observer.install()
        self.broker_watch = BrokerWatch(
            probe_any(
                settings.bootstrap_servers,
                handshake=settings.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"),
            ),
            interval_s=settings.heartbeat_interval_s,
        )
        self.observer.broker = self.broker_watch
        app.task(self._watch_broker)
        install_feature_routes(
            app,
            self.users,
            self.tracks,
            settings.dedupe_ids_per_user,
            self.feature_config,
            settings.popularity_half_life_s,
        )
        install_model_routes(app, self.describe_models)
        install_recommendation_routes(app, self.users, self.last_list_of, self.explain_list)
        app.agent(self.events_topic, name="ingest", concurrency=1)(self.ingest)
        app.agent(self.track_events_topic, name="track_stats", concurrency=1)(self.track_stats)

    async def _forget_what_memory_holds(self, sender: Any, *_: Any, **__: Any) -> None:
        # Partitions may move and recovery rewrites the tables: what memory holds of
        # them is rebuilt from the tables (and the published trending lists).
        self.live.clear()
        self.live_tracks.clear()
        self.last_lists.clear()
        self.local_tops.clear()

    async def _watch_broker(self) -> None:
        await self.broker_watch.run(on_return=self._check_broker_kept_our_topics)

    async def _check_broker_kept_our_topics(self) -> None:
        """After an outage: a broker without our topics restarted empty; state is gone."""
        changelogs = [table.changelog_topic.get_topic_name() for table in (self.users, self.tracks)]
        ours = [self.settings.events_topic, *changelogs]
        missing = await missing_topics(self.settings, ours)
        if missing:
            stop_worker_now(
                f"the broker came back without topic {missing[0]}: it lost the data this "
                "worker had applied (an embedded broker keeps nothing across a restart); "
                "start the worker again with a fresh state directory",
                broker=self.settings.bootstrap_servers,
            )

    def _raw_topic(self, name: str) -> Any:
        # Bytes in and out: we decode with orjson ourselves (faust.Record costs ~18 us).
        return self.app.topic(name, key_serializer="raw", value_serializer="raw")

    async def ingest(self, stream: Any) -> None:
        """The agent: one message at a time (concurrency 1, faust-streaming #606)."""
        messages = self.metrics.messages_total.labels(topic=self.settings.events_topic)
        await self.catalog_reader.caught_up.wait()  # features and lists need track metadata
        await self.editorial_reader.caught_up.wait()
        if self.snapshot_reader is not None:  # resume from the last snapshot, not from zero
            await self.snapshot_reader.caught_up.wait()
        self.models.current.warm()
        settle_the_heap()
        async for event in stream.events():
            await self._tables_restored()
            message = event.message
            if not await self._in_order(message):
                continue
            source = Source(message.topic, message.partition, message.offset)
            self.observer.message_started()
            with self.metrics.processing_seconds.time():
                try:
                    await self.handle(message.key, message.value, source)
                except Exception as exc:  # a bad message must never stop the worker
                    log.exception("processing failed at %s", source, extra=_where(source))
                    await self._dead_letter_error(exc, message.key, message.value, source)
            messages.inc()
            self.observer.message_finished(source.partition, source.offset, message.timestamp)

    async def _in_order(self, message: Any) -> bool:
        """Whether to handle ``message`` now: not when an earlier message of its partition
        is missing (:meth:`ContiguousCommits.arrived` decides; here it is sought and told)."""
        consumer = self.app.consumer
        arrival = contiguous_commits(consumer).arrived(
            message.tp, message.offset, time.monotonic()
        )
        if arrival.refetch_from is not None:
            self.metrics.messages_out_of_order_total.labels(topic=message.topic).inc()
            log.warning(
                "offset %d of %s came before offset %d: fetching from %d again",
                message.offset,
                message.tp,
                arrival.refetch_from,
                arrival.refetch_from,
                extra={"topic": message.topic, "partition": message.partition},
            )
            await seek_stream(consumer, {message.tp: arrival.refetch_from})
        if arrival.gap is not None:
            self.metrics.offset_gaps_total.labels(topic=message.topic).inc()
            log.warning(
                "offsets %d..%d of %s never came: passed as a gap",
                arrival.gap[0],
                arrival.gap[1] - 1,
                message.tp,
                extra={"topic": message.topic, "partition": message.partition},
            )
        return arrival.handle

    async def _tables_restored(self) -> None:
        """Wait while tables are being restored from their changelogs.

        Faust can hand over a message during recovery. Handled then, it would
        read a half-restored value, and its write would be overwritten by the
        restore: an update lost.
        """
        recovery = cast(Any, self.app.tables).recovery  # TableManager, typed as its ABC
        if not recovery.completed.is_set():
            await recovery.completed.wait()

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        """Build all of one message's effects, then apply them: state, records, memory.

        A failure while building changes nothing and dead-letters the message.
        A failure while applying (the broker refuses a record) cannot be
        dead-lettered either, so the worker stops without acknowledging it.
        """
        effects = self._plan(key, value, source)
        try:
            await self._apply(key, effects, source.partition)
        except Exception as exc:
            stop_worker_now(
                f"cannot publish the effects of {source}: {type(exc).__name__}: {exc}",
                **_where(source),
            )
        self.planner.applied(key, effects)
        self._count(effects.outcome)
        self._count_exploration(effects)
        for folded in effects.outcome.folded:
            self.observer.event_time_seen(folded["ts"])
        if effects.recommendation is not None and key is not None:
            self._published(key, effects)

    def _published(self, key: bytes, effects: Effects) -> None:
        """A list went out: remember it for the API and measure it."""
        record = next(
            o.value for o in effects.outputs if o.topic == self.settings.recommendations_topic
        )
        self.last_lists.put(key, (record, effects.outcome.accepted[-1]))
        assert effects.recommendation is not None and effects.built is not None
        built, metrics = effects.built, self.metrics
        metrics.observe_end_to_end(effects.recommendation["latency_ms"] / 1000.0)
        metrics.count_list(effects.trigger or "debounced", built.rule_counts)
        metrics.observe_list(list_stats(built.items), built.stage_seconds)
        self.exposure.observe(built.items, time.monotonic())

    async def _publish_exposure(self) -> None:
        now_s = time.monotonic()
        coverage = self.exposure.coverage(len(self.catalog), now_s)
        self.metrics.set_exposure(coverage, self.exposure.artist_gini(now_s))

    def last_list_of(self, user_id: str) -> bytes | None:
        """The last list this worker published for ``user_id`` (encoded), if it holds it."""
        last = self.last_lists.get(user_id.encode())
        return None if last is None else last[0]

    def explain_list(self, user_id: str) -> dict[str, Any] | None:
        """The user's last list rebuilt from their current state, with every candidate's
        scores per stage (:mod:`streams.api.recommendations`)."""
        key = user_id.encode()
        last, stored = self.last_lists.get(key), self.users.get(key)
        if last is None or stored is None:
            return None
        record, trigger = last
        state = self.live.get(key) or self.planner.load(stored)
        built = self.planner.lists.build(trigger, state, explain=True)
        published = [item["track_id"] for item in orjson.loads(record)["items"]]
        return {
            "same_as_published": published == [item.track_id for item in built.items],
            "model_version": built.model_version,
            "stage_seconds": built.stage_seconds,
            "rule_counts": built.rule_counts,
            "candidates": built.explain,
        }

    def _plan(self, key: bytes | None, value: bytes | None, source: Source) -> Effects:
        return self.planner.plan_with_live_state(key, value, source, self.live, self.users.get)

    async def _apply(self, key: bytes | None, effects: Effects, partition: int) -> None:
        if effects.state is not None and key is not None:
            # one changelog record for the whole batch, before the message's outputs
            await self.user_changelog.put(key, effects.state, partition)
        for output in effects.outputs:
            await self._send(output)
        for output in self.examples.add(effects.examples, effects.feedback):
            await self._send(output)
        for output in self.track_batches.add(effects.track_items):
            self._send_soon(output)

    def _send_track_batches(self) -> None:
        # One path for every by-track record (the producer's buffer, in order): a
        # record overtaking an earlier one would have its positions skipped.
        for output in self.track_batches.take():
            self._send_soon(output)

    async def _send_track_batches_timer(self) -> None:
        self._send_track_batches()

    def _send_soon(self, output: Output) -> None:
        self.track_events_topic.send_soon(
            key=output.key, value=output.value, headers=output.headers, partition=output.partition
        )

    async def _send_waiting_examples(self) -> None:
        for output in self.examples.drain():
            await self._send(output)

    async def _send_waiting_examples_at_shutdown(self, sender: Any, **_: Any) -> None:
        await self._send_waiting_examples()

    async def _send(self, output: Output) -> None:
        await self.sender.send(output)

    def _count_exploration(self, effects: Effects) -> None:
        credits = self.metrics.exploration_credits_total
        for status in effects.credits:
            credits.labels(status=status).inc()
        if effects.explored is not None:
            self.metrics.exploration_slots_total.labels(arm=effects.explored).inc()

    def _count(self, outcome: IngestOutcome) -> None:
        events = self.metrics.events_total
        for accepted in outcome.accepted:
            events.labels(type=accepted["type"], outcome="ok").inc()
        for duplicate in outcome.duplicates:
            events.labels(type=duplicate["type"], outcome="duplicate").inc()
        for skipped in outcome.replays_skipped:
            events.labels(type=skipped["type"], outcome="replay_skipped").inc()
        for rejection in outcome.rejections:
            kind = "too_late" if rejection.reason == "too_late" else "invalid"
            events.labels(type=_event_type(rejection.event), outcome=kind).inc()
            self.metrics.dead_letters_total.labels(reason=rejection.reason).inc()

    async def track_stats(self, stream: Any) -> None:
        """The second agent: fold events, keyed by track, into per-track statistics."""
        messages = self.metrics.messages_total.labels(topic=self.settings.track_events_topic)
        async for message in stream.events():
            await self._tables_restored()
            if not await self._in_order(message.message):
                continue
            messages.inc()
            partition = message.message.partition
            try:
                updated = fold_track_record(orjson.loads(message.message.value), self._track_state)
                top = self._local_top(partition)
                for track_id, state in updated.items():
                    key = track_id.encode()
                    await self.track_changelog.put(key, state.to_stored(), partition)
                    self.live_tracks.put(key, state)
                    top.offer_track(track_id, state.features)
            except Exception:  # our own records; a bad one is logged, never stops the agent
                self.live_tracks.clear()  # states may be half folded: rebuilt from the table
                log.exception("bad track record", extra={"topic": self.settings.track_events_topic})

    def _track_state(self, track_id: str) -> TrackState:
        key = track_id.encode()
        state = self.live_tracks.get(key)
        if state is None:
            stored = self.tracks.get(key)
            state = TrackState.from_stored(stored, self.settings.popularity_half_life_s)
        return state

    def _local_top(self, partition: int) -> PartitionTop:
        """This partition's top tracks; a new owner starts from its last published list."""
        top = self.local_tops.get(partition)
        if top is None:
            settings = self.settings
            top = PartitionTop(settings.trending_top_k, settings.popularity_half_life_s)
            top.seed(self.trending.published(partition))
            self.local_tops[partition] = top
        return top

    async def _publish_trending(self) -> None:
        for partition, top in list(self.local_tops.items()):
            if top.changed:
                await self._send(
                    Output(
                        self.settings.trending_topic,
                        str(partition).encode(),
                        encode(top.snapshot(partition)),
                        partition=partition % self.settings.partitions,
                    )
                )

    def _apply_editorial(self, key: bytes, value: bytes | None) -> None:
        """One editorial set; a tombstone (no value) removes it."""
        if value is None:
            self.editorial.remove(key.decode())
        else:
            self.editorial.put(EditorialSet.from_record(orjson.loads(value)))

    def _apply_trending(self, key: bytes, value: bytes | None) -> None:
        if value is not None:
            self.trending.merge(orjson.loads(value))

    def _apply_track(self, key: bytes, value: bytes | None) -> None:
        """One catalog record; a tombstone (no value) removes the track."""
        track_id = key.decode()
        if value is None:
            self.catalog.pop(track_id, None)
            self.artist_of.pop(track_id, None)
            return
        track = TrackInfo.from_record(orjson.loads(value))
        self.catalog[track_id] = track
        self.artist_of[track_id] = track.artist_id
        self.models.track_known(track_id, track)
        if self.learning is not None:
            self.learning.catalog_changed()

    def _snapshot_key(self) -> bytes | None:
        """The key that verifies snapshots; without one, no snapshot is ever loaded."""
        settings = self.settings
        if settings.learning == "off":
            return None
        try:
            return load_key(settings.snapshot_key, settings.snapshot_key_file)
        except SnapshotKeyError as exc:
            log.warning("serving untrained models, loading no snapshot: %s", exc)
            return None

    def _apply_snapshot(self, key: bytes, value: bytes | None) -> None:
        """One snapshot record: verified, then swapped in; a refusal keeps the old models."""
        if value is None:
            return
        serving = self.models.current.version
        try:
            loaded = self.models.offer(value)
        except SnapshotRefused as refused:
            self._refused(refused.reason, str(refused), serving)
            return
        except ValueError as exc:
            self._refused("bad_arrays", str(exc), serving)
            return
        if loaded:
            self._show_models(self.models.current)

    def _refused(self, reason: str, detail: str, serving: str) -> None:
        self.snapshots_refused[reason] += 1
        self.metrics.model_snapshots_refused_total.labels(reason=reason).inc()
        log.warning(
            "model snapshot refused (%s); still serving %s",
            detail,
            serving,
            extra={"topic": self.settings.snapshots_topic, "reason": reason},
        )

    def _show_models(self, models: ServingModels) -> None:
        metrics, quality = self.metrics, models.metrics
        engagement = quality.get("engagement") or {}
        taste = quality.get("taste") or {}
        learned = float(models.examples_seen)
        metrics.set_model_quality(
            "engagement",
            models.version,
            {
                "auc": engagement.get("roc_auc"),
                "log_loss": engagement.get("log_loss"),
                "calibration_error": engagement.get("ece"),
                "examples_learned": learned,
            },
        )
        hit_rate = taste.get(f"hit_rate_at_{HIT_K}")
        metrics.set_model_quality(
            "taste", models.version, {"hit_rate_at_10": hit_rate, "examples_learned": learned}
        )
        for arm in ARMS:  # the fixed arms only: a snapshot's names never become labels
            mean = models.exploration.mean_reward(arm)
            if mean is not None:
                metrics.exploration_arm_mean_reward.labels(arm=arm).set(mean)
        metrics.model_snapshot_created_timestamp_seconds.set(models.created_at_ms / 1000.0)
        metrics.model_snapshots_loaded_total.inc()
        log.info("serving model snapshot %s", models.version)

    def describe_models(self) -> dict[str, Any]:
        """``GET /models``: what this worker serves, and what it was refused."""
        return {
            "learning": self.settings.learning,
            "snapshot_key": self.models.key is not None,
            "serving": self.models.current.describe(),
            "snapshots_refused": dict(self.snapshots_refused),
        }

    async def _dead_letter_error(
        self, exc: Exception, key: bytes | None, value: bytes | None, source: Source
    ) -> None:
        output = self.planner.processing_error(exc, source, key, value)
        self.metrics.events_total.labels(type="unknown", outcome="error").inc()
        self.metrics.dead_letters_total.labels(reason="processing_error").inc()
        try:
            await self._send(output)
        except Exception as dlq_exc:
            # Neither processed nor dead-lettered: stop before the offset is acknowledged.
            stop_worker_now(
                f"cannot dead-letter {source}: {type(dlq_exc).__name__}: {dlq_exc}",
                **_where(source),
            )


def _where(source: Source) -> dict[str, Any]:
    """Log ``extra``: the message's coordinates, as JSON log fields."""
    return {"topic": source.topic, "partition": source.partition, "offset": source.offset}


def _event_type(event: Any) -> str:
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if kind in KNOWN_EVENT_TYPES else "unknown"


def faust_app_options(settings: Settings) -> dict[str, Any]:
    """The Faust settings every tunestream app shares (the worker, the bench's no-op)."""
    return {
        "broker": f"kafka://{settings.bootstrap_servers}",
        "broker_credentials": faust_credentials(settings),
        "datadir": f"{settings.data_dir}/{{conf.name}}",
        "topic_partitions": settings.partitions,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "broker_rebalance_timeout": settings.rebalance_timeout_s,
        "broker_commit_interval": settings.commit_interval_s,
        "producer_linger_ms": settings.producer_linger_ms,
        "web_enabled": True,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "autodiscover": False,
    }


def create_app(settings: Settings, metrics: Metrics | None = None) -> faust.App:
    """A new Faust app for ``settings`` (whose broker must be a real address)."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    # A *_created series per counter doubles the series count and no query here uses it.
    prometheus_client.disable_created_metrics()
    tune_fetch_wait(settings.fetch_max_wait_ms)
    drop_records_fetched_before_a_seek()
    commit_only_contiguous_offsets()
    hand_over_without_tasks()
    seek_again_after_recovery()
    stop_when_the_broker_lost_our_data(stop_worker_now)
    probe_end_offsets_by_fetching(
        {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}
    )
    app = faust.App(
        settings.app_id,
        **faust_app_options(settings),
        store=settings.store,
        topic_allow_declare=True,
        producer_max_request_size=settings.producer_max_request_bytes,
        canonical_url=f"http://{settings.advertised_host or settings.web_host}:{settings.web_port}",
        table_cleanup_interval=30.0,
        **faust_web_options(),
    )
    without_faust_internals(app)
    app.tunestream = Worker(app, settings, metrics)  # type: ignore[attr-defined]
    return app
