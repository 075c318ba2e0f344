"""Retrieval: each source proposes what it has a reason for, and the first reason wins.

The served set is 24 tracks of 4 artists and 3 genres, each with a popularity
(track ``i`` has popularity ``i``), and the untrained taste model's vectors (small
and arbitrary, but fixed: cosines between them are what ``similar`` ranks by).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from features import TrackInfo, UserFeatures
from features.editorial import EditorialSet
from online_models.retrieval import (
    EDITORIAL,
    LIKED_ARTIST,
    ROTATION,
    SIMILAR,
    SOUNDS_LIKE,
    SOURCES,
    TASTE,
    TRENDING,
    Candidates,
    RetrievalConfig,
    retrieve,
)
from online_models.served_tracks import ServedTracks
from online_models.taste import TasteModel

GENRES = ("jazz", "rock", "soul")
TRACKS = [f"t{i:02d}" for i in range(24)]
CATALOG = {t: TrackInfo(t, f"a{i % 4}", (GENRES[i % 3],), 200_000) for i, t in enumerate(TRACKS)}
#: The same tracks with content vectors (two dimensions on different scales).
SOUNDING = {
    t: replace(info, content_vector=(i % 5, i % 7 * 10.0))
    for i, (t, info) in enumerate(CATALOG.items())
}
STATS = {
    t: {"trending": 1.0, "skip_rate_1d": 0.3, "save_rate_7d": 0.05, "popularity": float(i)}
    for i, t in enumerate(TRACKS)
}
TS = 10 * 60_000
VECTOR = np.full(4, 0.1)
MORNING = EditorialSet("morning", ("t03", "t07", "t14"), boost=0.2, title="Morning coffee")


def served_tracks(
    bias: dict[str, float] | None = None, catalog: dict[str, TrackInfo] = CATALOG
) -> ServedTracks:
    taste = TasteModel(k=4)
    taste.set_catalog({t: (info.artist_id, info.genres) for t, info in catalog.items()})
    taste.bias.update(bias or {})
    return ServedTracks(taste, catalog, STATS)


def listener(*events: tuple[str, str]) -> UserFeatures:
    """A user who did ``(type, track_id)`` one after another, each play heard through."""
    user = UserFeatures()
    for n, (kind, track_id) in enumerate(events):
        event = {"type": kind, "track_id": track_id, "ts": n * 1000, "ms_played": 200_000}
        if kind == "skip":
            event["ms_played"] = 5_000
        assert user.update(event, CATALOG[track_id])
    return user


def proposed(found: Candidates, source: str) -> list[str]:
    return [t for t, s in zip(found.track_ids, found.sources, strict=True) if s == source]


def editorial_of(editorial_set: EditorialSet) -> list[tuple[str, EditorialSet]]:
    return [(track_id, editorial_set) for track_id in editorial_set.track_ids]


def trend(*track_ids: str) -> list[tuple[str, float]]:
    return [(t, float(len(track_ids) - n)) for n, t in enumerate(track_ids)]


def each_source_alone(
    user: UserFeatures,
    vector: NDArray[np.float64] | None,
    served: ServedTracks,
    trending: Sequence[tuple[str, float]],
    editorial: Sequence[tuple[str, EditorialSet]],
    config: RetrievalConfig,
) -> dict[str, list[str]]:
    """What each source proposes when it is the only one asked."""
    similar = replace(config, taste=0, per_artist=0, content_per_seed=0)
    sounds_like = replace(config, taste=0, per_artist=0)  # similar and taste need a vector
    liked = replace(config, taste=0, content_per_seed=0)
    taste = replace(config, similar_per_seed=0, per_artist=0, content_per_seed=0)

    def alone(only: RetrievalConfig) -> list[str]:
        return [] if vector is None else retrieve(user, vector, served, TS, [], [], only).track_ids

    return {
        ROTATION: [],  # only the tracks the caller passes as rested, and these pass none
        SIMILAR: alone(similar),
        SOUNDS_LIKE: retrieve(user, None, served, TS, [], [], sounds_like).track_ids,
        LIKED_ARTIST: retrieve(user, None, served, TS, [], [], liked).track_ids,
        EDITORIAL: list(dict.fromkeys(t for t, _ in editorial)),
        TASTE: alone(taste),
        TRENDING: list(dict.fromkeys(t for t, _ in trending)),
    }


# --- precedence -----------------------------------------------------------------------


def test_a_track_two_sources_propose_keeps_the_first_source_and_its_seed() -> None:
    served = served_tracks()
    user = listener(("play", "t01"), ("play", "t05"))  # artist a1
    # t09 (a1) is trending too; t07 (editorial) is trending too.
    found = retrieve(user, None, served, TS, trend("t09", "t07", "t02"), editorial_of(MORNING))
    by_track = dict(zip(found.track_ids, zip(found.sources, found.seeds, strict=True), strict=True))
    assert by_track["t09"] == (LIKED_ARTIST, "a1")
    assert by_track["t07"] == (EDITORIAL, MORNING)
    assert by_track["t02"] == (TRENDING, None)
    assert len(found.track_ids) == len(set(found.track_ids))


@settings(max_examples=40, deadline=None, database=None)
@given(
    liked=st.lists(st.sampled_from(TRACKS), min_size=1, max_size=6),
    trending=st.lists(st.sampled_from(TRACKS), max_size=8, unique=True),
    taste=st.integers(0, 10),
    seeds=st.integers(0, 3),
    per_seed=st.integers(0, 4),
    artists=st.integers(0, 3),
    per_artist=st.integers(0, 4),
)
def test_every_candidate_keeps_the_first_source_in_precedence_order_that_proposed_it(
    liked: list[str],
    trending: list[str],
    taste: int,
    seeds: int,
    per_seed: int,
    artists: int,
    per_artist: int,
) -> None:
    served = served_tracks(catalog=SOUNDING)
    user = listener(*(("save", t) for t in liked))
    config = RetrievalConfig(taste, seeds, per_seed, artists, per_artist)
    editorial, trend_list = editorial_of(MORNING), trend(*trending)
    found = retrieve(user, VECTOR, served, TS, trend_list, editorial, config)
    alone = each_source_alone(user, VECTOR, served, trend_list, editorial, config)
    expected: dict[str, str] = {}
    for source in SOURCES:
        for track_id in alone[source]:
            expected.setdefault(track_id, source)
    assert dict(zip(found.track_ids, found.sources, strict=True)) == expected
    # candidates come in precedence order, each source's in its own order
    assert found.track_ids == [t for s in SOURCES for t in alone[s] if expected[t] == s]
    editorial_taken = min(len(editorial), config.editorial)
    content = config.content_seeds * config.content_per_seed
    assert len(found.track_ids) <= (
        seeds * per_seed
        + content
        + artists * per_artist
        + editorial_taken
        + taste
        + len(trend_list)
    )
    np.testing.assert_array_equal(found.rows, served.rows(found.track_ids))


# --- each source --------------------------------------------------------------------------


def test_similar_neighbours_are_the_nearest_tracks_but_never_the_seed_itself() -> None:
    served = served_tracks()
    user = listener(("save", "t04"), ("save", "t11"))
    config = RetrievalConfig(taste=0, similar_seeds=5, similar_per_seed=4, per_artist=0)
    found = retrieve(user, VECTOR, served, TS, [], [], config)
    unit = served.unit_vectors
    expected: dict[str, tuple[str, float]] = {}
    for seed in ("t11", "t04"):  # newest first
        cosines = {
            t: float(unit[served.position[t]] @ unit[served.position[seed]])
            for t in TRACKS
            if t != seed
        }
        nearest = sorted(cosines, key=lambda t: (-cosines[t], served.position[t]))[:4]
        for t in nearest:
            if cosines[t] > 0:
                expected.setdefault(t, (seed, cosines[t]))
    assert expected, "the fixture should give each seed some neighbour"
    assert set(found.sources) == {SIMILAR}
    assert all(t != seed for t, seed in zip(found.track_ids, found.seeds, strict=True))
    assert found.track_ids == list(expected)
    assert found.seeds == [expected[t][0] for t in found.track_ids]
    assert list(found.retrieval_scores) == pytest.approx([expected[t][1] for t in expected])


def test_sounds_like_candidates_are_the_nearest_tracks_by_standardised_content() -> None:
    served = served_tracks(catalog=SOUNDING)
    user = listener(("save", "t03"))  # content (3, 30): t08, t13, ... share its first number
    config = RetrievalConfig(taste=0, per_artist=0, content_seeds=1, content_per_seed=3)
    found = retrieve(user, None, served, TS, [], [], config)  # no vector: a cold user
    vectors = np.array([SOUNDING[t].content_vector for t in TRACKS], float)
    scaled = (vectors - vectors.mean(axis=0)) / vectors.std(axis=0)
    unit = scaled / np.linalg.norm(scaled, axis=1, keepdims=True)
    cosines = {t: float(unit[i] @ unit[3]) for i, t in enumerate(TRACKS) if t != "t03"}
    nearest = sorted(cosines, key=lambda t: (-cosines[t], t))[:3]
    assert set(found.sources) == {SOUNDS_LIKE}
    assert found.track_ids == nearest and set(found.seeds) == {"t03"}
    assert list(found.retrieval_scores) == pytest.approx([cosines[t] for t in nearest])


def test_a_catalog_without_content_vectors_proposes_no_sounds_like_candidates() -> None:
    user = listener(("save", "t03"))
    found = retrieve(user, None, served_tracks(), TS, [], [], RetrievalConfig(per_artist=0))
    assert found.track_ids == []


def test_liked_artist_candidates_are_that_artists_most_popular_tracks() -> None:
    served = served_tracks()
    # a2 is played most, then a1; a3 once, but only the top two artists are asked.
    plays = ("t02", "t06", "t10", "t01", "t05", "t03")
    user = listener(*(("play", t) for t in plays))
    config = RetrievalConfig(taste=0, liked_artists=2, per_artist=3)
    found = retrieve(user, None, served, TS, [], [], config)
    assert set(found.sources) == {LIKED_ARTIST}
    for artist in ("a2", "a1"):
        tracks = [t for t, s in zip(found.track_ids, found.seeds, strict=True) if s == artist]
        assert all(CATALOG[t].artist_id == artist for t in tracks)
        by_popularity = sorted(
            (t for t in TRACKS if CATALOG[t].artist_id == artist),
            key=lambda t: -STATS[t]["popularity"],
        )
        assert tracks == by_popularity[:3]
    assert found.seeds[0] == "a2"  # the most played artist first
    weights = dict(user.artists.top(TS, 2))
    assert list(found.retrieval_scores) == [weights[str(s)] for s in found.seeds]


def test_editorial_candidates_carry_their_set_and_its_boost() -> None:
    found = retrieve(UserFeatures(), None, served_tracks(), TS, [], editorial_of(MORNING))
    assert found.track_ids == list(MORNING.track_ids)
    assert set(found.sources) == {EDITORIAL}
    assert found.seeds == [MORNING] * 3
    assert list(found.retrieval_scores) == [0.2] * 3


def test_more_editorial_picks_than_the_config_takes_are_one_run_the_draw_key_places() -> None:
    picks = [(t, MORNING) for t in TRACKS[:10]]
    config = RetrievalConfig(editorial=4)
    runs = {}
    for key in ("e1", "e2", "e3", "e4", "e5"):
        found = retrieve(UserFeatures(), None, served_tracks(), TS, [], picks, config, key)
        start = TRACKS.index(found.track_ids[0])
        assert found.track_ids == [TRACKS[(start + i) % 10] for i in range(4)]
        again = retrieve(UserFeatures(), None, served_tracks(), TS, [], picks, config, key)
        assert again.track_ids == found.track_ids
        runs[key] = start
    assert len(set(runs.values())) > 1  # lists share the editors' exposure


def test_rotation_candidates_are_the_rested_tracks_first_with_the_hours_since_heard() -> None:
    served = served_tracks()
    user = listener(("play", "t05"), ("play", "t09"))  # t09 (a1) is trending and a1's too
    rested = [("t09", TS - 2 * 3_600_000), ("t05", TS - 3 * 3_600_000)]
    found = retrieve(user, None, served, TS, trend("t09", "t02"), [], rested=rested)
    assert list(zip(found.track_ids[:2], found.sources[:2], strict=True)) == [
        ("t09", ROTATION),
        ("t05", ROTATION),
    ]  # their own tracks keep the most personal reason
    assert found.seeds[:2] == [None, None]  # the reason says when, from the score
    assert list(found.retrieval_scores[:2]) == [2.0, 3.0]
    assert found.track_ids.count("t09") == 1
    fewer = retrieve(user, None, served, TS, [], [], RetrievalConfig(rotation=1), rested=rested)
    assert [t for t, s in zip(fewer.track_ids, fewer.sources, strict=True) if s == ROTATION] == [
        "t09"
    ]


def test_a_cold_user_gets_no_taste_or_similar_candidates() -> None:
    served = served_tracks()
    user = listener(("save", "t04"), ("play", "t09"))  # artists a0 and a1
    found = retrieve(user, None, served, TS, trend("t02", "t03"), editorial_of(MORNING))
    assert set(found.sources) <= {LIKED_ARTIST, EDITORIAL, TRENDING}
    assert {LIKED_ARTIST, EDITORIAL, TRENDING} <= set(found.sources)
    config = RetrievalConfig(similar_per_seed=2, per_artist=2)
    warm = retrieve(user, VECTOR, served, TS, trend("t02", "t03"), editorial_of(MORNING), config)
    assert {SIMILAR, TASTE} <= set(warm.sources)  # the same user, once the models know them


def test_a_brand_new_user_gets_only_the_trending_and_editorial_candidates() -> None:
    found = retrieve(
        UserFeatures(), None, served_tracks(), TS, trend("t00", "t07"), editorial_of(MORNING)
    )
    assert list(zip(found.track_ids, found.sources, strict=True)) == [
        ("t03", EDITORIAL),
        ("t07", EDITORIAL),
        ("t14", EDITORIAL),
        ("t00", TRENDING),
    ]


def test_taste_candidates_are_the_best_logits_over_the_served_set() -> None:
    served = served_tracks()
    vector = np.array([0.3, -0.2, 0.5, 0.1])
    found = retrieve(UserFeatures(), vector, served, TS, [], [], RetrievalConfig(taste=6))
    logits = served.vectors @ vector + served.bias
    best = [served.track_ids[i] for i in np.argsort(-logits, kind="stable")[:6]]
    assert found.track_ids == best
    assert list(found.retrieval_scores) == [logits[served.position[t]] for t in best]


def test_taste_candidates_on_a_tie_go_to_the_earlier_served_track() -> None:
    # A zero user vector leaves the biases: odd tracks 1, even ones 0. The five best
    # are five of the twelve tied odd tracks, and ties go to the earlier row.
    served = served_tracks(bias={t: float(i % 2) for i, t in enumerate(TRACKS)})
    found = retrieve(UserFeatures(), np.zeros(4), served, TS, [], [], RetrievalConfig(taste=5))
    assert found.track_ids == ["t01", "t03", "t05", "t07", "t09"]


@pytest.mark.parametrize(
    "field",
    [
        "taste",
        "similar_seeds",
        "similar_per_seed",
        "liked_artists",
        "per_artist",
        "rotation",
        "content_seeds",
        "content_per_seed",
    ],
)
def test_a_config_with_a_negative_count_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        replace(RetrievalConfig(), **{field: -1})
