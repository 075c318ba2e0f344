"""All decay maths is safe over the whole timestamp range the event schema allows.

Events from 2000-01-01 up to 3000-01-01 are valid; any order of them, read at any
time in that range, must give finite, non-negative weights and never raise.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from features.decay import DecayedRate, DecayedSum
from online_models.popularity import DecayedPopularity
from streams.contracts.events import EVENT_SCHEMA_FILE, load_schema

_TS = load_schema(EVENT_SCHEMA_FILE)["properties"]["ts"]
TIMES = st.integers(min_value=_TS["minimum"], max_value=_TS["maximum"])
HALF_LIVES = st.sampled_from([1.0, 60.0, 3600.0, 86_400.0, 30 * 86_400.0])
EVENTS = st.lists(
    st.tuples(TIMES, st.sampled_from(["a", "b", "c"]), st.sampled_from(["play", "save", "skip"])),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300)
@given(events=EVENTS, read_ms=TIMES, half_life_s=HALF_LIVES)
def test_popularity_is_finite_anywhere_in_the_schema_range(
    events: list[tuple[int, str, str]], read_ms: int, half_life_s: float
) -> None:
    pop = DecayedPopularity(half_life_s=half_life_s)
    for ts, track, kind in events:
        pop.learn_one({"track_id": track, "type": kind, "ts": ts})
    for _, weight in pop.rank(n=3, ts_ms=read_ms):
        assert math.isfinite(weight) and weight >= 0.0


@settings(max_examples=300)
@given(events=EVENTS, half_life_s=HALF_LIVES)
def test_popularity_read_at_the_newest_event_matches_the_brute_force_sum(
    events: list[tuple[int, str, str]], half_life_s: float
) -> None:
    pop = DecayedPopularity(half_life_s=half_life_s)
    for ts, track, kind in events:
        pop.learn_one({"track_id": track, "type": kind, "ts": ts})
    newest = max(ts for ts, _, _ in events)
    expected: dict[str, float] = {}
    for ts, track, kind in events:
        weight = pop.weights[kind] * 2.0 ** (-(newest - ts) / (half_life_s * 1000.0))
        expected[track] = expected.get(track, 0.0) + weight
    for track, weight in pop.rank(n=3, ts_ms=newest):
        # Hundreds of half-lives back, the log-domain score keeps ~1e-9 of relative
        # precision (hypothesis found 1.03e-9 at 1e-272): far below any ranking's care.
        assert math.isclose(weight, expected[track], rel_tol=1e-7, abs_tol=1e-280)


@settings(max_examples=300)
@given(updates=st.lists(TIMES, min_size=1, max_size=30), read_ms=TIMES, half_life_s=HALF_LIVES)
def test_decayed_stats_are_finite_anywhere_in_the_schema_range(
    updates: list[int], read_ms: int, half_life_s: float
) -> None:
    total, rate = DecayedSum(half_life_s), DecayedRate(half_life_s, 0.5, 2.0)
    for i, ts in enumerate(updates):
        total.update(ts, 1.0)
        rate.update(ts, float(i % 2))
    assert 0.0 <= total.read(read_ms) <= len(updates)
    assert 0.0 <= rate.read(read_ms) <= 1.0
    restored = DecayedSum.from_state(total.to_state())
    assert math.isclose(restored.read(read_ms), total.read(read_ms), rel_tol=1e-9, abs_tol=1e-280)
