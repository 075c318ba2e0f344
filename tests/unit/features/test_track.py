"""TrackFeatures against a recomputation, in any arrival order (no lateness bound)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackFeatures

HOUR = 3_600_000


def decayed(events: list[tuple[int, str]], kind: str, at: int, half_life_s: float) -> float:
    return sum(0.5 ** ((at - ts) / (half_life_s * 1000)) for ts, k in events if k == kind)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 48 * HOUR), st.sampled_from(["play", "skip", "save"])),
        min_size=1,
        max_size=80,
    ),
)
def test_statistics_equal_a_recomputation_whatever_the_order(
    events: list[tuple[int, str]],
) -> None:
    track = TrackFeatures()
    for ts, kind in events:  # hypothesis order: unsorted, arbitrarily late
        track.update({"type": kind, "ts": ts})
    track = TrackFeatures.from_state(orjson.loads(orjson.dumps(track.to_state())))
    at = max(ts for ts, _ in events)
    f = track.read(at)
    plays_1h = decayed(events, "play", at, 3600)
    plays_1d = decayed(events, "play", at, 86_400)
    skips_1d = decayed(events, "skip", at, 86_400)
    assert f["plays_1h"] == pytest.approx(plays_1h, rel=1e-9, abs=1e-12)
    assert f["trending"] == pytest.approx((plays_1h + 1) / (plays_1d / 24 + 1), rel=1e-9)
    assert f["skip_rate_1d"] == pytest.approx((skips_1d + 1.5) / (plays_1d + skips_1d + 5))
    saves, plays_7d = decayed(events, "save", at, 604_800), decayed(events, "play", at, 604_800)
    assert f["save_rate_7d"] == pytest.approx((saves + 0.25) / (plays_7d + 5), rel=1e-9)


def test_a_burst_of_plays_is_trending_and_a_steady_track_is_not() -> None:
    # burst: 20 plays in the last 10 minutes       steady: 1 play an hour for a day
    burst, steady = TrackFeatures(), TrackFeatures()
    for i in range(20):
        burst.update({"type": "play", "ts": 24 * HOUR - i * 30_000})
    for h in range(24):
        steady.update({"type": "play", "ts": h * HOUR})
    assert burst.read(24 * HOUR)["trending"] > 5
    assert 0.5 < steady.read(24 * HOUR)["trending"] < 1.5
