"""The listener's diet: long-run and session shares by genre and artist, the affinity
ranking adds, and the genre shares the diet's genre cap reads.

The catalog: 24 tracks of 6 artists (``a{i % 6}``), 3 genres (``g{i % 3}``; every
fourth track also ``g3``), and one track the catalog does not know.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackInfo, UserFeatures
from online_models.diet import PRIOR_WEIGHT, Diet
from online_models.served_tracks import ServedTracks
from online_models.taste import TasteModel

MINUTE = 60_000
SESSION_GAP = 30 * MINUTE
TRACKS = [f"t{i:02d}" for i in range(24)]
CATALOG = {
    t: TrackInfo(t, f"a{i % 6}", (f"g{i % 3}", "g3") if i % 4 == 0 else (f"g{i % 3}",), 200_000)
    for i, t in enumerate(TRACKS)
}


def served_tracks() -> ServedTracks:
    taste = TasteModel(k=4)
    taste.set_catalog({t: (info.artist_id, info.genres) for t, info in CATALOG.items()})
    return ServedTracks(taste, CATALOG, {})


def listener(*events: tuple[str, str, int]) -> UserFeatures:
    """A user who did ``(type, track_id, ts)`` in order, each play heard through."""
    user = UserFeatures()
    for kind, track_id, ts in events:
        event = {"type": kind, "track_id": track_id, "ts": ts, "ms_played": 200_000}
        assert user.update(event, CATALOG.get(track_id))
    return user


def test_a_session_is_its_plays_genres_and_artists_and_ends_with_the_session() -> None:
    served = served_tracks()
    # t01 (a1, g1) twice and t02 (a2, g2) once, a minute apart; t07 skipped (not a play).
    user = listener(
        ("play", "t01", 0), ("play", "t02", MINUTE), ("skip", "t07", 2 * MINUTE),
        ("play", "t01", 3 * MINUTE),
    )  # fmt: skip
    diet = Diet.of(user, served, 4 * MINUTE)
    artist, genre = served.artist_index, served.genre_index
    # the remembered plays are t01 (its latest play) and t02: one each
    assert diet.session_artists[artist["a1"]] == diet.session_artists[artist["a2"]] == 0.5
    assert diet.session_genres[genre["g1"]] == diet.session_genres[genre["g2"]] == 0.5
    assert diet.session_artists[artist["a1"]] + diet.session_artists[artist["a2"]] == 1.0
    later = Diet.of(user, served, 3 * MINUTE + SESSION_GAP + 1)  # the session is over
    assert not later.session_artists.any() and not later.session_genres.any()
    assert later.artists[artist["a1"]] > 0  # the long-run diet stays


def test_a_first_play_is_a_sixth_of_a_diet_not_all_of_it() -> None:
    served = served_tracks()
    diet = Diet.of(listener(("play", "t01", 0)), served, 0)
    expected = 1 / (1 + PRIOR_WEIGHT)
    assert diet.artists[served.artist_index["a1"]] == pytest.approx(expected)
    assert diet.genres[served.genre_index["g1"]] == pytest.approx(expected)


def test_a_two_genre_play_counts_half_to_each_genre_of_the_session() -> None:
    served = served_tracks()
    diet = Diet.of(listener(("play", "t00", 0)), served, MINUTE)  # t00: g0 and g3
    genre = served.genre_index
    assert diet.session_genres[genre["g0"]] == diet.session_genres[genre["g3"]] == 0.5


def test_the_genre_shares_take_the_larger_of_the_long_run_and_the_session() -> None:
    served = served_tracks()
    old = [("play", "t01", i * MINUTE) for i in range(20)]  # g1, long ago
    user = listener(*old, ("play", "t02", 20 * MINUTE + 2 * SESSION_GAP))  # a g2 session
    diet = Diet.of(user, served, 21 * MINUTE + 2 * SESSION_GAP)
    shares = diet.genre_shares()
    genre = served.genre_index
    assert shares[genre["g2"]] == 1.0  # all of the running session
    assert shares[genre["g1"]] == pytest.approx(diet.genres[genre["g1"]])  # most of the past
    assert len(shares) == len(genre)


def test_the_session_artists_and_genres_tracks_rank_first_by_affinity() -> None:
    served = served_tracks()
    user = listener(("play", "t01", 0), ("play", "t07", MINUTE))  # a1, g1 twice
    affinity = Diet.of(user, served, 2 * MINUTE).affinity(served, served.rows(TRACKS))
    by_track = dict(zip(TRACKS, affinity.tolist(), strict=True))
    same_artist_and_genre = by_track["t13"]  # a1, g1
    same_genre = by_track["t04"]  # a4, g1 (and g3)
    neither = by_track["t02"]  # a2, g2
    assert same_artist_and_genre > same_genre > neither == 0.0


@settings(max_examples=60, deadline=None, database=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["play", "save", "skip"]),
            st.sampled_from([*TRACKS, "unknown"]),
            st.integers(0, 90),  # minutes after the previous event
        ),
        max_size=40,
    ),
    after_minutes=st.integers(0, 60),
)
def test_shares_and_affinity_stay_within_0_and_1(
    events: list[tuple[str, str, int]], after_minutes: int
) -> None:
    ts, timed = 0, []
    for kind, track_id, gap in events:
        ts += gap * MINUTE
        timed.append((kind, track_id, ts))
    served = served_tracks()
    diet = Diet.of(listener(*timed), served, ts + after_minutes * MINUTE)
    for shares in (diet.genres, diet.artists, diet.session_genres, diet.session_artists):
        assert (shares >= 0).all() and shares.sum() <= 1.0 + 1e-9
        assert shares[-1] == 0.0  # index -1: no genre, unknown artist
    rows = served.rows([*TRACKS, "unknown"])
    affinity = diet.affinity(served, rows)
    assert affinity.shape == (len(rows),)
    assert ((affinity >= 0) & (affinity <= 1.0 + 1e-9)).all()
    assert affinity[-1] == 0.0  # the uncatalogued track fits no diet
    np.testing.assert_array_equal(affinity, diet.affinity(served, rows))
