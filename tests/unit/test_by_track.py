"""The track side: a few records per message, each track on the partition Kafka gives it."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from online_models.trending import TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline.by_track import fold_track_record, group_by_partition, murmur2, partition_of
from streams.pipeline.ingest import Source
from streams.pipeline.message import MessagePlanner
from streams.pipeline.refresh import RefreshThrottle
from streams.state.keyed_state import TrackState
from tests.factories import NOW_MS, make_event, planner_config


@given(st.binary(max_size=64))
def test_murmur2_matches_the_kafka_client(key: bytes) -> None:
    assert murmur2(key) & 0x7FFFFFFF == kafka_murmur2(key) & 0x7FFFFFFF


def test_a_batch_of_fifty_events_costs_at_most_one_record_per_partition() -> None:
    config = planner_config(track_partitions=4)
    planner = MessagePlanner(
        config,
        EventDecoder(now_ms=lambda: NOW_MS),
        TrendingBoard(),
        RefreshThrottle(interval_s=60.0),
        now_ms=lambda: NOW_MS,
    )
    events = [make_event(user_id="u1", track_id=f"t{i}") for i in range(50)]
    effects = planner.plan(b"u1", orjson.dumps(events), Source("events", 2, 9), stored=None)
    by_track = [o for o in effects.outputs if o.topic == "by-track"]
    assert 1 <= len(by_track) <= 4
    for output in by_track:
        record = orjson.loads(output.value)
        assert record["source"] == [2, 9]
        tracks = {event["track_id"] for _, event in record["items"]}
        assert {partition_of(t.encode(), 4) for t in tracks} == {output.partition}
    indexes = sorted(i for o in by_track for i, _ in orjson.loads(o.value)["items"])
    assert indexes == list(range(50))


def test_a_replayed_record_changes_no_track_twice() -> None:
    events = [make_event(track_id="t1"), make_event(track_id="t1"), make_event(track_id="t2")]
    [(_, items)] = group_by_partition(events[:2], 1).items()
    record = orjson.loads(orjson.dumps({"source": [0, 5], "items": [list(i) for i in items]}))
    stored: dict[str, TrackState] = {}

    def load(track_id: str) -> TrackState:
        return stored.get(track_id) or TrackState.empty()

    stored.update(fold_track_record(record, load))
    plays = stored["t1"].features.read(NOW_MS)["plays_1h"]
    assert fold_track_record(record, load) == {}  # the replay: nothing changed
    assert stored["t1"].features.read(NOW_MS)["plays_1h"] == plays
