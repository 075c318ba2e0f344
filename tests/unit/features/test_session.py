"""Sessions split by inactivity, exact under late arrival within the lateness bound."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import SessionTracker

MIN = 60_000
GAP = 30 * MIN
LATENESS = 5 * MIN


def test_silence_longer_than_the_gap_starts_a_new_session() -> None:
    # 0 play  4 skip  7 skip | 60 play        (minutes; gap 30)
    # └── session 1 ───────┘   └ session 2
    s = SessionTracker(GAP)
    for minute, kind in [(0, "play"), (4, "skip"), (7, "skip"), (60, "play")]:
        s.update(minute * MIN, kind)
    f = s.read(60 * MIN)
    assert (f.start_ms, f.position, f.length_ms, f.skips_in_a_row) == (60 * MIN, 1, 0, 0)


def test_no_session_runs_once_the_gap_has_passed() -> None:
    # 0 play ........ read at 31 min: silent longer than the gap -> nothing running
    s = SessionTracker(GAP)
    s.update(0, "play", {"device": "phone"})
    assert s.read(30 * MIN).active and not s.read(31 * MIN).active


def test_a_late_event_can_join_two_sessions_into_one() -> None:
    # 0 play | 33 play       then 3 min late: 29 play arrives
    # gaps 33 > 30 ...        now 29 and 4: one session of three
    s = SessionTracker(GAP)
    s.update(0, "play")
    s.update(33 * MIN, "play")
    assert s.read(33 * MIN).position == 1
    s.update(29 * MIN, "skip")
    f = s.read(33 * MIN)
    assert (f.start_ms, f.position, f.skips_in_a_row) == (0, 3, 0)


def test_context_is_the_latest_event_that_names_it() -> None:
    s = SessionTracker(GAP)
    s.update(0, "play", {"device": "phone", "context_type": "radio"})
    s.update(2 * MIN, "play", {"device": "car"})
    s.update(1 * MIN, "play", {"device": "tv"})  # late, but earlier in event time
    f = s.read(2 * MIN)
    assert (f.device, f.context_type) == ("car", "radio")


def test_a_long_session_keeps_counting_beyond_its_memory_bound() -> None:
    s = SessionTracker(GAP, max_events=10)
    for i in range(100):
        s.update(i * MIN, "skip")
    f = s.read(99 * MIN)
    assert (f.position, f.start_ms, f.length_ms) == (100, 0, 99 * MIN)
    assert len(orjson.dumps(s.to_state())) < 1000


def brute_force(events: list[tuple[int, str]], at: int) -> tuple[int, int, int, int] | None:
    ordered = sorted(events)
    if not ordered or at - ordered[-1][0] > GAP:
        return None
    start = len(ordered) - 1
    while start and ordered[start][0] - ordered[start - 1][0] <= GAP:
        start -= 1
    session = ordered[start:]
    skips = len(session) - max(
        (i + 1 for i, (_, kind) in enumerate(session) if kind != "skip"), default=0
    )
    return session[0][0], len(session), session[-1][0] - session[0][0], skips


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 45 * MIN), st.sampled_from(["play", "skip"]), st.integers(0, LATENESS)
        ),
        min_size=1,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_matches_a_recomputation_for_any_arrival_within_the_lateness(
    raw: list[tuple[int, str, int]], rng: random.Random
) -> None:
    ts, events, keys = 0, [], []
    for gap, kind, jitter in raw:
        ts += gap
        events.append((ts, kind))
        keys.append(ts + jitter)
    s = SessionTracker(GAP)
    for _, (t, kind) in sorted(zip(keys, events, strict=True), key=lambda p: p[0]):
        s.update(t, kind)
    restored = SessionTracker.from_state(orjson.loads(orjson.dumps(s.to_state())))
    at = ts + rng.randrange(0, 40 * MIN)
    f = restored.read(at)
    expected = brute_force(events, at)
    assert (None if not f.active else (f.start_ms, f.position, f.length_ms, f.skips_in_a_row)) == (
        expected
    )


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionTracker(gap_ms=0)
