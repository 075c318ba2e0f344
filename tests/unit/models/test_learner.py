"""The central learner: prequential learning, signed snapshots, resuming with nothing twice."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from online_models.learner import SNAPSHOT_MODELS, Learner, TrainingExample
from online_models.snapshot import SnapshotRefused, decode_snapshot, encode_snapshot

KEY = b"k" * 32
CATALOG = {f"t{i}": (f"a{i % 5}", (f"g{i % 3}",)) for i in range(30)}


def examples(n: int, seed: int = 3) -> list[TrainingExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        liked = rng.random() < 0.6
        x = {"artist_affinity_share": (0.7 if liked else 0.2) + rng.uniform(-0.2, 0.2)}
        if rng.random() < 0.5:
            x["device=car"] = 1.0
        vector = [rng.uniform(-0.1, 0.1) for _ in range(4)]
        negatives = [f"t{rng.randrange(30)}" for _ in range(2)]
        out.append(
            TrainingExample(f"e{i}", x, int(liked), f"t{rng.randrange(30)}", vector, negatives)
        )
    return out


def learner() -> Learner:
    fresh = Learner(taste_factors=4)
    fresh.set_catalog(CATALOG)
    return fresh


def test_a_resumed_learner_goes_on_exactly_like_one_that_never_stopped() -> None:
    stream = examples(400)
    steady, stopped = learner(), learner()
    for offset, example in enumerate(stream[:200]):
        steady.learn(example, 0, offset)
        stopped.learn(example, 0, offset)
    blob = encode_snapshot(stopped.snapshot(created_at_ms=1), KEY)
    steady.snapshot(created_at_ms=1)  # the same version step for both
    resumed = Learner.resume(decode_snapshot(blob, KEY))
    resumed.set_catalog(CATALOG)
    for offset, example in enumerate(stream[200:], start=200):
        steady.learn(example, 0, offset)
    for offset, example in enumerate(stream):  # a replay from the start: the first 200 skip
        resumed.learn(example, 0, offset)
    assert resumed.examples_seen == steady.examples_seen == 400
    probe = {"artist_affinity_share": 0.5, "device=car": 1.0}
    assert resumed.engagement.predict_one(probe) == steady.engagement.predict_one(probe)
    ids = list(CATALOG)
    assert np.array_equal(resumed.taste.track_matrix(ids), steady.taste.track_matrix(ids))
    assert resumed.version == steady.version == "logistic-v2"
    assert resumed.quality.version == "logistic-v2"
    assert resumed.quality.window == steady.quality.window  # not shrunk by the restart


def test_a_learner_whose_clock_is_behind_still_dates_each_snapshot_after_the_last() -> None:
    first = learner()
    before = first.snapshot(created_at_ms=5_000)
    assert first.snapshot(created_at_ms=4_000).created_at_ms == 5_001  # the clock went back
    resumed = Learner.resume(decode_snapshot(encode_snapshot(before, KEY), KEY))
    assert resumed.snapshot(created_at_ms=1_000).created_at_ms == 5_001  # a host behind
    assert resumed.snapshot(created_at_ms=9_000).created_at_ms == 9_000  # time moves on


def test_no_position_is_learned_twice() -> None:
    once = learner()
    first = examples(1)[0]
    assert once.learn(first, partition=2, offset=7)
    assert not once.learn(first, partition=2, offset=7)
    assert not once.learn(first, partition=2, offset=3)
    assert once.learn(first, partition=1, offset=3)  # another partition's offsets are its own
    assert once.examples_seen == 2


def test_the_live_quality_is_scored_before_learning_and_rolls_on_across_versions() -> None:
    live = learner()
    for offset, example in enumerate(examples(1_000)):
        live.learn(example, 0, offset)
    snapshot = live.snapshot(created_at_ms=1)
    assert snapshot.metrics["engagement"]["roc_auc"] > 0.7  # chance is 0.5: it learns
    assert live.version == "logistic-v2" and live.quality.version == "logistic-v2"
    assert live.quality.examples == 1_000  # the window goes on: v2 is judged on it too
    assert snapshot.metrics["taste"]["ranked"] > 0


@pytest.mark.parametrize("model", SNAPSHOT_MODELS)
def test_a_tampered_or_wrongly_signed_snapshot_of_every_model_is_refused(model: str) -> None:
    trained = Learner(model, taste_factors=4)
    for offset, example in enumerate(examples(50)):
        trained.learn(example, 0, offset)
    blob = encode_snapshot(trained.snapshot(created_at_ms=1), KEY)
    with pytest.raises(SnapshotRefused) as tampered:
        decode_snapshot(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:], KEY)
    assert tampered.value.reason == "bad_signature"
    with pytest.raises(SnapshotRefused, match="bad_signature"):
        decode_snapshot(blob, b"x" * 32)


def test_a_pickle_in_place_of_a_snapshot_is_never_loaded() -> None:
    ran = []

    class Exploit:
        def __reduce__(self) -> tuple:
            return (ran.append, ("pwned",))

    with pytest.raises(SnapshotRefused):
        Learner.resume(decode_snapshot(pickle.dumps(Exploit()), KEY))
    assert ran == []


def test_a_training_example_travels_as_json_and_a_bad_one_is_named() -> None:
    example = examples(1)[0]
    assert TrainingExample.from_record(example.to_record()) == example
    with pytest.raises(ValueError, match="not a training example: KeyError"):
        TrainingExample.from_record({"x": {}})
