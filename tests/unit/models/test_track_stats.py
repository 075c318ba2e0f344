"""Track statistics: the learner keeps them from every example, snapshots serve them, the
worker's examples carry them as the offline evaluation's do."""

from __future__ import annotations

import pytest

from features import TrackFeatures, TrackInfo, UserFeatures
from online_models.example import TRACK_STATS, build_example, track_stats_side
from online_models.learner import Learner, TrainingExample
from online_models.serving import ServingModels
from online_models.snapshot import decode_snapshot, encode_snapshot
from online_models.track_stats import TrackStatistics, served_track_stats

KEY = b"k" * 32
MINUTE = 60_000


def example(i: int, track: str, kind: str, ts: int) -> TrainingExample:
    return TrainingExample(f"e{i}", {}, int(kind != "skip"), track, [0.0] * 4, [], kind, ts)


def stream() -> list[TrainingExample]:
    kinds = ("play", "play", "skip", "save")
    return [example(i, f"t{i % 3}", kinds[i % 4], i * MINUTE) for i in range(120)]


def test_the_learner_reads_each_track_as_the_by_track_side_would() -> None:
    learner = Learner(taste_factors=4)
    truth: dict[str, TrackFeatures] = {}
    for offset, item in enumerate(stream()):
        learner.learn(item, 0, offset)
        truth.setdefault(item.track_id, TrackFeatures()).update({"type": item.kind, "ts": item.ts})
    served = served_track_stats(learner.snapshot(created_at_ms=1).arrays)
    now = 119 * MINUTE
    for track_id, features in truth.items():
        expected = features.read(now)
        assert served[track_id] == pytest.approx({name: expected[name] for name in TRACK_STATS})


def test_a_resumed_learner_keeps_counting_where_the_snapshot_ended() -> None:
    items = stream()
    steady, stopped = Learner(taste_factors=4), Learner(taste_factors=4)
    for offset, item in enumerate(items[:60]):
        steady.learn(item, 0, offset)
        stopped.learn(item, 0, offset)
    blob = encode_snapshot(stopped.snapshot(created_at_ms=1), KEY)
    resumed = Learner.resume(decode_snapshot(blob, KEY))
    for offset, item in enumerate(items):  # a replay from the start: the first 60 skip
        resumed.learn(item, 0, offset)
    for offset, item in enumerate(items[60:], start=60):
        steady.learn(item, 0, offset)
    expected = steady.snapshot(2).arrays["track_stats_served"]
    assert resumed.snapshot(2).arrays["track_stats_served"] == pytest.approx(expected)


def test_the_workers_example_carries_the_served_statistics_of_its_track() -> None:
    learner = Learner(taste_factors=4)
    for offset, item in enumerate(stream()):
        learner.learn(item, 0, offset)
    snapshot = learner.snapshot(created_at_ms=1)
    models = ServingModels.from_snapshot(snapshot)
    event = {"event_id": "e", "type": "play", "track_id": "t1", "ts": 200 * MINUTE}
    made, _ = models.example(UserFeatures(), event, None, None, ["t0", "t2"], 1)
    served = served_track_stats(snapshot.arrays)["t1"]
    expected = track_stats_side(served)
    assert {name: made.x[name] for name in expected} == pytest.approx(expected)
    assert (made.kind, made.ts) == ("play", 200 * MINUTE)


def test_live_and_offline_examples_have_the_same_features() -> None:
    """The worker's example and the evaluation's (exact statistics) differ only in values."""
    learner = Learner(taste_factors=4)
    learner.learn(example(0, "t1", "play", 0), 0, 0)
    models = ServingModels.from_snapshot(learner.snapshot(created_at_ms=1))
    track = TrackInfo("t1", "a1", ("jazz",), 200_000)
    event = {"event_id": "e", "type": "play", "track_id": "t1", "ts": MINUTE}
    live, _ = models.example(UserFeatures(), event, track, None, ["t1"], 1)
    offline = build_example(UserFeatures(), event, track, TrackFeatures().read(MINUTE), 0.0)
    assert live.x.keys() == offline.keys()


def test_a_track_the_snapshot_never_met_reads_as_typical() -> None:
    models = ServingModels.from_snapshot(Learner(taste_factors=4).snapshot(created_at_ms=1))
    event = {"event_id": "e", "type": "play", "track_id": "new", "ts": 0}
    made, _ = models.example(UserFeatures(), event, None, None, ["new"], 1)
    assert not any(name.startswith("t_") for name in made.x)  # absent reads as 0: typical


def test_records_from_before_the_event_type_was_carried_still_learn() -> None:
    record = example(0, "t1", "play", 5).to_record()
    del record["type"], record["ts"]
    old = TrainingExample.from_record(record)
    learner = Learner(taste_factors=4)
    assert learner.learn(old, 0, 0)
    assert len(learner.track_stats) == 0


def test_a_snapshot_from_before_track_statistics_serves_none() -> None:
    arrays = Learner(taste_factors=4).snapshot(created_at_ms=1).arrays
    older = {name: a for name, a in arrays.items() if not name.startswith("track_stats")}
    assert served_track_stats(older) == {}
    assert len(TrackStatistics.from_arrays(older)) == 0


def test_statistics_that_do_not_fit_their_keys_are_refused() -> None:
    stats = TrackStatistics()
    stats.update("t1", "play", 0)
    arrays = stats.arrays()
    arrays["track_stats_served"] = arrays["track_stats_served"][:, :2]
    arrays["track_stats_counts"] = arrays["track_stats_counts"][:, :2]
    with pytest.raises(ValueError, match="tracks"):
        served_track_stats(arrays)
    with pytest.raises(ValueError, match="tracks"):
        TrackStatistics.from_arrays(arrays)
