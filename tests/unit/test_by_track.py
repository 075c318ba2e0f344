"""The track side: a few records per message, each track on the partition Kafka gives it."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from online_models.trending import TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline.by_track import (
    TrackBatches,
    fold_track_record,
    group_by_partition,
    murmur2,
    partition_of,
    record_size,
    track_items,
)
from streams.pipeline.ingest import Source
from streams.pipeline.message import MessagePlanner
from streams.pipeline.refresh import RefreshThrottle
from streams.state.keyed_state import TrackState
from tests.factories import NOW_MS, make_event, planner_config


@given(st.binary(max_size=64))
def test_murmur2_matches_the_kafka_client(key: bytes) -> None:
    assert murmur2(key) & 0x7FFFFFFF == kafka_murmur2(key) & 0x7FFFFFFF


def test_a_batch_of_fifty_events_gives_items_for_at_most_each_partition() -> None:
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
    assert 1 <= len(effects.track_items) <= 4
    for partition, items in effects.track_items.items():
        decoded = [orjson.loads(item) for item in items]
        assert {(sp, so) for sp, so, _, _ in decoded} == {(2, 9)}
        tracks = {event["track_id"] for _, _, _, event in decoded}
        assert {partition_of(t.encode(), 4) for t in tracks} == {partition}
    indexes = sorted(orjson.loads(i)[2] for b in effects.track_items.values() for i in b)
    assert indexes == list(range(50))


def test_many_messages_share_one_record_per_partition_in_their_order() -> None:
    batches = TrackBatches("by-track", max_record_bytes=100_000)
    for offset in range(30):
        event = make_event(track_id=f"t{offset % 7}")
        assert batches.add(track_items(1, offset, [event], 4)) == []
    records = batches.take()
    assert len(records) <= 4 and len(batches) == 0
    for record in records:
        positions = [(sp, so, i) for sp, so, i, _ in orjson.loads(record.value)["items"]]
        assert positions == sorted(positions)
    assert sum(len(orjson.loads(r.value)["items"]) for r in records) == 30


def test_a_record_goes_out_before_it_would_outgrow_the_limit() -> None:
    events = [make_event(track_id="t1", event_id=f"e{i}") for i in range(20)]
    one = record_size(track_items(0, 0, events[:1], 1)[0])
    batches = TrackBatches("by-track", max_record_bytes=5 * one)
    sent = [o for i, e in enumerate(events) for o in batches.add(track_items(0, i, [e], 1))]
    sent += batches.take()
    assert all(len(o.value) <= 5 * one for o in sent)
    folded = [so for o in sent for _, so, _, _ in orjson.loads(o.value)["items"]]
    assert folded == list(range(20))  # nothing lost, nothing twice, in order


def test_records_of_many_messages_fold_each_position_once() -> None:
    stored: dict[str, TrackState] = {}

    def load(track_id: str) -> TrackState:
        return stored.get(track_id) or TrackState.empty()

    batches = TrackBatches("by-track", max_record_bytes=100_000)
    for offset in range(5):
        batches.add(track_items(0, offset, [make_event(track_id="t1")], 1))
    [record] = batches.take()
    stored.update(fold_track_record(orjson.loads(record.value), load))
    plays = stored["t1"].features.read(NOW_MS)["plays_1h"]
    assert plays == pytest.approx(5.0, rel=1e-3)  # decayed a little: 1 s old
    assert fold_track_record(orjson.loads(record.value), load) == {}


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
