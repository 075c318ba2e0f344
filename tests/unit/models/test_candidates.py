"""Scoring many candidates as columns gives River's own scores, feature by feature."""

from __future__ import annotations

import random

import numpy as np
import pytest

from features import TrackInfo, UserFeatures
from online_models.candidates import candidate_columns, shared_features
from online_models.engagement import LinearScorer, make_engagement_model
from online_models.example import TRACK_FEATURES, build_example, track_side, track_stats_side
from online_models.served_tracks import ServedTracks
from online_models.taste import TasteModel

MINUTE = 60_000
CONTEXT = {"device": "mobile", "context_type": "playlist"}


def catalog() -> dict[str, TrackInfo]:
    tracks = {}
    for i in range(60):
        genres = tuple(f"g{(i + j) % 7}" for j in range(i % 4))  # 0 to 3 genres
        year = 1990 + i % 30 if i % 5 else None
        tracks[f"t{i}"] = TrackInfo(
            f"t{i}", f"a{i % 12}", genres, 150_000 + 1_000 * i, explicit=i % 3 == 0,
            release_year=year,
        )  # fmt: skip
    return tracks


def stats_of(track_ids: list[str]) -> dict[str, dict[str, float]]:
    rng = random.Random(5)
    return {
        t: {
            "trending": rng.uniform(0.5, 3.0),
            "skip_rate_1d": rng.uniform(0.1, 0.6),
            "save_rate_7d": rng.uniform(0.0, 0.2),
            "popularity": rng.uniform(0.0, 50.0),
        }
        for t in track_ids[::2]  # half the tracks have statistics served
    }


def listener(tracks: dict[str, TrackInfo]) -> UserFeatures:
    user, rng = UserFeatures(), random.Random(3)
    for i in range(80):
        track = f"t{rng.randrange(40)}"  # tracks t40..t59 never heard: new artists among them
        kind = rng.choice(("play", "play", "skip", "save"))
        event = {"type": kind, "track_id": track, "ts": i * MINUTE, "ms_played": 120_000}
        user.update({**event, "context": CONTEXT}, tracks[track])
    return user


@pytest.fixture
def world() -> tuple[dict[str, TrackInfo], UserFeatures, ServedTracks, np.ndarray]:
    tracks = catalog()
    taste = TasteModel(k=4, seed=2)
    taste.set_catalog({t: (i.artist_id, i.genres) for t, i in tracks.items()})
    served = ServedTracks(taste, tracks, stats_of(list(tracks)))
    return tracks, listener(tracks), served, np.random.default_rng(1).normal(0, 0.3, 4)


def full_examples(world, track_ids: list[str], ts: int) -> list[dict[str, float]]:
    tracks, user, served, vector = world
    out = []
    for track_id in track_ids:
        row = served.row(track_id)
        similarity = float(served.vectors[row] @ vector)
        event = {"track_id": track_id, "ts": ts, "context": CONTEXT}
        stats = served.stats.get(track_id)
        out.append(build_example(user, event, tracks.get(track_id), stats, similarity))
    return out


def test_every_column_holds_what_each_candidates_example_holds(world) -> None:
    tracks, user, served, vector = world
    ts = 90 * MINUTE
    track_ids = [*tracks, "uncatalogued"]
    columns = candidate_columns(user, served, served.rows(track_ids), ts, vector)
    shared = shared_features(user, ts, CONTEXT)
    for i, x in enumerate(full_examples(world, track_ids, ts)):
        differing = {name: value for name, value in x.items() if name not in shared}
        assert differing.keys() <= columns.keys()
        held = {name: float(column[i]) for name, column in columns.items()}
        assert held == pytest.approx({name: differing.get(name, 0.0) for name in held})


def test_column_scores_equal_rivers_predict_one(world) -> None:
    tracks, user, served, vector = world
    model, rng = make_engagement_model("logistic"), random.Random(9)
    ts = 90 * MINUTE
    track_ids = [*tracks, "uncatalogued"]
    examples = full_examples(world, track_ids, ts)
    for _ in range(3_000):
        model.learn_one(rng.choice(examples), rng.random() < 0.5)
    columns = candidate_columns(user, served, served.rows(track_ids), ts, vector)
    scores = LinearScorer.of(model).score_columns(
        columns, len(track_ids), shared_features(user, ts, CONTEXT)
    )
    expected = [model.predict_one(x) for x in examples]
    assert scores == pytest.approx(expected, abs=1e-12)
    assert np.ptp(expected) > 0.01  # the candidates really score apart


def test_the_columns_cover_every_track_feature_and_cross(world) -> None:
    tracks, user, served, vector = world
    columns = candidate_columns(user, served, served.rows(["t1"]), 0, vector)
    produced = track_side(tracks["t1"]).keys() | track_stats_side(served.stats["t0"]).keys()
    assert produced <= set(TRACK_FEATURES) <= columns.keys()


def test_a_user_with_no_history_gets_new_artists_and_no_affinity(world) -> None:
    _, _, served, vector = world
    columns = candidate_columns(UserFeatures(), served, served.rows(["t1", "t2"]), 0, vector)
    assert columns["artist_new"].tolist() == [1.0, 1.0]
    assert not columns["artist_affinity_share"].any()
    assert not columns["track_last_played_log_s"].any()
