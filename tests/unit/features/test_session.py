"""Sessions split by inactivity, exact under late arrival within the lateness bound."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import SessionFeatures, SessionTracker
from features.base import unpack_unsigned

MIN = 60_000
GAP = 30 * MIN
LATENESS = 5 * MIN


def test_silence_longer_than_the_gap_starts_a_new_session() -> None:
    # 0 play  4 skip  7 skip | 60 play        (minutes; gap 30)
    # └── session 1 ───────┘   └ session 2
    s = SessionTracker(GAP)
    for minute, kind in [(0, "play"), (4, "skip"), (7, "skip")]:
        s.update(minute * MIN, kind)
    f = s.read(8 * MIN)
    assert (f.session_start_ms, f.position, f.length_ms, f.skips_in_a_row) == (0, 3, 7 * MIN, 2)
    s.update(60 * MIN, "play")
    f = s.read(60 * MIN)
    assert (f.session_start_ms, f.position, f.length_ms, f.skips_in_a_row) == (60 * MIN, 1, 0, 0)


def test_a_gap_of_exactly_gap_ms_keeps_the_session() -> None:
    # 0 play ── 30 min ── 30 play: a silence of exactly the gap does not split
    s = SessionTracker(GAP)
    s.update(0, "play")
    s.update(GAP, "play")
    assert s.read(GAP).position == 2
    s.update(2 * GAP + 1, "play")  # one millisecond more than the gap does
    assert s.read(2 * GAP + 1).position == 1


def test_no_session_runs_once_the_gap_has_passed() -> None:
    # 0 play ........ read at 30 min: still running; at 31 min: silent longer than the gap
    s = SessionTracker(GAP)
    assert s.read(0) == SessionFeatures(False, None, 0, 0, 0, None, None)
    s.update(0, "play", {"device": "phone"})
    assert s.read(30 * MIN).active and not s.read(31 * MIN).active
    assert s.read(31 * MIN).to_dict() == {
        "active": False,
        "session_start_ms": None,
        "position": 0,
        "length_ms": 0,
        "skips_in_a_row": 0,
        "device": None,
        "context_type": None,
    }


def test_a_late_event_can_join_two_sessions_into_one() -> None:
    # 0 play | 33 play       then 4 min late: 29 skip arrives
    # gap 33 > 30 ...         now steps of 29 and 4: one session of three
    s = SessionTracker(GAP)
    s.update(0, "play")
    s.update(33 * MIN, "play")
    assert s.read(33 * MIN).position == 1
    s.update(29 * MIN, "skip")
    f = s.read(33 * MIN)
    assert (f.session_start_ms, f.position, f.length_ms, f.skips_in_a_row) == (0, 3, 33 * MIN, 0)


def test_only_the_previous_session_is_kept_for_a_late_event_to_join() -> None:
    # sessions at 0, 60, 120 min: when 120 opens, the one at 0 can no longer be joined
    s = SessionTracker(GAP)
    for minute in (0, 1, 60, 61, 120):
        s.update(minute * MIN, "play")
    assert len(s) == 3


def test_context_is_the_latest_event_that_names_it() -> None:
    s = SessionTracker(GAP)
    s.update(0, "play", {"device": "phone", "context_type": "radio"})
    s.update(2 * MIN, "play", {"device": "car"})
    s.update(1 * MIN, "play", {"device": "tv"})  # late, but earlier in event time
    f = s.read(2 * MIN)
    assert (f.device, f.context_type) == ("car", "radio")


def test_equal_times_are_ordered_by_content_not_arrival() -> None:
    # a play and a skip both at t=0: whichever arrives first, the skip counts as the later
    one, other = SessionTracker(GAP), SessionTracker(GAP)
    one.update(0, "play")
    one.update(0, "skip")
    other.update(0, "skip")
    other.update(0, "play")
    assert one.read(0) == other.read(0)
    assert one.read(0).skips_in_a_row == 1


def test_a_long_session_keeps_counting_beyond_its_memory_bound() -> None:
    s = SessionTracker(GAP, max_events=10)
    for i in range(100):
        s.update(i * MIN, "skip")
    f = s.read(99 * MIN)
    assert (f.position, f.session_start_ms, f.length_ms) == (100, 0, 99 * MIN)
    assert f.skips_in_a_row == 10  # the kept events only: documented
    assert len(s) == 10 and len(orjson.dumps(s.to_state())) < 1000
    s.update(200 * MIN, "play")  # a new session: the old one's count is not carried over
    assert s.read(200 * MIN).position == 1


def test_a_late_event_earlier_than_a_dense_full_session_still_moves_its_start() -> None:
    s = SessionTracker(GAP, max_events=3)
    for second in (10, 11, 12, 13):
        s.update(second * 1000, "play")
    s.update(5_000, "play")  # late and the earliest: forgotten at once, but counted
    f = s.read(13_000)
    assert (f.session_start_ms, f.position, f.length_ms) == (5_000, 5, 8_000)


def test_a_state_saved_under_a_larger_bound_is_cut_but_keeps_counting() -> None:
    big = SessionTracker(GAP, max_events=50)
    for i in range(20):
        big.update(i * MIN, "play")
    state = {**big.to_state(), "max_events": 5}
    small = SessionTracker.from_state(orjson.loads(orjson.dumps(state)))
    assert len(small) == 5 and small.read(19 * MIN) == big.read(19 * MIN)


def test_repr_shows_the_whole_configuration() -> None:
    s = SessionTracker(gap_ms=GAP, max_events=7)
    assert repr(eval(repr(s), {"SessionTracker": SessionTracker})) == repr(s)


def test_bad_configuration_and_state_are_refused() -> None:
    with pytest.raises(ValueError, match="gap_ms must be > 0"):
        SessionTracker(gap_ms=0)
    with pytest.raises(ValueError, match="max_events must be >= 2"):
        SessionTracker(max_events=1)
    state = SessionTracker().to_state()
    with pytest.raises(ValueError, match="SessionTracker state has version 3"):
        SessionTracker.from_state({**state, "v": 3})
    with pytest.raises(ValueError, match="lacks field 'kinds'"):
        SessionTracker.from_state({k: v for k, v in state.items() if k != "kinds"})


def test_a_version_1_state_listing_the_events_still_restores() -> None:
    s = SessionTracker(GAP, max_events=3)
    for minute, kind, device in [(0, "play", "phone"), (2, "skip", ""), (1, "skip", "car")]:
        s.update(minute * MIN, kind, {"device": device})
    old = {
        "v": 1,
        "gap_ms": GAP,
        "max_events": 3,
        "events": [[0, False, "phone", ""], [MIN, True, "car", ""], [2 * MIN, True, "", ""]],
        "dropped": [0, None],
    }
    restored = SessionTracker.from_state(orjson.loads(orjson.dumps(old)))
    assert restored.to_state() == s.to_state() and restored.read(2 * MIN) == s.read(2 * MIN)


def test_the_state_packs_times_as_steps_and_contexts_once() -> None:
    s = SessionTracker(GAP)
    for second, kind in [(10, "play"), (11, "skip"), (13, "play")]:
        s.update(second * 1000, kind, {"device": "phone", "context_type": "radio"})
    state = s.to_state()
    assert state["start"] == 10_000 and unpack_unsigned(state["steps"]) == [1_000, 2_000]
    assert unpack_unsigned(state["kinds"]) == [0, 1, 0]  # context 0; a skip adds 1
    assert state["contexts"] == [["phone", "radio"]]


Event = tuple[int, str, str, str]  # ts, type, device, context_type ("" = not named)


def brute_force(events: list[Event], at: int) -> dict[str, Any]:
    """The session at ``at`` from the whole event list, the slow obvious way."""
    ordered = sorted(events, key=lambda e: (e[0], e[1] == "skip", e[2], e[3]))
    if not ordered or at - ordered[-1][0] > GAP:
        return SessionFeatures(False, None, 0, 0, 0, None, None).to_dict()
    sessions: list[list[Event]] = [[ordered[0]]]
    for previous, event in itertools.pairwise(ordered):
        if event[0] - previous[0] > GAP:
            sessions.append([])
        sessions[-1].append(event)
    session = sessions[-1]
    kinds = "".join("s" if e[1] == "skip" else "p" for e in session)
    return {
        "active": True,
        "session_start_ms": session[0][0],
        "position": len(session),
        "length_ms": session[-1][0] - session[0][0],
        "skips_in_a_row": len(kinds) - len(kinds.rstrip("s")),
        "device": ([e[2] for e in session if e[2]] or [None])[-1],
        "context_type": ([e[3] for e in session if e[3]] or [None])[-1],
    }


def arrival_within_lateness(
    raw: list[tuple[int, str, str, str, int]],
) -> tuple[list[Event], list[Event]]:
    """Events in event-time order, and an arrival order at most LATENESS behind the newest."""
    ts, events, keys = 0, [], []
    for step, kind, device, context_type, jitter in raw:
        ts += step
        events.append((ts, kind, device, context_type))
        keys.append(ts + jitter)  # an event arrives at ts + jitter <= ts + LATENESS
    return events, [e for _, e in sorted(zip(keys, events, strict=True), key=lambda p: p[0])]


events_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 1, MIN, 10 * MIN, 25 * MIN, GAP, GAP + 1, 33 * MIN, 45 * MIN])
        | st.integers(0, 45 * MIN),  # steps around the gap, where bridging happens
        st.sampled_from(["play", "skip", "save"]),
        st.sampled_from(["", "phone", "desktop"]),
        st.sampled_from(["", "playlist", "radio"]),
        st.integers(0, LATENESS),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.integers(0, 40 * MIN), st.integers(0, 40))
def test_matches_a_recomputation_for_any_arrival_within_the_lateness(
    raw: list[tuple[int, str, str, str, int]], read_after_ms: int, restore_at: int
) -> None:
    events, arrival = arrival_within_lateness(raw)
    s = SessionTracker(GAP, max_events=100)
    for i, (ts, kind, device, context_type) in enumerate(arrival):
        if i == restore_at:  # a restart part-way: the state carries everything needed
            s = SessionTracker.from_state(orjson.loads(orjson.dumps(s.to_state())))
        s.update(ts, kind, {"device": device, "context_type": context_type})
    at = events[-1][0] + read_after_ms
    assert s.read(at).to_dict() == brute_force(events, at)


@settings(max_examples=200, deadline=None)
@given(events_strategy, st.integers(2, 6))
def test_start_position_and_length_stay_exact_beyond_the_memory_bound(
    raw: list[tuple[int, str, str, str, int]], max_events: int
) -> None:
    events, arrival = arrival_within_lateness(raw)
    s = SessionTracker(GAP, max_events=max_events)
    for ts, kind, device, context_type in arrival:
        s.update(ts, kind, {"device": device, "context_type": context_type})
    assert len(s) <= max_events
    at = events[-1][0]
    got, expected = s.read(at).to_dict(), brute_force(events, at)
    # Lost only when max_events events within one lateness forget a whole session that
    # a late event then bridges to (see the module docstring): never in sparser data.
    densest = max(sum(t - LATENESS < u <= t for u, *_ in events) for t, *_ in events)
    if densest < max_events:
        exact = ("active", "session_start_ms", "position", "length_ms")
        assert {k: got[k] for k in exact} == {k: expected[k] for k in exact}
    assert got["skips_in_a_row"] <= expected["skips_in_a_row"]
