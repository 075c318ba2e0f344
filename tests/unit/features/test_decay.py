"""Decayed sums, counts and rates equal their brute-force definitions, in any arrival order."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.decay import DecayedCounter, DecayedRate, DecayedSum

T0 = 1_700_000_000_000  # a realistic epoch-ms origin: large numbers are part of the test
HALF_LIVES_S = [0.5, 60.0, 3600.0, 86_400.0, 7 * 86_400.0]

Event = tuple[int, float]


def brute_sum(events: list[Event], t: int, half_life_s: float) -> float:
    return sum(v * 2.0 ** (-(t - ts) / (half_life_s * 1000.0)) for ts, v in events)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@st.composite
def timelines(draw: st.DrawFn, value: st.SearchStrategy[float]) -> tuple[float, list[Event]]:
    """A half-life and events in arrival order, over spans from 1 s to ~30 days.

    Spans far beyond the shorter half-lives make the stored frame move forward.
    """
    half_life_s = draw(st.sampled_from(HALF_LIVES_S))
    span_ms = draw(st.sampled_from([1_000, 1_000_000, 2_600_000_000]))
    ts = st.integers(T0, T0 + span_ms)
    events = draw(st.lists(st.tuples(ts, value), min_size=1, max_size=40))
    return half_life_s, draw(st.permutations(events))


VALUES = st.floats(0.0, 1e6, allow_nan=False)
OUTCOMES = st.floats(0.0, 1.0)
LATER_MS = st.integers(0, 10**10)


@settings(deadline=None)
@given(timelines(VALUES), LATER_MS)
def test_out_of_order_update_equals_brute_force_sum(
    timeline: tuple[float, list[Event]], later_ms: int
) -> None:
    half_life_s, events = timeline
    stat = DecayedSum(half_life_s)
    for ts, value in events:
        assert stat.update(ts, value) is True
    t = max(ts for ts, _ in events) + later_ms
    assert close(stat.read(t), brute_sum(events, t, half_life_s))


@settings(deadline=None)
@given(timelines(VALUES))
def test_every_read_at_the_newest_time_so_far_equals_brute_force(
    timeline: tuple[float, list[Event]],
) -> None:
    half_life_s, events = timeline
    stat = DecayedSum(half_life_s)
    for i, (ts, value) in enumerate(events):
        stat.update(ts, value)
        seen = events[: i + 1]
        t = max(ts for ts, _ in seen)
        assert close(stat.read(t), brute_sum(seen, t, half_life_s))


@settings(deadline=None)
@given(timelines(OUTCOMES), LATER_MS, st.floats(0.0, 1.0), st.floats(0.01, 100.0))
def test_rate_equals_brute_force_smoothed_ratio(
    timeline: tuple[float, list[Event]], later_ms: int, prior_rate: float, prior_weight: float
) -> None:
    half_life_s, events = timeline
    rate = DecayedRate(half_life_s, prior_rate=prior_rate, prior_weight=prior_weight)
    for ts, outcome in events:
        rate.update(ts, outcome)
    t = max(ts for ts, _ in events) + later_ms
    hits = brute_sum(events, t, half_life_s)
    trials = brute_sum([(ts, 1.0) for ts, _ in events], t, half_life_s)
    expected = (hits + prior_rate * prior_weight) / (trials + prior_weight)
    assert close(rate.read(t), expected)
    assert close(rate.hits(t), hits)
    assert close(rate.trials(t), trials)
    assert 0.0 <= rate.read(t) <= 1.0


@settings(deadline=None)
@given(timelines(VALUES), st.integers(0, 40), LATER_MS)
def test_state_round_trip_through_json_keeps_the_reading_and_the_future(
    timeline: tuple[float, list[Event]], cut: int, later_ms: int
) -> None:
    half_life_s, events = timeline
    before, after = events[:cut], events[cut:]
    stat = DecayedSum(half_life_s)
    for ts, value in before:
        stat.update(ts, value)
    restored = DecayedSum.from_state(orjson.loads(orjson.dumps(stat.to_state())))
    for ts, value in after:
        restored.update(ts, value)
    t = max(ts for ts, _ in events) + later_ms
    assert close(restored.read(t), brute_sum(events, t, half_life_s))


@settings(deadline=None)
@given(timelines(OUTCOMES), LATER_MS)
def test_rate_state_round_trip_through_json_gives_an_equal_reading(
    timeline: tuple[float, list[Event]], later_ms: int
) -> None:
    half_life_s, events = timeline
    rate = DecayedRate(half_life_s, prior_rate=0.2, prior_weight=5.0)
    for ts, outcome in events:
        rate.update(ts, outcome)
    restored = DecayedRate.from_state(orjson.loads(orjson.dumps(rate.to_state())))
    t = max(ts for ts, _ in events) + later_ms
    assert close(restored.read(t), rate.read(t))
    assert repr(restored) == repr(rate)


def test_value_halves_every_half_life() -> None:
    # half-life 60 s
    # ts (s):    0      60     120
    # events:    8.0
    # read:      8.0    4.0    2.0
    stat = DecayedSum(half_life_s=60)
    stat.update(0, 8.0)
    assert [stat.read(ts) for ts in (0, 60_000, 120_000)] == pytest.approx([8.0, 4.0, 2.0])


def test_late_update_is_folded_in_with_its_own_age() -> None:
    # half-life 60 s
    # ts (s):    -60     0      60     120
    # arrival:   2nd     1st
    # read at 120: 8 * 2**-3 + 8 * 2**-2 = 3.0, whichever arrived first
    in_order, late = DecayedSum(half_life_s=60), DecayedSum(half_life_s=60)
    for ts in (-60_000, 0):
        in_order.update(ts, 8.0)
    for ts in (0, -60_000):
        late.update(ts, 8.0)
    assert in_order.read(120_000) == pytest.approx(3.0)
    assert late.read(120_000) == pytest.approx(3.0)


def test_read_before_the_newest_update_is_answered_at_the_newest_update() -> None:
    # half-life 60 s
    # ts (s):    0      60
    # events:    8.0    8.0
    # read at 0 (earlier than the newest update) = read at 60 = 8 * 2**-1 + 8 = 12
    stat = DecayedSum(half_life_s=60)
    stat.update(0, 8.0)
    stat.update(60_000, 8.0)
    assert stat.read(0) == stat.read(60_000) == pytest.approx(12.0)


def test_frame_moves_forward_across_thousands_of_half_lives_without_overflow() -> None:
    # half-life 1 s; events 10 000 s apart, then one 5 s late
    # ts (s):   0        10 000     19 995   20 000
    # events:   1.0      1.0        (late)   1.0
    stat = DecayedSum(half_life_s=1)
    events = [(0, 1.0), (10_000_000, 1.0), (20_000_000, 1.0), (19_995_000, 1.0)]
    for ts, value in events:
        stat.update(ts, value)
    assert stat.read(20_000_000) == pytest.approx(1.0 + 2.0**-5)
    assert stat.read(20_010_000) == pytest.approx((1.0 + 2.0**-5) * 2.0**-10)
    assert math.isfinite(stat.to_state()["value"])


def test_update_far_older_than_everything_else_weighs_nothing_and_breaks_nothing() -> None:
    stat = DecayedSum(half_life_s=1)
    stat.update(T0, 1.0)
    stat.update(0, 1e300)  # 1.7e9 s late: its weight underflows to zero
    assert stat.read(T0) == pytest.approx(1.0)


def test_empty_stats_read_zero_or_their_prior() -> None:
    assert DecayedSum().read(T0) == 0.0
    assert DecayedCounter().read(-T0) == 0.0
    assert DecayedRate(prior_rate=0.3, prior_weight=4.0).read(T0) == pytest.approx(0.3)
    assert DecayedRate().trials(T0) == 0.0


def test_counter_counts_events_and_weights() -> None:
    # half-life 1 h
    # ts (h):    0    0    1
    # events:    1    1    1      read at 1 h: 2 * 0.5 + 1 = 2
    plays = DecayedCounter(half_life_s=3600)
    for ts in (0, 0, 3_600_000):
        plays.update(ts)
    assert plays.read(3_600_000) == pytest.approx(2.0)


@pytest.mark.parametrize("half_life_s", [0, 0.0, -1.0, -3600, math.nan, math.inf, 1e-320, 1e307])
@pytest.mark.parametrize("cls", [DecayedSum, DecayedCounter, DecayedRate])
def test_half_life_that_is_not_a_finite_positive_number_is_rejected(
    cls: type, half_life_s: float
) -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        cls(half_life_s)


def test_negative_count_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        DecayedCounter().update(T0, -1.0)


@pytest.mark.parametrize("outcome", [-0.1, 1.5, math.nan])
def test_rate_outcome_outside_zero_one_is_rejected(outcome: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DecayedRate().update(T0, outcome)


@pytest.mark.parametrize(
    ("prior_rate", "prior_weight"), [(-0.1, 1.0), (1.1, 1.0), (0.5, 0.0), (0.5, math.inf)]
)
def test_rate_prior_out_of_range_is_rejected(prior_rate: float, prior_weight: float) -> None:
    with pytest.raises(ValueError, match="prior"):
        DecayedRate(prior_rate=prior_rate, prior_weight=prior_weight)


def test_sum_accepts_negative_values() -> None:
    stat = DecayedSum(half_life_s=60)
    stat.update(0, 5.0)
    stat.update(0, -2.0)
    assert stat.read(0) == pytest.approx(3.0)


@settings(deadline=None)
@given(timelines(VALUES), st.integers(0, 40), LATER_MS)
def test_after_a_rebase_a_restored_stat_goes_on_bit_for_bit_alike(
    timeline: tuple[float, list[Event]], cut: int, later_ms: int
) -> None:
    half_life_s, events = timeline
    before, after = events[:cut], events[cut:]
    stat = DecayedSum(half_life_s)
    for ts, value in before:
        stat.update(ts, value)
    newest = max((ts for ts, _ in before), default=T0)
    stat.rebase(newest)
    restored = DecayedSum.from_state(orjson.loads(orjson.dumps(stat.to_state())))
    for ts, value in after:
        assert stat.update(ts, value) and restored.update(ts, value)
    t = max(ts for ts, _ in events) + later_ms
    assert restored.read(t) == stat.read(t)
    assert close(stat.read(t), brute_sum(events, t, half_life_s))


def test_a_rebase_before_the_newest_update_is_refused() -> None:
    stat = DecayedCounter(half_life_s=60)
    stat.update(T0)
    with pytest.raises(ValueError, match="before the newest update"):
        stat.rebase(T0 - 1)
