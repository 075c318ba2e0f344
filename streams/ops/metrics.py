"""Every Prometheus metric a worker exports, declared once against an injected registry.

Names follow the Prometheus conventions: ``tunestream_`` prefix, base units
(seconds, bytes), counters end in ``_total``. Labels only take values from
small, fixed sets (event type, outcome, DLQ reason, topic, partition, table,
model version, list stage), never a user or track id, so the number of series
stays bounded whatever the traffic.

The deploy/ alert rules and Grafana dashboard query these names; the tests in
``tests/unit/test_metrics.py`` and ``tests/deploy`` keep them in step. Later
signals (model quality, list quality) are one attribute each in
:class:`Metrics`.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = Metrics(registry, latency_objective_s=0.5)
>>> metrics.events_total.labels(type="play", outcome="ok").inc(3)
>>> registry.get_sample_value("tunestream_events_total", {"type": "play", "outcome": "ok"})
3.0
>>> metrics.observe_end_to_end(0.2)
>>> registry.get_sample_value("tunestream_end_to_end_latency_seconds_bucket", {"le": "0.5"})
1.0
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from features.event_types import EVENT_TYPES as KNOWN_EVENT_TYPES
from online_models.list_quality import DEFAULT_WINDOW_S, ListStats
from online_models.recommender import STAGES
from online_models.reranking import RULES
from streams.pipeline.refresh import IMMEDIATE_REASONS

#: Outcomes of one event; ``invalid`` and ``too_late`` also count in the DLQ metric.
OUTCOMES: Final = ("ok", "duplicate", "replay_skipped", "invalid", "too_late", "error")
#: Event types; ``unknown`` for events that failed before their type was known.
EVENT_TYPES: Final = (*KNOWN_EVENT_TYPES, "unknown")

# Per-message work is tens of microseconds to a few milliseconds.
PROCESSING_BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
# Event time to list emitted: includes producer linger, broker, fetch wait and queueing.
LATENCY_BUCKETS_S: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

#: The stages of building one list, timed apiece (a fixed set: the ``stage`` label).
LIST_STAGES: Final = STAGES
#: Why a list went out: at once (a save, a skip streak, a context change) or debounced.
LIST_TRIGGERS: Final = (*IMMEDIATE_REASONS, "debounced")
# One list's stages run in tens of microseconds to tens of milliseconds.
LIST_STAGE_BUCKETS_S: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
# Items, artists or genres in one list: a bucket at each small count (diversity floors).
LIST_COUNT_BUCKETS: Final = (
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0,
)  # fmt: skip
# A share of a list's items, in tenths.
LIST_SHARE_BUCKETS: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def latency_buckets(objective_s: float) -> tuple[float, ...]:
    """The latency buckets with one exactly at the objective, so SLO maths needs no guessing.

    >>> latency_buckets(0.3)[:7]
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5)
    """
    return tuple(sorted({*LATENCY_BUCKETS_S, objective_s}))


class Metrics:
    """The worker's metrics bundle. Build one per registry (tests use a fresh one)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        latency_objective_s: float = 1.0,
        model_auc_floor: float = 0.6,
        exposure_window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.registry = reg
        self.latency_objective_s = latency_objective_s

        # --- input ---------------------------------------------------------------
        self.events_total = Counter(
            "tunestream_events_total",
            "Listening events by type and outcome "
            "(ok, duplicate, replay_skipped, invalid, too_late, error).",
            ["type", "outcome"],
            registry=reg,
        )
        self.messages_total = Counter(
            "tunestream_messages_total",
            "Kafka messages handled (one message may carry a batch of events).",
            ["topic"],
            registry=reg,
        )
        self.messages_out_of_order_total = Counter(
            "tunestream_messages_out_of_order_total",
            "Messages delivered ahead of an earlier one of their partition: skipped, and "
            "the partition fetched again from the earlier one (streams.kafka.contiguous).",
            ["topic"],
            registry=reg,
        )
        self.offset_gaps_total = Counter(
            "tunestream_offset_gaps_total",
            "Runs of offsets that never came after repeated fetches, passed as gaps.",
            ["topic"],
            registry=reg,
        )
        self.dead_letters_total = Counter(
            "tunestream_dead_letters_total",
            "Records written to the dead-letter topic, by reason code.",
            ["reason"],
            registry=reg,
        )
        self.processing_seconds = Histogram(
            "tunestream_message_processing_seconds",
            "Time to handle one Kafka message: decode, validate, dedupe, features, sends.",
            buckets=PROCESSING_BUCKETS_S,
            registry=reg,
        )
        self.end_to_end_latency_seconds = Histogram(
            "tunestream_end_to_end_latency_seconds",
            "Event time of the triggering event to the recommendation list being sent.",
            buckets=latency_buckets(latency_objective_s),
            registry=reg,
        )
        self.latency_objective_seconds = Gauge(
            "tunestream_latency_objective_seconds",
            "The end-to-end latency objective; a histogram bucket sits exactly here.",
            registry=reg,
        )
        self.latency_objective_seconds.set(latency_objective_s)

        # --- progress and lag ----------------------------------------------------
        self.consumer_lag_messages = Gauge(
            "tunestream_consumer_lag_messages",
            "Messages in the partition not yet processed by this worker (high water - next).",
            ["topic", "partition"],
            registry=reg,
        )
        self.consumer_lag_seconds = Gauge(
            "tunestream_consumer_lag_seconds",
            "Age of the last processed message while more are waiting; 0 when caught up.",
            ["topic", "partition"],
            registry=reg,
        )
        self.last_processed_timestamp_seconds = Gauge(
            "tunestream_last_processed_timestamp_seconds",
            "Unix time this worker last finished a message.",
            registry=reg,
        )
        self.last_commit_timestamp_seconds = Gauge(
            "tunestream_last_commit_timestamp_seconds",
            "Unix time this worker last committed consumer offsets.",
            registry=reg,
        )
        self.assigned_partitions = Gauge(
            "tunestream_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=reg,
        )
        self.rebalances_total = Counter(
            "tunestream_rebalances_total",
            "Consumer group rebalances this worker went through.",
            registry=reg,
        )
        self.recovery_in_progress = Gauge(
            "tunestream_recovery_in_progress",
            "1 while table state is being restored from changelogs, else 0.",
            registry=reg,
        )
        self.recovery_remaining_records = Gauge(
            "tunestream_recovery_remaining_records",
            "Changelog records still to read before this worker's tables are restored.",
            registry=reg,
        )
        self.ready = Gauge(
            "tunestream_worker_ready",
            "1 when partitions are assigned and tables recovered (what /readyz answers).",
            registry=reg,
        )

        # --- state ---------------------------------------------------------------
        self.table_keys = Gauge(
            "tunestream_table_keys",
            "Keys held in each table on this worker (active partitions).",
            ["table"],
            registry=reg,
        )
        self.feature_freshness_seconds = Gauge(
            "tunestream_feature_freshness_seconds",
            "Wall clock minus the event time of the newest event folded into features.",
            registry=reg,
        )

        # --- output --------------------------------------------------------------
        self.recommendation_lists_total = Counter(
            "tunestream_recommendation_lists_total",
            "Recommendation lists published, by what triggered them (a save, a skip streak, "
            "a context change, or the debounce).",
            ["trigger"],
            registry=reg,
        )
        self.list_rule_actions_total = Counter(
            "tunestream_list_rule_actions_total",
            "Times a re-ranking rule acted on a list: candidates removed (recently_played, "
            "skipped, blocked, explicit), picks changed (artist_cap, genre_cap, popular_cap, "
            "mmr), caps relaxed, discovery slots filled.",
            ["rule"],
            registry=reg,
        )
        # --- list quality: per list (histograms), and over a rolling window (gauges) --
        self.list_items = Histogram(
            "tunestream_list_items",
            "Items in each recommendation list published.",
            buckets=LIST_COUNT_BUCKETS,
            registry=reg,
        )
        self.list_distinct_artists = Histogram(
            "tunestream_list_distinct_artists",
            "Distinct artists in each list published (intra-list diversity).",
            buckets=LIST_COUNT_BUCKETS,
            registry=reg,
        )
        self.list_distinct_genres = Histogram(
            "tunestream_list_distinct_genres",
            "Distinct genres in each list published (intra-list diversity).",
            buckets=LIST_COUNT_BUCKETS,
            registry=reg,
        )
        self.list_discovery_share = Histogram(
            "tunestream_list_discovery_share",
            "Share of each list's items whose artist is new to the user (0 for an empty list).",
            buckets=LIST_SHARE_BUCKETS,
            registry=reg,
        )
        self.list_stage_seconds = Histogram(
            "tunestream_list_stage_seconds",
            "Time to build one list, by stage (retrieval, ranking, reranking).",
            ["stage"],
            buckets=LIST_STAGE_BUCKETS_S,
            registry=reg,
        )
        self._list_stages = {
            stage: self.list_stage_seconds.labels(stage=stage) for stage in LIST_STAGES
        }
        self.catalogue_coverage_ratio = Gauge(
            "tunestream_catalogue_coverage_ratio",
            "Share of the catalogue's tracks shown in some list over the rolling window.",
            registry=reg,
        )
        self.exposure_artist_gini = Gauge(
            "tunestream_exposure_artist_gini",
            "Gini coefficient of exposures per artist over the rolling window "
            "(0 even, towards 1 concentrated on a few artists).",
            registry=reg,
        )
        self.exposure_window_seconds = Gauge(
            "tunestream_exposure_window_seconds",
            "Length of the rolling window of the coverage and artist Gini gauges.",
            registry=reg,
        )
        self.exposure_window_seconds.set(exposure_window_s)
        # --- models ----------------------------------------------------------------
        # One series per model: the version label moves with each loaded snapshot
        # (:meth:`set_model_quality` removes the previous version's series).
        self.model_auc = self._model_gauge(
            "tunestream_model_auc",
            "Rolling prequential ROC AUC of the engagement model, of the snapshot served.",
        )
        self.model_log_loss = self._model_gauge(
            "tunestream_model_log_loss",
            "Rolling prequential log loss of the engagement model, of the snapshot served.",
        )
        self.model_calibration_error = self._model_gauge(
            "tunestream_model_calibration_error",
            "Rolling expected calibration error of the engagement model (0 is perfect).",
        )
        self.model_hit_rate_at_10 = self._model_gauge(
            "tunestream_model_hit_rate_at_10",
            "Rolling hit-rate@10 of the taste model on the next positive event.",
        )
        self.model_examples_learned = self._model_gauge(
            "tunestream_model_examples_learned",
            "Examples the served snapshot has learned from since the learner first started.",
        )
        self.model_auc_floor = Gauge(
            "tunestream_model_auc_floor",
            "The configured floor of the engagement model's AUC (the quality alert's line).",
            registry=reg,
        )
        self.model_auc_floor.set(model_auc_floor)
        self.model_snapshot_created_timestamp_seconds = Gauge(
            "tunestream_model_snapshot_created_timestamp_seconds",
            "Unix time the served model snapshot was made by the learner; 0 before the first.",
            registry=reg,
        )
        self.model_snapshots_loaded_total = Counter(
            "tunestream_model_snapshots_loaded_total",
            "Model snapshots verified and swapped in.",
            registry=reg,
        )
        self.model_snapshots_refused_total = Counter(
            "tunestream_model_snapshots_refused_total",
            "Model snapshots refused (bad signature, truncated, unsigned, ...): the previous "
            "model stays.",
            ["reason"],
            registry=reg,
        )
        self._model_versions: dict[str, str] = {}
        # --- exploration: labels are the fixed arms and credit statuses -------------
        self.exploration_slots_total = Counter(
            "tunestream_exploration_slots_total",
            "Lists published with an exploration slot, by the arm (source) that filled it.",
            ["arm"],
            registry=reg,
        )
        self.exploration_credits_total = Counter(
            "tunestream_exploration_credits_total",
            "Folded events by what they did to an exploration slot's reward (credited, "
            "no_recommendation, unknown_list, ...).",
            ["status"],
            registry=reg,
        )
        self.exploration_arm_mean_reward = Gauge(
            "tunestream_exploration_arm_mean_reward",
            "Mean long-term reward of each exploration arm, in the served snapshot's policy.",
            ["arm"],
            registry=reg,
        )

        self.build_info = Info(
            "tunestream_build", "Versions of tunestream and what it runs on.", registry=reg
        )
        self.build_info.info(build_versions())
        self._zero_known_series()

    def _zero_known_series(self) -> None:
        # Series that exist from the start make rate() and absent() alerts behave at boot.
        for event_type in EVENT_TYPES:
            for outcome in OUTCOMES:
                self.events_total.labels(type=event_type, outcome=outcome)
        for trigger in LIST_TRIGGERS:
            self.recommendation_lists_total.labels(trigger=trigger)
        for rule in RULES:
            self.list_rule_actions_total.labels(rule=rule)

    def declare_reasons(self, reasons: Iterable[str]) -> None:
        """Create the DLQ series at 0 for every known reason code."""
        for reason in reasons:
            self.dead_letters_total.labels(reason=reason)

    def _model_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, ["model", "version"], registry=self.registry)

    def declare_refusal_reasons(self, reasons: Iterable[str]) -> None:
        """Create the snapshot-refusal series at 0 for every refusal reason."""
        for reason in reasons:
            self.model_snapshots_refused_total.labels(reason=reason)

    def declare_exploration(self, arms: Iterable[str], statuses: Iterable[str]) -> None:
        """Create the exploration series at 0 for every arm and credit status."""
        for arm in arms:
            self.exploration_slots_total.labels(arm=arm)
        for status in statuses:
            self.exploration_credits_total.labels(status=status)

    def set_model_quality(
        self, model: str, version: str, quality: Mapping[str, float | None]
    ) -> None:
        """Show ``model``'s quality as of ``version``; its previous version's series go.

        ``quality`` maps ``auc``, ``log_loss``, ``calibration_error``,
        ``hit_rate_at_10`` and ``examples_learned`` (any may be absent or None:
        not measured yet) to values.
        """
        gauges = {
            "auc": self.model_auc,
            "log_loss": self.model_log_loss,
            "calibration_error": self.model_calibration_error,
            "hit_rate_at_10": self.model_hit_rate_at_10,
            "examples_learned": self.model_examples_learned,
        }
        previous = self._model_versions.get(model)
        for name, gauge in gauges.items():
            if previous is not None:
                with contextlib.suppress(KeyError):
                    gauge.remove(model, previous)
            value = quality.get(name)
            if value is not None:
                gauge.labels(model=model, version=version).set(value)
        self._model_versions[model] = version

    def observe_end_to_end(self, seconds: float) -> None:
        """Record one list's latency; clock skew can make it negative, which counts as 0."""
        self.end_to_end_latency_seconds.observe(max(seconds, 0.0))

    def count_list(self, trigger: str, rule_counts: Mapping[str, int]) -> None:
        """Count one published list by its trigger, and what each re-ranking rule did."""
        self.recommendation_lists_total.labels(trigger=trigger).inc()
        for rule, count in rule_counts.items():
            if count:
                self.list_rule_actions_total.labels(rule=rule).inc(count)

    def observe_list(self, stats: ListStats, stage_seconds: Mapping[str, float]) -> None:
        """Record one published list: its size and diversity, and each stage's time.

        ``stage_seconds`` maps stages of :data:`LIST_STAGES` to seconds; a stage
        the list skipped is left out. Any other stage name is a ValueError (the
        label's values stay the fixed set).
        """
        unknown = stage_seconds.keys() - self._list_stages.keys()
        if unknown:  # before observing anything: a refused list leaves no half record
            raise ValueError(f"unknown list stages {sorted(unknown)}: known are {LIST_STAGES}")
        self.list_items.observe(stats.size)
        self.list_distinct_artists.observe(stats.distinct_artists)
        self.list_distinct_genres.observe(stats.distinct_genres)
        self.list_discovery_share.observe(stats.discovery_share)
        for stage, seconds in stage_seconds.items():
            self._list_stages[stage].observe(max(seconds, 0.0))  # clock steps count as 0

    def set_exposure(self, coverage: float, artist_gini: float) -> None:
        """Show the rolling window's catalogue coverage and artist exposure Gini."""
        self.catalogue_coverage_ratio.set(coverage)
        self.exposure_artist_gini.set(artist_gini)

    def set_partition_lag(self, topic: str, partition: int, messages: int, seconds: float) -> None:
        labels = {"topic": topic, "partition": str(partition)}
        self.consumer_lag_messages.labels(**labels).set(max(messages, 0))
        self.consumer_lag_seconds.labels(**labels).set(max(seconds, 0.0))

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series: another worker reports it now."""
        for gauge in (self.consumer_lag_messages, self.consumer_lag_seconds):
            with contextlib.suppress(KeyError):  # never reported
                gauge.remove(topic, str(partition))


class LearnerMetrics:
    """The learner process's metrics (``tunestream learner``), against their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.registry = reg
        self.examples_total = Counter(
            "tunestream_learner_examples_total",
            "Training examples learned (each once: a replay after a restart is not counted).",
            registry=reg,
        )
        self.learning_seconds_total = Counter(
            "tunestream_learner_learning_seconds_total",
            "Time spent learning examples (its rate against examples_total is the learner's "
            "capacity: the stream's rate must stay below it).",
            registry=reg,
        )
        self.bad_records_total = Counter(
            "tunestream_learner_bad_records_total",
            "training-examples records that could not be read, skipped.",
            registry=reg,
        )
        self.snapshots_published_total = Counter(
            "tunestream_learner_snapshots_published_total",
            "Signed model snapshots published and acknowledged.",
            registry=reg,
        )
        self.snapshots_refused_total = Counter(
            "tunestream_learner_snapshots_refused_total",
            "Snapshots on the topic the learner refused to resume from, by reason.",
            ["reason"],
            registry=reg,
        )
        self.snapshot_bytes = Gauge(
            "tunestream_learner_snapshot_bytes",
            "Size of the last snapshot published.",
            registry=reg,
        )
        self.build_info = Info(
            "tunestream_build", "Versions of tunestream and what it runs on.", registry=reg
        )
        self.build_info.info(build_versions())


def build_versions() -> dict[str, str]:
    """The ``tunestream_build_info`` labels: fixed per process."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "version": version("tunestream"),
        "faust": version("faust-streaming"),
        "python": platform.python_version(),
    }
