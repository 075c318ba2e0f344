"""Back in rotation: which of the listener's own tracks are rested, and how long ago
they were heard, in words.

A listener plays and saves tracks a minute apart; :func:`rested_tracks` must split
what they remember exactly where the builder's ``recently_played`` removal
(:func:`online_models.recommender.recently_heard`) does.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackInfo, UserFeatures
from online_models.recommender import recently_heard
from online_models.reranking import RerankConfig
from online_models.rotation import heard_ago, rested_tracks

MINUTE = 60_000
HOUR = 60 * MINUTE
TRACKS = [f"t{i}" for i in range(30)]
CATALOG = {t: TrackInfo(t, f"a{i % 5}", ("pop",), 200_000) for i, t in enumerate(TRACKS)}


def listener(*events: tuple[str, str, int]) -> UserFeatures:
    """A user who did ``(type, track_id, ts)`` in order, each play heard through."""
    user = UserFeatures()
    for kind, track_id, ts in events:
        event = {"type": kind, "track_id": track_id, "ts": ts, "ms_played": 200_000}
        assert user.update(event, CATALOG[track_id])
    return user


def test_a_track_rests_until_the_rest_is_over_then_comes_back_with_when_it_was_heard() -> None:
    user = listener(("play", "t1", 0), ("play", "t2", 30 * MINUTE))
    assert rested_tracks(user, 40 * MINUTE, rest_s=600.0) == [("t1", 0)]
    # exactly at the rest's end it is still resting (the removal's "within")
    assert rested_tracks(user, 40 * MINUTE, rest_s=2400.0) == []
    assert rested_tracks(user, 40 * MINUTE + 1, rest_s=2400.0) == [("t1", 0)]


def test_the_latest_of_a_play_and_a_save_counts_and_the_most_recent_comes_first() -> None:
    user = listener(
        ("play", "t1", 0), ("play", "t2", 10 * MINUTE), ("save", "t1", 20 * MINUTE)
    )  # t1 was saved after t2 was played: heard more recently
    assert rested_tracks(user, 2 * HOUR, rest_s=600.0) == [("t1", 20 * MINUTE), ("t2", 10 * MINUTE)]


def test_tracks_heard_at_the_same_time_come_in_track_order() -> None:
    user = listener(("play", "t9", 0), ("play", "t3", 0))
    assert [t for t, _ in rested_tracks(user, HOUR, rest_s=0.0)] == ["t3", "t9"]


@settings(max_examples=60, deadline=None, database=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["play", "save", "skip"]),
            st.sampled_from(TRACKS),
            st.integers(0, 3 * 60),  # minutes after the previous event
        ),
        max_size=40,
    ),
    rest_minutes=st.integers(0, 120),
    after_minutes=st.integers(0, 120),
)
def test_rested_and_recently_heard_split_what_the_user_remembers(
    events: list[tuple[str, str, int]], rest_minutes: int, after_minutes: int
) -> None:
    ts, timed = 0, []
    for kind, track_id, gap in events:
        ts += gap * MINUTE
        timed.append((kind, track_id, ts))
    user = listener(*timed)
    now = ts + after_minutes * MINUTE
    rest = RerankConfig(replay_after_s=rest_minutes * 60.0)
    rested = rested_tracks(user, now, rest.replay_after_s)
    recent = set(recently_heard(user, now, rest))
    remembered = set(user.track_last_ms) | set(user.track_liked_ms)
    assert {t for t, _ in rested}.isdisjoint(recent)
    assert {t for t, _ in rested} | recent == remembered
    times = [at for _, at in rested]
    assert times == sorted(times, reverse=True)  # the most recently heard first


def test_how_long_ago_is_said_in_minutes_then_hours_then_days() -> None:
    assert heard_ago(0) == "1 minute ago"  # never "0 minutes"
    assert heard_ago(12 * MINUTE + 59_000) == "12 minutes ago"
    assert heard_ago(HOUR) == "1 hour ago"
    assert heard_ago(5 * HOUR + 59 * MINUTE) == "5 hours ago"
    assert heard_ago(24 * HOUR) == "1 day ago"
    assert heard_ago(80 * HOUR) == "3 days ago"
