"""The worker's side of learning, without Kafka: examples, taste vectors, snapshots, lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from features import TrackInfo, UserFeatures
from online_models.learner import Learner, TrainingExample
from online_models.serving import UNTRAINED, ServingModels
from online_models.snapshot import SnapshotRefused, encode_snapshot
from online_models.taste import TasteModel
from online_models.trending import PartitionTop, TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline.ingest import Source
from streams.pipeline.learning import (
    EXAMPLES_PER_RECORD,
    ExampleBatcher,
    ExampleMaker,
    ModelSlot,
)
from streams.pipeline.message import MessagePlanner
from streams.pipeline.refresh import RefreshThrottle
from streams.state.codec import decode_state
from streams.state.keyed_state import UserState
from tests.factories import NOW_MS, make_event, planner_config

KEY = b"k" * 32
CATALOG = {
    f"t{i}": TrackInfo(f"t{i}", f"a{i % 4}", (("jazz", "rock")[i % 2],), 200_000) for i in range(20)
}


def planner(slot: ModelSlot, learning: bool = True, trending: TrendingBoard | None = None) -> Any:
    return MessagePlanner(
        planner_config(training_examples_topic="examples" if learning else None),
        EventDecoder(now_ms=lambda: NOW_MS, max_batch_events=2_000),
        trending or TrendingBoard(),
        RefreshThrottle(interval_s=2.0),
        track_of=CATALOG.get,
        now_ms=lambda: NOW_MS,
        now_s=lambda: 0.0,
        learning=ExampleMaker(slot, CATALOG, negatives=2),
    )


def examples_in(effects: Any) -> list[dict[str, Any]]:
    return [example.to_record() for example in effects.examples]


def trained_snapshot(created_at_ms: int = NOW_MS) -> bytes:
    learner = Learner(taste_factors=16)
    learner.set_catalog({t: (i.artist_id, i.genres) for t, i in CATALOG.items()})
    for offset in range(200):
        track = f"t{offset % 20}"
        x = {"artist_affinity_share": float(offset % 2)}
        example = TrainingExample(f"e{offset}", x, offset % 2, track, [0.01] * 16, ["t1"])
        learner.learn(example, 0, offset)
    return encode_snapshot(learner.snapshot(created_at_ms), KEY)


def test_each_folded_event_makes_one_example_and_a_replay_makes_none() -> None:
    p = planner(ModelSlot(KEY, catalog=CATALOG))
    events = [make_event(track_id="t1"), make_event(track_id="t2", type="skip")]
    first = p.plan(b"u1", orjson.dumps(events), Source("events", 0, 5), None)
    assert [e["event_id"] for e in examples_in(first)] == [e["event_id"] for e in events]
    assert [e["y"] for e in examples_in(first)] == [1, 0]
    replay = p.plan(b"u1", orjson.dumps(events), Source("events", 0, 5), first.state)
    assert len(replay.outcome.accepted) == 2 and examples_in(replay) == []


def test_the_users_taste_vector_is_stored_with_their_state_and_moves_with_each_event() -> None:
    p = planner(ModelSlot(KEY, catalog=CATALOG))
    first = p.plan(b"u1", orjson.dumps([make_event(track_id="t1")]), Source("e", 0, 1), None)
    stored = UserState.from_state(decode_state(first.state))
    assert stored.taste is not None and stored.taste.shape == (16,)
    second = p.plan(
        b"u1", orjson.dumps([make_event(track_id="t3")]), Source("e", 0, 2), first.state
    )
    assert examples_in(second)[0]["user_vector"] == pytest.approx(stored.taste.tolist(), rel=1e-6)
    moved = UserState.from_state(decode_state(second.state)).taste
    assert not np.allclose(moved, stored.taste)


def test_the_workers_user_step_is_the_user_part_of_learning_in_one_place() -> None:
    models = ServingModels.untrained(k=8)
    models.set_catalog(CATALOG)
    user = models.taste.new_user_vector("t1") + 0.05
    event = {"event_id": "e9", "type": "play", "track_id": "t4", "ts": NOW_MS, "ms_played": 150_000}
    example, stepped = models.example(
        UserFeatures(), event, CATALOG["t4"], user, list(CATALOG), negatives=3
    )
    alone = TasteModel(k=8)
    alone.set_catalog({t: (i.artist_id, i.genres) for t, i in CATALOG.items()})
    expected = alone.learn(user, "t4", example.y, example.negatives)
    np.testing.assert_allclose(stepped, expected)
    again, _ = models.example(UserFeatures(), event, CATALOG["t4"], user, list(CATALOG), 3)
    assert again.negatives == example.negatives  # drawn from the event id: repeatable


def test_examples_of_many_messages_go_out_in_few_records_of_bounded_size() -> None:
    p = planner(ModelSlot(KEY, catalog=CATALOG))
    batcher = ExampleBatcher("examples")
    sent = []
    for offset in range(5):
        events = [make_event(track_id=f"t{i % 20}", ts=NOW_MS - 1000 + i) for i in range(50)]
        effects = p.plan(b"u1", orjson.dumps(events), Source("e", 0, offset), None)
        sent += batcher.add(effects.examples)
    sent += batcher.drain()
    assert [len(orjson.loads(o.value)) for o in sent] == [EXAMPLES_PER_RECORD] * 2 + [50]
    assert {o.topic for o in sent} == {"examples"} and batcher.drain() == []


def test_with_learning_off_no_example_goes_out_and_no_vector_is_kept() -> None:
    p = planner(ModelSlot(KEY, catalog=CATALOG), learning=False)
    effects = p.plan(b"u1", orjson.dumps([make_event()]), Source("e", 0, 1), None)
    assert examples_in(effects) == []
    assert UserState.from_state(decode_state(effects.state)).taste is None


def test_a_verified_snapshot_is_swapped_in_and_a_refused_or_older_one_changes_nothing() -> None:
    slot = ModelSlot(KEY, catalog=CATALOG)
    assert slot.current.version == UNTRAINED
    blob = trained_snapshot()
    assert slot.offer(blob) is True
    served = slot.current
    assert served.version == "logistic-v1" and served.examples_seen == 200
    for bad in (blob[:-1] + bytes([blob[-1] ^ 1]), blob[:50], b"\x80\x04pickle"):
        with pytest.raises(SnapshotRefused):
            slot.offer(bad)
        assert slot.current is served
    assert slot.offer(trained_snapshot(created_at_ms=NOW_MS - 1)) is False
    assert slot.current is served


def test_a_worker_without_a_key_refuses_every_snapshot() -> None:
    slot = ModelSlot(None, catalog=CATALOG)
    with pytest.raises(SnapshotRefused):
        slot.offer(trained_snapshot())
    assert slot.current.version == UNTRAINED


def test_lists_are_ranked_by_taste_once_a_snapshot_is_served() -> None:
    trending = TrendingBoard()
    top = PartitionTop()
    for i, track in enumerate(CATALOG):
        top.offer(track, value=1.0 + i, ts_ms=NOW_MS)
    trending.merge(top.snapshot(partition=0))
    slot = ModelSlot(KEY, catalog=CATALOG)
    p = planner(slot, trending=trending)
    before = p.plan(b"u1", orjson.dumps([make_event(track_id="t1")]), Source("e", 0, 1), None)
    assert before.recommendation["model_version"].startswith("popularity")
    slot.offer(trained_snapshot())
    event = make_event(user_id="u2", track_id="t1")
    after = p.plan(b"u2", orjson.dumps([event]), Source("e", 0, 2), None)
    listed = after.recommendation
    assert listed["model_version"].startswith("taste-logistic-v1+engagement-logistic-v1+")
    assert "taste" in {item["source"] for item in listed["items"]}
    assert "t1" not in [item["track_id"] for item in listed["items"]]  # just heard
