"""Engagement models: labels, examples built before the event, and every candidate's contract."""

from __future__ import annotations

import math
import random

import pytest

from features import TrackInfo, UserFeatures
from online_models.engagement import (
    CANDIDATES,
    EngagementModel,
    LinearScorer,
    make_engagement_model,
)
from online_models.example import (
    MIN_PLAY_MS,
    build_example,
    context_side,
    engagement_label,
)

TRACK = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)


def play(ms_played: int, kind: str = "play", ts: int = 3_600_000, **extra: object) -> dict:
    return {"type": kind, "track_id": "t1", "ts": ts, "ms_played": ms_played, **extra}


@pytest.mark.parametrize(
    ("event", "track", "label"),
    [
        (play(199_000, kind="skip"), TRACK, 0),  # a skip is 0 however long it ran
        (play(0, kind="save"), TRACK, 1),
        (play(100_000), TRACK, 1),  # half of the track: heard through
        (play(99_999), TRACK, 0),  # abandoned early: a soft skip
        (play(MIN_PLAY_MS), None, 1),  # duration unknown: 30 s counts
        (play(MIN_PLAY_MS - 1), None, 0),
    ],
)
def test_labels_follow_the_documented_rule(
    event: dict, track: TrackInfo | None, label: int
) -> None:
    assert engagement_label(event, track) == label


def test_an_example_is_built_from_what_was_known_before_the_event() -> None:
    user = UserFeatures()
    event = play(150_000)
    before = build_example(user, event, TRACK)
    assert before["artist_new"] == 1.0 and before["artist_affinity_share"] == 0.0
    assert "track_last_played_log_s" not in before  # missing, not a made-up value
    user.update(event, TRACK)
    after = build_example(user, play(150_000, ts=3_660_000), TRACK)
    assert after["artist_new"] == 0.0 and after["artist_affinity_share"] == 1.0
    assert 0.0 < after["track_last_played_log_s"] < 1.0  # a minute ago, scaled


def test_hours_lie_on_a_circle_so_midnight_is_next_to_eleven_pm() -> None:
    hour = 3_600_000
    midnight, late, noon = (context_side(h * hour, {}) for h in (24, 23, 12))

    def distance(a: dict, b: dict) -> float:
        return math.dist((a["hour_sin"], a["hour_cos"]), (b["hour_sin"], b["hour_cos"]))

    assert distance(midnight, late) < distance(midnight, noon)


def test_device_and_context_type_become_flags() -> None:
    x = context_side(0, {"device": "car", "context_type": "radio", "hour": 3})
    assert x["device=car"] == 1.0 and x["context_type=radio"] == 1.0
    assert not any(name.startswith("hour=") for name in x)


def test_unknown_model_names_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: logistic, fm, tree"):
        make_engagement_model("deep")


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_candidate_keeps_the_learn_predict_contract(name: str) -> None:
    model = make_engagement_model(name)
    assert isinstance(model, EngagementModel)
    assert 0.0 <= model.predict_one({}) <= 1.0  # before any learning
    rng = random.Random(3)
    for _ in range(1_500):  # a separable signal with noise
        liked = rng.random() < 0.5
        x = {"artist_affinity_share": (0.8 if liked else 0.1) + rng.uniform(-0.1, 0.1)}
        model.learn_one(x, int(liked))
    liked_p = model.predict_one({"artist_affinity_share": 0.8})
    disliked_p = model.predict_one({"artist_affinity_share": 0.1})
    assert 0.0 <= disliked_p < liked_p <= 1.0


def test_vectorised_scoring_of_500_candidates_equals_rivers_own_predictions() -> None:
    model = make_engagement_model("logistic")
    rng = random.Random(11)
    names = ["artist_affinity_share", "device=car", "u_skip_rate_1d", "hour_sin", "t_trending_log"]

    def example() -> dict[str, float]:
        return {name: rng.uniform(-1, 1) for name in names if rng.random() < 0.7}

    for _ in range(500):
        x = example()
        model.learn_one(x, int(x.get("artist_affinity_share", 0.0) > 0))
    candidates = [{**example(), "never_seen": 3.0} for _ in range(500)]
    vectorised = LinearScorer.of(model).score_many(candidates)
    one_by_one = [model.predict_one(x) for x in candidates]
    assert vectorised == pytest.approx(one_by_one, rel=1e-9, abs=1e-12)


def test_only_a_linear_model_has_a_vectorised_scorer() -> None:
    with pytest.raises(TypeError, match="tree is not a linear model"):
        LinearScorer.of(make_engagement_model("tree"))


def test_the_shared_part_of_many_candidates_is_counted_once_and_gives_the_same_scores() -> None:
    model = make_engagement_model("logistic")
    rng = random.Random(5)
    for _ in range(300):
        model.learn_one({"u_skip_rate_1d": rng.uniform(-1, 1), "t_trending_log": rng.random()}, 1)
    shared = {"u_skip_rate_1d": 0.25, "device=car": 1.0}
    tracks = [{"t_trending_log": rng.random()} for _ in range(50)]
    split = LinearScorer.of(model).score_many(tracks, shared=shared)
    whole = [model.predict_one({**shared, **x}) for x in tracks]
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-12)
