"""TrackFeatures against a brute-force recomputation, in any arrival order (no lateness bound)."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackFeatures

HOUR = 3_600_000
DAY = 24 * HOUR


def decayed(events: list[tuple[int, str]], kind: str, at: int, half_life_s: float) -> float:
    return sum(0.5 ** ((at - ts) / (half_life_s * 1000)) for ts, k in events if k == kind)


def brute_force(events: list[tuple[int, str]], at: int) -> dict[str, float]:
    """Every statistic from the whole event list, the slow obvious way."""
    plays_1h = decayed(events, "play", at, 3600)
    plays_1d = decayed(events, "play", at, 86_400)
    plays_7d = decayed(events, "play", at, 7 * 86_400)
    skips_1d = decayed(events, "skip", at, 86_400)
    saves_7d = decayed(events, "save", at, 7 * 86_400)
    # popularity: plays weigh 1, saves 2, skips 0 (ENGAGEMENT_WEIGHTS), half-life an hour
    popularity = decayed(events, "play", at, 3600) + 2 * decayed(events, "save", at, 3600)
    per_hour_1h = plays_1h * math.log(2) / 1  # a decayed count of a steady rate: rate * H / ln 2
    per_hour_1d = plays_1d * math.log(2) / 24
    return {
        "plays_1h": plays_1h,
        "plays_1d": plays_1d,
        "plays_7d": plays_7d,
        "skips_1d": skips_1d,
        "saves_7d": saves_7d,
        "popularity": popularity,
        "trending": (per_hour_1h + 1) / (per_hour_1d + 1),
        "skip_rate_1d": (skips_1d + 0.3 * 5) / (plays_1d + skips_1d + 5),
        "save_rate_7d": (saves_7d + 0.05 * 5) / (plays_7d + 5),
    }


def assert_close(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 48 * HOUR) | st.sampled_from([0, 1, HOUR, DAY]),
            st.sampled_from(["play", "play", "skip", "save"]),
        ),
        min_size=1,
        max_size=80,
    ),
    st.integers(0, 80),
    st.integers(-HOUR, 3 * DAY),
)
def test_statistics_equal_a_recomputation_whatever_the_order(
    events: list[tuple[int, str]], cut: int, read_after_ms: int
) -> None:
    track = TrackFeatures()
    for i, (ts, kind) in enumerate(events):  # hypothesis order: unsorted, arbitrarily late
        if i == cut:  # a restart part-way: the state carries everything needed
            track = TrackFeatures.from_state(orjson.loads(orjson.dumps(track.to_state())))
        track.update({"type": kind, "ts": ts})
    newest = max(ts for ts, _ in events)
    at = newest + read_after_ms
    # A read before the newest event is answered at the newest event.
    assert_close(track.read(at), brute_force(events, max(at, newest)))


def test_a_new_track_reads_zeros_and_the_priors() -> None:
    f = TrackFeatures().read(0)
    assert f["plays_1h"] == f["saves_7d"] == 0.0
    assert (f["trending"], f["skip_rate_1d"], f["save_rate_7d"]) == (1.0, 0.3, 0.05)


def test_a_burst_of_plays_is_trending_and_a_steady_track_is_not() -> None:
    # burst: 20 plays in the last 10 minutes       steady: 10 plays an hour for 3 days
    burst, steady, fading = TrackFeatures(), TrackFeatures(), TrackFeatures()
    for i in range(20):
        burst.update({"type": "play", "ts": 3 * DAY - i * 30_000})
    for i in range(3 * 24 * 10):
        steady.update({"type": "play", "ts": i * HOUR // 10})
        fading.update({"type": "play", "ts": i * HOUR // 10 - DAY})  # stopped a day ago
    assert burst.read(3 * DAY)["trending"] > 5
    assert steady.read(3 * DAY)["trending"] == pytest.approx(1.0, abs=0.1)
    assert fading.read(3 * DAY)["trending"] < 0.6


def test_skip_and_save_rates_follow_their_formulas() -> None:
    # t=0: 3 plays, 1 skip, 2 saves   -> skip (1 + 1.5) / (3 + 1 + 5), save (2 + 0.25) / (3 + 5)
    track = TrackFeatures()
    for kind in ["play", "play", "play", "skip", "save", "save"]:
        track.update({"type": kind, "ts": 0})
    f = track.read(0)
    assert f["skip_rate_1d"] == pytest.approx(2.5 / 9)
    assert f["save_rate_7d"] == pytest.approx(2.25 / 8)


def test_state_is_compact_and_round_trips() -> None:
    rng = random.Random(3)
    track = TrackFeatures()
    for _ in range(1000):
        track.update({"type": rng.choice(["play", "skip", "save"]), "ts": rng.randrange(DAY)})
    state = orjson.loads(orjson.dumps(track.to_state()))
    assert len(orjson.dumps(state)) < 240 and "half_life_s" not in orjson.dumps(state).decode()
    restored = TrackFeatures.from_state(state)
    assert restored.to_state() == state
    for at in (0, DAY, 3 * DAY):
        assert_close(restored.read(at), track.read(at))


def test_an_unknown_type_raises_and_changes_nothing() -> None:
    track = TrackFeatures()
    track.update({"type": "play", "ts": 0})
    before = track.to_state()
    with pytest.raises(ValueError, match="type: expected one of"):
        track.update({"type": "like", "ts": HOUR})
    assert track.to_state() == before


@pytest.mark.parametrize("state", [{"v": 2, "latest_ts_ms": 0, "counts": {}}, {"v": 1}])
def test_a_state_of_another_version_or_missing_a_field_is_refused(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="TrackFeatures state"):
        TrackFeatures.from_state(state)
