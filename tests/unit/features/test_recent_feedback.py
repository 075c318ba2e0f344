"""The tracks a user skipped and liked most recently: exact in any arrival order within
the lateness, bounded by ``feedback_k``, and kept by a state round trip.

Against a brute-force recomputation: per track its newest skip (or engagement), then
the ``feedback_k`` largest by (time, track id), newest first.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackInfo, UserFeatureConfig, UserFeatures
from features.event_types import engagement_label

T0 = 1_700_000_000_000
LATENESS = UserFeatureConfig().lateness_ms
CATALOG: dict[str, TrackInfo | None] = {
    f"t{i}": TrackInfo(f"t{i}", f"a{i % 3}", ("pop",), duration_ms=200_000) for i in range(8)
}
CATALOG["t8"] = None  # not catalogued: still remembered
CATALOG["t9"] = TrackInfo("t9", "a9", (), duration_ms=None)

EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["play", "skip", "save"]),
            "track_id": st.sampled_from(sorted(CATALOG)),
            "ts": st.integers(T0, T0 + LATENESS),  # every arrival order is within the lateness
            "ms_played": st.sampled_from([0, 10_000, 40_000, 150_000]),
        }
    ),
    max_size=40,
)


def newest(events: list[dict[str, Any]], counts: Any, k: int) -> dict[str, int]:
    """The brute force: per track the newest event ``counts``, the ``k`` newest tracks."""
    latest: dict[str, int] = {}
    for event in events:
        if counts(event):
            latest[event["track_id"]] = max(event["ts"], latest.get(event["track_id"], 0))
    kept = sorted(latest.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k]
    return dict(kept)


def expected_skipped(events: list[dict[str, Any]], k: int) -> dict[str, int]:
    return newest(events, lambda e: e["type"] == "skip", k)


def expected_liked(events: list[dict[str, Any]], k: int) -> dict[str, int]:
    return newest(
        events,
        lambda e: e["type"] != "skip" and engagement_label(e, CATALOG[e["track_id"]]),
        k,
    )


def folded(events: list[dict[str, Any]], config: UserFeatureConfig) -> UserFeatures:
    user = UserFeatures(config)
    for event in events:
        assert user.update(event, CATALOG[event["track_id"]])
    return user


@settings(max_examples=150, deadline=None, database=None)
@given(events=EVENTS, k=st.integers(1, 5), data=st.data())
def test_the_newest_feedback_k_skipped_and_liked_tracks_are_kept_in_any_arrival_order(
    events: list[dict[str, Any]], k: int, data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(events), label="arrival order")
    user = folded(arrival, UserFeatureConfig(feedback_k=k))
    skipped, liked = user.recent_skipped(), user.recent_liked()
    assert list(skipped.items()) == list(expected_skipped(events, k).items())
    assert list(liked.items()) == list(expected_liked(events, k).items())
    assert user.read(T0)["recent_feedback"] == {"skipped": skipped, "liked": liked}


def test_a_skip_is_not_a_like_and_an_early_abandoned_play_is_neither() -> None:
    user = folded(
        [
            {"type": "skip", "track_id": "t1", "ts": T0, "ms_played": 150_000},
            {"type": "play", "track_id": "t2", "ts": T0 + 1, "ms_played": 10_000},
            {"type": "play", "track_id": "t3", "ts": T0 + 2, "ms_played": 150_000},
            {"type": "save", "track_id": "t8", "ts": T0 + 3, "ms_played": 0},
        ],
        UserFeatureConfig(),
    )
    assert user.recent_skipped() == {"t1": T0}
    assert user.recent_liked() == {"t8": T0 + 3, "t3": T0 + 2}


def test_a_later_skip_of_a_track_moves_it_to_the_front() -> None:
    events = [
        {"type": "skip", "track_id": t, "ts": T0 + n, "ms_played": 0}
        for n, t in enumerate(["t1", "t2", "t3", "t1"])
    ]
    user = folded(events, UserFeatureConfig(feedback_k=2))
    assert list(user.recent_skipped().items()) == [("t1", T0 + 3), ("t3", T0 + 2)]


@settings(max_examples=60, deadline=None, database=None)
@given(events=EVENTS, k=st.integers(1, 5))
def test_a_state_round_trip_keeps_the_skipped_and_liked_tracks(
    events: list[dict[str, Any]], k: int
) -> None:
    config = UserFeatureConfig(feedback_k=k)
    user = folded(events, config)
    restored = UserFeatures.from_state(orjson.loads(orjson.dumps(user.to_state())), config)
    assert list(restored.recent_skipped().items()) == list(user.recent_skipped().items())
    assert list(restored.recent_liked().items()) == list(user.recent_liked().items())
    # ... and they go on alike
    more = {"type": "skip", "track_id": "t5", "ts": T0 + LATENESS + 1, "ms_played": 0}
    user.update(more, CATALOG["t5"])
    restored.update(more, CATALOG["t5"])
    assert restored.recent_skipped() == user.recent_skipped()


def test_a_smaller_feedback_k_on_restore_keeps_the_newest() -> None:
    events = [
        {"type": kind, "track_id": f"t{n}", "ts": T0 + n, "ms_played": 150_000}
        for n in range(6)
        for kind in ("skip", "save")
    ]
    user = folded(events, UserFeatureConfig(feedback_k=6))
    restored = UserFeatures.from_state(user.to_state(), UserFeatureConfig(feedback_k=2))
    assert list(restored.recent_skipped()) == ["t5", "t4"]
    assert list(restored.recent_liked()) == ["t5", "t4"]


def test_a_state_saved_without_them_restores_them_empty() -> None:
    user = folded(
        [
            {"type": "skip", "track_id": "t1", "ts": T0, "ms_played": 0},
            {"type": "save", "track_id": "t2", "ts": T0 + 1, "ms_played": 0},
            {"type": "play", "track_id": "t3", "ts": T0 + 2, "ms_played": 150_000},
        ],
        UserFeatureConfig(),
    )
    state = user.to_state()
    assert {"skipped_tracks", "liked_tracks"} <= set(state)
    older = {
        key: value for key, value in state.items() if key not in ("skipped_tracks", "liked_tracks")
    }
    restored = UserFeatures.from_state(older)
    assert restored.recent_skipped() == {} and restored.recent_liked() == {}
    # everything else reads as before
    before, after = user.read(T0 + 2), restored.read(T0 + 2)
    assert after.pop("recent_feedback") == {"skipped": {}, "liked": {}}
    before.pop("recent_feedback")
    assert after == before


def test_a_user_with_no_feedback_saves_no_feedback_keys() -> None:
    user = folded(
        [{"type": "play", "track_id": "t1", "ts": T0, "ms_played": 10_000}], UserFeatureConfig()
    )
    state = user.to_state()
    assert "skipped_tracks" not in state and "liked_tracks" not in state
    restored = UserFeatures.from_state(state)
    assert restored.recent_skipped() == {} and restored.recent_liked() == {}
