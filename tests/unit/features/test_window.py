"""The sliding window equals a brute-force filter of accepted events and reports refusals."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.window import SlidingWindowSum

T0 = 1_700_000_000_000
S = 1_000  # ms per second, so timelines read in seconds

Event = tuple[int, float]


def brute_accepts(events: list[Event], lateness_ms: int) -> list[bool]:
    accepted, newest = [], None
    for ts, _ in events:
        ok = newest is None or ts >= newest - lateness_ms
        accepted.append(ok)
        if ok:
            newest = ts if newest is None else max(newest, ts)
    return accepted


def in_window(events: list[Event], t: int, window_ms: int) -> list[float]:
    return [v for ts, v in events if t - window_ms < ts <= t]


@st.composite
def windows(draw: st.DrawFn, value: st.SearchStrategy[float]) -> tuple[int, int, list[Event]]:
    """Window and lateness, and events whose arrival order is a random shuffle."""
    window_ms = draw(st.integers(1, 50_000))
    lateness_ms = draw(st.sampled_from([0, 1, 5_000, 100_000]))
    ts = st.integers(T0, T0 + draw(st.sampled_from([10_000, 200_000])))
    events = draw(st.lists(st.tuples(ts, value), min_size=1, max_size=60))
    return window_ms, lateness_ms, draw(st.permutations(events))


INTS = st.integers(0, 10**6).map(float)  # counts and milliseconds: exact in float
FLOATS = st.floats(0.0, 1e6, allow_nan=False)


@settings(deadline=None)
@given(windows(INTS), st.lists(st.integers(0, 200_000), max_size=5))
def test_integer_valued_window_equals_brute_force_exactly(
    setup: tuple[int, int, list[Event]], read_offsets_ms: list[int]
) -> None:
    window_ms, lateness_ms, events = setup
    stat = SlidingWindowSum(window_ms, lateness_ms)
    accepted = []
    for (ts, value), expected_ok in zip(events, brute_accepts(events, lateness_ms), strict=True):
        assert stat.update(ts, value) is expected_ok
        if expected_ok:
            accepted.append((ts, value))
            # "as of this event", the read a late event's own features need
            assert stat.read(ts) == sum(in_window(accepted, ts, window_ms))
    horizon = max(ts for ts, _ in accepted) - lateness_ms
    for offset in read_offsets_ms:
        t = horizon + offset
        assert stat.read(t) == sum(in_window(accepted, t, window_ms))
        assert stat.count(t) == len(in_window(accepted, t, window_ms))


@settings(deadline=None)
@given(windows(FLOATS), st.integers(0, 200_000))
def test_fractional_window_equals_brute_force_within_rounding(
    setup: tuple[int, int, list[Event]], offset_ms: int
) -> None:
    window_ms, lateness_ms, events = setup
    stat = SlidingWindowSum(window_ms, lateness_ms)
    accepted = [e for e, ok in zip(events, brute_accepts(events, lateness_ms), strict=True) if ok]
    for ts, value in events:
        stat.update(ts, value)
    t = max(ts for ts, _ in accepted) - lateness_ms + offset_ms
    magnitude = sum(v for _, v in accepted)  # float sums err relative to what they add up
    expected = math.fsum(in_window(accepted, t, window_ms))
    assert math.isclose(stat.read(t), expected, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, magnitude))


@settings(deadline=None)
@given(windows(INTS))
def test_memory_holds_only_events_within_window_plus_lateness(
    setup: tuple[int, int, list[Event]],
) -> None:
    window_ms, lateness_ms, events = setup
    stat = SlidingWindowSum(window_ms, lateness_ms)
    newest = events[0][0]  # the first event is always accepted
    for ts, value in events:
        if stat.update(ts, value):
            newest = max(newest, ts)
        held = stat.to_state()["event_ts_ms"]
        assert all(newest - window_ms - lateness_ms < t <= newest for t in held)
        assert held == sorted(held)


@settings(deadline=None)
@given(windows(INTS), st.integers(0, 60), st.integers(0, 200_000))
def test_state_round_trip_through_json_keeps_the_reading_and_the_future(
    setup: tuple[int, int, list[Event]], cut: int, offset_ms: int
) -> None:
    window_ms, lateness_ms, events = setup
    whole = SlidingWindowSum(window_ms, lateness_ms)
    split = SlidingWindowSum(window_ms, lateness_ms)
    for ts, value in events[:cut]:
        whole.update(ts, value)
        split.update(ts, value)
    split = SlidingWindowSum.from_state(orjson.loads(orjson.dumps(split.to_state())))
    for ts, value in events[cut:]:
        assert split.update(ts, value) is whole.update(ts, value)
    t = max(ts for ts, _ in events) - lateness_ms + offset_ms
    assert split.read(t) == whole.read(t)
    assert split.to_state() == whole.to_state()


def test_read_covers_the_last_window_ms_and_an_event_window_ms_old_has_left() -> None:
    # window 30 s, lateness 0
    # ts (s):   0    10   20   30   40
    # events:   a    b         c
    # read at 40 covers (10, 40] -> {c};  at 39.999 covers (9.999, 39.999] -> {b, c}
    stat = SlidingWindowSum(window_ms=30 * S)
    for ts, value in [(0, 1.0), (10 * S, 2.0), (30 * S, 4.0)]:
        stat.update(ts, value)
    assert stat.read(40 * S) == 4.0
    assert stat.read(40 * S - 1) == 6.0
    assert stat.count(40 * S - 1) == 2


def test_late_event_within_lateness_counts_and_beyond_it_is_refused_and_reported() -> None:
    # window 30 s, lateness 10 s
    # ts (s):   0    10   20   30   40
    # events:   a    b    c    e    d
    # arrival order a, b, d, e, c: d makes the horizon 40 - 10 = 30, so
    # e (10 s late) is accepted and c (20 s late) is refused
    stat = SlidingWindowSum(window_ms=30 * S, lateness_ms=10 * S)
    arrivals = [(0, 1.0), (10 * S, 2.0), (40 * S, 8.0), (30 * S, 16.0), (20 * S, 32.0)]
    accepted = [stat.update(ts, value) for ts, value in arrivals]
    assert accepted == [True, True, True, True, False]
    assert stat.read(40 * S) == 8.0 + 16.0  # (10, 40]
    assert stat.read(30 * S) == 2.0 + 16.0  # (0, 30]: a read at the horizon is still exact


def test_read_before_the_horizon_is_answered_at_the_horizon() -> None:
    # window 10 s, lateness 5 s
    # ts (s):   0    10   20
    # events:   a    b    c       horizon = 20 - 5 = 15: a read at 0 answers for 15 -> {b}
    stat = SlidingWindowSum(window_ms=10 * S, lateness_ms=5 * S)
    for ts in (0, 10 * S, 20 * S):
        stat.update(ts, 1.0)
    assert stat.read(0) == stat.read(15 * S) == 1.0
    assert stat.count(0) == 1


def test_empty_window_reads_zero() -> None:
    stat = SlidingWindowSum(window_ms=S)
    assert (stat.read(T0), stat.count(T0), len(stat)) == (0.0, 0, 0)


def test_max_items_drops_the_oldest_and_refuses_what_would_be_older() -> None:
    # window 60 s, lateness 60 s, max_items 2
    # ts (s):   0    10   20
    # arrival:  a    b    c        c pushes a out; then a late 5 s event would be the oldest
    stat = SlidingWindowSum(window_ms=60 * S, lateness_ms=60 * S, max_items=2)
    assert [stat.update(ts) for ts in (0, 10 * S, 20 * S)] == [True, True, True]
    assert stat.update(5 * S) is False
    assert stat.update(15 * S) is True  # newer than the oldest held: it replaces it
    assert len(stat) == 2
    assert stat.count(20 * S) == 2


def test_total_is_exactly_zero_once_every_event_has_left() -> None:
    stat = SlidingWindowSum(window_ms=S)
    for value in (0.1, 0.2, 0.3):
        stat.update(0, value)
    stat.update(10 * S, 0.0)
    assert stat.read(10 * S) == 0.0


@pytest.mark.parametrize(
    ("window_ms", "lateness_ms", "max_items"),
    [(0, 0, None), (-1, 0, None), (1, -1, None), (1, 0, 0), (math.nan, 0, None)],
)
def test_invalid_configuration_is_rejected(
    window_ms: int, lateness_ms: int, max_items: int | None
) -> None:
    with pytest.raises(ValueError):
        SlidingWindowSum(window_ms, lateness_ms, max_items)


def test_state_with_mismatched_lists_is_rejected() -> None:
    state = SlidingWindowSum().to_state()
    state["values"] = [1.0]
    with pytest.raises(ValueError, match="times"):
        SlidingWindowSum.from_state(state)
