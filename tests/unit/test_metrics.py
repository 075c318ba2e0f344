"""The metrics bundle keeps Prometheus conventions and bounded label sets."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from online_models.list_quality import ListStats
from streams.contracts.events import REASONS
from streams.ops.metrics import EVENT_TYPES, LIST_STAGES, OUTCOMES, Metrics, latency_buckets

# Every label a metric may carry, with where its values come from: none grows with traffic.
BOUNDED_LABELS = {
    "type", "outcome", "reason", "topic", "partition", "table", "trigger", "rule", "stage",
}  # fmt: skip
BUILD_LABELS = {"version", "faust", "python"}
# Histograms of counts and shares in one list: not times, so no unit suffix.
PER_LIST_HISTOGRAMS = {
    "tunestream_list_items",
    "tunestream_list_distinct_artists",
    "tunestream_list_distinct_genres",
    "tunestream_list_discovery_share",
}


def fresh() -> tuple[Metrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return Metrics(registry, latency_objective_s=0.3), registry


def test_every_metric_is_prefixed_and_counters_end_in_total() -> None:
    _, registry = fresh()
    for family in registry.collect():
        assert family.name.startswith("tunestream_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_no_metric_takes_a_user_or_track_id_as_a_label() -> None:
    metrics, registry = fresh()
    metrics.declare_reasons(REASONS)
    metrics.set_partition_lag("events", 0, 5, 1.0)
    metrics.table_keys.labels(table="users").set(1)
    metrics.recommendation_lists_total.labels(trigger="save").inc()
    for family in registry.collect():
        for sample in family.samples:
            allowed = BUILD_LABELS if family.name == "tunestream_build" else BOUNDED_LABELS
            assert set(sample.labels) <= allowed | {"le"}, (family.name, sample.labels)


def test_time_metrics_are_in_seconds() -> None:
    _, registry = fresh()
    for family in registry.collect():
        if family.name in PER_LIST_HISTOGRAMS:
            continue
        if family.type == "histogram" or "latency" in family.name or "lag" in family.name:
            unitless = family.name.endswith("_messages")
            assert unitless or family.name.endswith("_seconds"), family.name


def test_latency_histogram_has_a_bucket_exactly_at_the_objective() -> None:
    metrics, registry = fresh()
    metrics.observe_end_to_end(0.29)
    metrics.observe_end_to_end(0.31)
    bucket = registry.get_sample_value(
        "tunestream_end_to_end_latency_seconds_bucket", {"le": "0.3"}
    )
    assert bucket == 1.0
    assert registry.get_sample_value("tunestream_latency_objective_seconds") == 0.3
    assert latency_buckets(0.5).count(0.5) == 1  # an objective on a default bucket is not doubled


def test_negative_latency_from_clock_skew_counts_as_zero() -> None:
    metrics, registry = fresh()
    metrics.observe_end_to_end(-2.0)
    assert registry.get_sample_value("tunestream_end_to_end_latency_seconds_sum") == 0.0


def test_event_outcome_series_exist_at_zero_from_the_start() -> None:
    _, registry = fresh()
    for event_type in EVENT_TYPES:
        for outcome in OUTCOMES:
            labels = {"type": event_type, "outcome": outcome}
            assert registry.get_sample_value("tunestream_events_total", labels) == 0.0


def test_a_revoked_partition_stops_reporting_lag() -> None:
    metrics, registry = fresh()
    metrics.set_partition_lag("events", 2, 10, 4.0)
    metrics.forget_partition("events", 2)
    metrics.forget_partition("events", 2)  # twice is harmless
    labels = {"topic": "events", "partition": "2"}
    assert registry.get_sample_value("tunestream_consumer_lag_messages", labels) is None


def test_build_info_names_the_versions() -> None:
    _, registry = fresh()
    info = [s for f in registry.collect() if f.name == "tunestream_build" for s in f.samples]
    assert info and set(info[0].labels) == BUILD_LABELS


def test_a_published_list_is_recorded_by_size_diversity_and_discovery() -> None:
    metrics, registry = fresh()
    metrics.observe_list(ListStats(10, 4, 3, 0.2), {})
    metrics.observe_list(ListStats(10, 2, 1, 0.0), {})
    value = registry.get_sample_value
    assert value("tunestream_list_items_count") == 2.0
    assert value("tunestream_list_items_sum") == 20.0
    assert value("tunestream_list_distinct_artists_sum") == 6.0
    assert value("tunestream_list_distinct_artists_bucket", {"le": "3.0"}) == 1.0
    assert value("tunestream_list_distinct_genres_bucket", {"le": "1.0"}) == 1.0
    assert value("tunestream_list_discovery_share_bucket", {"le": "0.0"}) == 1.0
    assert value("tunestream_list_discovery_share_bucket", {"le": "0.2"}) == 2.0


def test_every_list_stage_is_timed_in_its_own_series_declared_at_zero() -> None:
    metrics, registry = fresh()
    for stage in LIST_STAGES:
        assert (
            registry.get_sample_value("tunestream_list_stage_seconds_count", {"stage": stage}) == 0
        )
    metrics.observe_list(ListStats(5, 5, 5, 1.0), {"retrieval": 0.00002, "ranking": -1.0})
    count = {
        stage: registry.get_sample_value("tunestream_list_stage_seconds_count", {"stage": stage})
        for stage in LIST_STAGES
    }
    assert count == {"retrieval": 1.0, "ranking": 1.0, "reranking": 0.0}  # a skipped stage
    fast = {"stage": "retrieval", "le": "2.5e-05"}
    assert registry.get_sample_value("tunestream_list_stage_seconds_bucket", fast) == 1.0
    ranking = {"stage": "ranking"}  # a clock step back counts as 0 s
    assert registry.get_sample_value("tunestream_list_stage_seconds_sum", ranking) == 0.0


def test_an_unknown_list_stage_is_refused_before_anything_is_recorded() -> None:
    metrics, registry = fresh()
    with pytest.raises(ValueError, match="user-42"):
        metrics.observe_list(ListStats(1, 1, 1, 0.0), {"retrieval": 0.001, "user-42": 0.001})
    assert registry.get_sample_value("tunestream_list_items_count") == 0.0
    assert (
        registry.get_sample_value("tunestream_list_stage_seconds_count", {"stage": "user-42"})
        is None
    )


def test_the_exposure_gauges_show_the_window_and_its_last_reading() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, exposure_window_s=900.0)
    assert registry.get_sample_value("tunestream_exposure_window_seconds") == 900.0
    assert registry.get_sample_value("tunestream_catalogue_coverage_ratio") == 0.0
    metrics.set_exposure(coverage=0.25, artist_gini=0.6)
    metrics.set_exposure(coverage=0.3, artist_gini=0.5)
    assert registry.get_sample_value("tunestream_catalogue_coverage_ratio") == 0.3
    assert registry.get_sample_value("tunestream_exposure_artist_gini") == 0.5
