"""Exploration wired into the worker and the learner, without Kafka: slot, credits, policy."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from online_models.exploration import HOUR_MS, ExplorationPolicy, FeedbackLog
from online_models.exploration_slot import ARMS, NEW_ARTIST, REASONS, TASTE
from online_models.learner import Learner, read_record
from online_models.recommender import ListConfig
from online_models.reranking import RerankConfig
from online_models.retrieval import SOURCES
from online_models.serving import ServingModels
from online_models.snapshot import decode_snapshot, encode_snapshot
from online_models.trending import PartitionTop, TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline.exploring import Exploration
from streams.pipeline.ingest import Source
from streams.pipeline.learning import ExampleBatcher, ExampleMaker, ModelSlot
from streams.pipeline.message import Effects, MessagePlanner
from streams.pipeline.refresh import RefreshThrottle
from tests.factories import NOW_MS, make_event, planner_config
from tests.unit.test_learning import CATALOG, KEY, trained_snapshot

ARTIST_OF = {track: info.artist_id for track, info in CATALOG.items()}


def trending_board() -> TrendingBoard:
    board, top = TrendingBoard(), PartitionTop()
    for i, track in enumerate(CATALOG):
        top.offer(track, value=1.0 + i, ts_ms=NOW_MS)
    board.merge(top.snapshot(partition=0))
    return board


def served_slot() -> ModelSlot:
    slot = ModelSlot(KEY, catalog=CATALOG)
    slot.offer(trained_snapshot())
    return slot


def explorer(slot: ModelSlot, exploration: Exploration | None = None) -> MessagePlanner:
    return MessagePlanner(
        planner_config(
            training_examples_topic="examples", lists=ListConfig(rerank=RerankConfig(size=5))
        ),
        EventDecoder(now_ms=lambda: NOW_MS, max_batch_events=2_000),
        trending_board(),
        RefreshThrottle(interval_s=0.0),
        track_of=CATALOG.get,
        artist_of=ARTIST_OF,
        now_ms=lambda: NOW_MS,
        now_s=lambda: 0.0,
        learning=ExampleMaker(slot, CATALOG, negatives=2),
        exploration=exploration,
    )


def plan(planner: MessagePlanner, offset: int, stored: bytes | None, **event: Any) -> Effects:
    message = orjson.dumps([make_event(**event)])
    return planner.plan(b"u1", message, Source("events", 0, offset), stored)


def test_a_taste_list_leaves_its_last_slot_to_the_arm_the_policy_draws() -> None:
    effects = plan(explorer(served_slot(), Exploration()), 1, None, track_id="t1")
    items = effects.recommendation["items"]
    assert len(items) == 5
    assert {item["source"] for item in items[:4]} <= set(SOURCES)
    slot = items[-1]
    assert effects.explored == slot["source"] in ARMS
    assert slot["reason"] == REASONS[slot["source"]]
    assert slot["track_id"] not in {item["track_id"] for item in items[:4]}
    assert effects.feedback == [(slot["source"], None, 0.0)]  # one trial, worth 0 for now


def test_the_same_state_models_and_event_give_the_same_list() -> None:
    slot = served_slot()
    event = make_event(track_id="t3")
    lists = [
        explorer(slot, Exploration())
        .plan(b"u1", orjson.dumps([event]), Source("events", 0, 1), None)
        .recommendation["items"]
        for _ in range(2)
    ]
    assert lists[0] == lists[1]


def test_an_artist_the_user_never_played_is_offered_as_a_new_artist() -> None:
    planner = explorer(served_slot(), Exploration())
    # The policy has learned that discovery pays: it draws new_artist nearly always.
    policy = ExplorationPolicy()
    for _ in range(500):
        policy.reward(NEW_ARTIST, 0.9)
        policy.reward(TASTE, 0.05)
        policy.reward("trending", 0.05)
    planner.learning.slot.current.exploration = policy  # type: ignore[union-attr]
    effects = plan(planner, 1, None, track_id="t1")
    slot = effects.recommendation["items"][-1]
    assert slot["source"] == NEW_ARTIST and slot["artist_id"] != ARTIST_OF["t1"]


def test_saving_the_offered_track_credits_its_arm_once() -> None:
    planner = explorer(served_slot(), Exploration())
    first = plan(planner, 1, None, track_id="t1", ts=NOW_MS - 60_000)
    listed = first.recommendation
    offered = listed["items"][-1]
    save = {
        "track_id": offered["track_id"],
        "type": "save",
        "recommendation_id": listed["recommendation_id"],
        "ts": NOW_MS - 30_000,
    }
    second = plan(planner, 2, first.state, **save)
    assert "credited" in second.credits
    rewards = [new for arm, _, new in second.feedback if arm == offered["source"]]
    assert rewards and max(rewards) >= 0.3  # a save is worth 0.3, plus the session event
    again = plan(planner, 3, second.state, **save)  # a new event id: the same save again
    assert "repeat" in again.credits


def test_an_event_naming_a_list_this_worker_never_made_credits_nothing() -> None:
    planner = explorer(served_slot(), Exploration())
    effects = plan(planner, 1, None, recommendation_id="elsewhere", type="save")
    assert effects.credits == ["unknown_list"]
    assert [entry for entry in effects.feedback if entry[1] is not None] == []


def test_coming_back_after_the_session_gap_credits_a_return_to_the_list() -> None:
    exploration = Exploration(session_gap_ms=HOUR_MS)
    planner = explorer(served_slot(), exploration)
    first = plan(planner, 1, None, track_id="t1", ts=NOW_MS - 5 * HOUR_MS)
    arm = first.explored
    back = plan(planner, 2, first.state, track_id="t2", ts=NOW_MS - 2 * HOUR_MS)
    returned = [new for a, old, new in back.feedback if a == arm and old is not None]
    assert returned == [0.35]  # the return term alone


def test_with_exploration_off_no_slot_is_explored() -> None:
    effects = plan(explorer(served_slot(), None), 1, None, track_id="t1")
    assert {item["source"] for item in effects.recommendation["items"]} <= set(SOURCES)
    assert "exploration" not in effects.recommendation["model_version"]
    assert effects.explored is None and effects.feedback == []


def test_feedback_travels_with_the_examples_and_the_learner_applies_it_once() -> None:
    batcher = ExampleBatcher("examples")
    log = FeedbackLog()
    log.reward("trending", 0.0)
    log.revise("trending", 0.0, 0.55)
    (record,) = batcher.add([], log.entries) + batcher.drain()
    examples, feedback = read_record(record.value)
    assert examples == [] and feedback == log.entries
    learner = Learner(taste_factors=4)
    learner.learn_many(examples, 0, 7, feedback)
    learner.learn_many(examples, 0, 7, feedback)  # the same position: learned already
    assert learner.exploration.mean_reward("trending") == pytest.approx(0.55)
    assert learner.exploration.stats()["trending"]["pulls"] == 1


def test_the_snapshot_carries_the_policy_to_the_workers_and_to_a_resumed_learner() -> None:
    learner = Learner(taste_factors=4)
    learner.learn_many([], 0, 0, [("new_artist", None, 0.0), ("new_artist", 0.0, 0.8)])
    snapshot = decode_snapshot(encode_snapshot(learner.snapshot(NOW_MS), KEY), KEY)
    served = ServingModels.from_snapshot(snapshot)
    assert served.exploration.mean_reward(NEW_ARTIST) == pytest.approx(0.8)
    assert snapshot.metrics["exploration"][NEW_ARTIST]["trials"] == 1.0
    resumed = Learner.resume(snapshot)
    assert resumed.exploration.to_state() == learner.exploration.to_state()


@pytest.mark.parametrize(
    "record",
    [b'[["", null, 0.1]]', b'[["taste", null, 1.5]]', b'[["taste", 0.1]]', b'{"x": 1}', b"nope"],
)
def test_a_malformed_record_is_refused_with_a_reason(record: bytes) -> None:
    with pytest.raises(ValueError):
        read_record(record)
