"""The synthetic population: deterministic, well-formed, at the configured rate, shaped by taste."""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.events import EventDecoder
from streams.tools.simulator import (
    CONTEXT_TYPES,
    DEVICES,
    GENRES,
    HOUR_PROFILES,
    Population,
    PopulationConfig,
)

SMALL = PopulationConfig(seed=3, n_users=50, n_tracks=400, n_artists=60, events_per_second=100)
EVENT_KEYS = {"event_id", "user_id", "track_id", "type", "ts", "ms_played", "session_id", "context"}


def encoded(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in events)


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(SMALL)


@pytest.fixture(scope="module")
def events(population: Population) -> list[dict[str, Any]]:
    return population.take(20_000)


def test_same_seed_gives_identical_events(events: list[dict[str, Any]]) -> None:
    assert encoded(Population(SMALL).take(20_000)) == encoded(events)


def test_equal_configs_give_identical_events() -> None:
    as_int = dataclasses.replace(SMALL, events_per_second=100)
    assert as_int == SMALL
    assert encoded(Population(as_int).take(200)) == encoded(Population(SMALL).take(200))


def test_different_seed_gives_different_events() -> None:
    other = dataclasses.replace(SMALL, seed=4)
    assert encoded(Population(SMALL).take(200)) != encoded(Population(other).take(200))


def test_events_start_over_on_every_call(population: Population) -> None:
    assert encoded(population.take(500)) == encoded(population.take(500))


def test_events_are_in_event_time_order(events: list[dict[str, Any]]) -> None:
    timestamps = [e["ts"] for e in events]
    assert timestamps == sorted(timestamps)
    assert timestamps[0] == SMALL.start_ts_ms


def test_event_ids_are_unique(events: list[dict[str, Any]]) -> None:
    assert len({e["event_id"] for e in events}) == len(events)


def test_event_and_session_ids_differ_between_runs_started_at_different_times() -> None:
    # A restarted simulator must not have its events dropped as duplicates.
    later = dataclasses.replace(SMALL, start_ts_ms=SMALL.start_ts_ms + 1)
    first, second = Population(SMALL).take(300), Population(later).take(300)
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}
    assert not {e["session_id"] for e in first} & {e["session_id"] for e in second}


def test_every_event_matches_the_wire_contract(
    population: Population, events: list[dict[str, Any]]
) -> None:
    durations = {t.track_id: t.duration_ms for t in population.tracks}
    user_ids = {u.user_id for u in population.users}
    for event in events:
        assert set(event) == EVENT_KEYS, event
        for key in ("event_id", "user_id", "track_id", "session_id"):
            assert type(event[key]) is str and event[key], event
        assert event["user_id"] in user_ids
        assert event["track_id"] in durations
        assert type(event["ts"]) is int
        assert type(event["ms_played"]) is int
        context = event["context"]
        assert type(context["hour"]) is int and 0 <= context["hour"] <= 23, event
        assert context["device"] in DEVICES
        assert context["context_type"] in CONTEXT_TYPES
        has_playlist = context["context_type"] in ("playlist", "editorial")
        expected_keys = {"device", "context_type", "hour"} | (
            {"playlist_id"} if has_playlist else set()
        )
        assert set(context) == expected_keys, event
        if has_playlist:
            assert type(context["playlist_id"]) is str and context["playlist_id"]
        if event["type"] == "skip":
            assert 0 <= event["ms_played"] <= 30_000, event
        elif event["type"] == "play":
            assert 0 < event["ms_played"] <= durations[event["track_id"]], event
        else:
            assert event["type"] == "save" and event["ms_played"] == 0, event


def test_every_event_passes_the_published_schema(events: list[dict[str, Any]]) -> None:
    decoder = EventDecoder(now_ms=lambda: events[-1]["ts"])
    for event in events[:3000]:
        _accepted, rejected = decoder.decode(event["user_id"].encode(), orjson.dumps(event))
        assert rejected == [], rejected


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(-(2**63), 2**63),
    n_users=st.integers(1, 8),
    n_artists=st.integers(1, 10),
    extra_tracks=st.integers(0, 30),
    rate=st.floats(0.01, 1e6),
)
def test_any_small_world_streams_ordered_unique_well_formed_events(
    seed: int, n_users: int, n_artists: int, extra_tracks: int, rate: float
) -> None:
    config = PopulationConfig(
        seed=seed,
        n_users=n_users,
        n_artists=n_artists,
        n_tracks=n_artists + extra_tracks,
        events_per_second=rate,
    )
    events = Population(config).take(300)
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(set(e) == EVENT_KEYS and e["ms_played"] >= 0 for e in events)


@pytest.mark.parametrize("rate", [5.0, 200.0, 5000.0])
def test_rate_matches_config(rate: float) -> None:
    # Event-time gaps are exponential: over 20k events the span is within ~1% of N / rate.
    n = 20_000
    events = Population(dataclasses.replace(SMALL, events_per_second=rate)).take(n)
    span_s = (events[-1]["ts"] - events[0]["ts"]) / 1000
    assert span_s == pytest.approx((n - 1) / rate, rel=0.05)


def test_skips_are_more_likely_for_tracks_off_taste() -> None:
    # Over several seeds: the skip rate of badly fitting tracks (affinity < 0.5) against
    # well fitting ones. Observed about 0.6 against 0.1; each side has thousands of events.
    for seed in (1, 2, 3):
        population = Population(dataclasses.replace(SMALL, seed=seed))
        rates = outcome_rates(population, "skip", population.take(10_000))
        assert rates["off"] > rates["on"] + 0.25, (seed, rates)


def test_saves_are_more_likely_for_tracks_on_taste() -> None:
    for seed in (1, 2, 3):
        population = Population(dataclasses.replace(SMALL, seed=seed))
        events = population.take(10_000)
        plays_and_saves = [e for e in events if e["type"] in ("play", "save")]
        rates = outcome_rates(population, "save", plays_and_saves)
        assert rates["on"] > 2 * rates["off"], (seed, rates)


def outcome_rates(
    population: Population, kind: str, events: list[dict[str, Any]]
) -> dict[str, float]:
    """The share of ``kind`` among events of well (on) and badly (off) fitting tracks."""
    users = {u.user_id: u for u in population.users}
    tracks = {t.track_id: t for t in population.tracks}
    counts: dict[str, collections.Counter[bool]] = {
        "on": collections.Counter(),
        "off": collections.Counter(),
    }
    for event in events:
        fit = users[event["user_id"]].affinity(tracks[event["track_id"]])
        counts["on" if fit >= 0.5 else "off"][event["type"] == kind] += 1
    for side, count in counts.items():
        assert count.total() > 500, (side, count)  # enough events for the margins above
    return {side: count[True] / count.total() for side, count in counts.items()}


def test_a_save_follows_a_play_of_the_same_track_in_the_same_session(
    events: list[dict[str, Any]],
) -> None:
    previous: dict[str, dict[str, Any]] = {}
    saves = 0
    for event in events:
        if event["type"] == "save":
            saves += 1
            before = previous[event["user_id"]]
            assert before["type"] == "play", (before, event)
            assert (before["track_id"], before["session_id"]) == (
                event["track_id"],
                event["session_id"],
            )
        previous[event["user_id"]] = event
    assert saves > 100


def test_a_session_keeps_its_user_device_and_context(events: list[dict[str, Any]]) -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    for event in events:
        context = event["context"]
        shape = (
            event["user_id"],
            context["device"],
            context["context_type"],
            context.get("playlist_id"),
        )
        assert seen.setdefault(event["session_id"], shape) == shape, event
    sessions = collections.Counter(e["session_id"] for e in events)
    assert len(sessions) > 500
    assert 3 < sum(sessions.values()) / len(sessions) < 30  # several tracks per session


def test_users_listen_mostly_around_their_profile_peaks(
    population: Population, events: list[dict[str, Any]]
) -> None:
    profile = {u.user_id: u.hour_profile for u in population.users}
    peak_hours = {
        "morning": range(5, 11),
        "daytime": range(9, 18),
        "evening": range(17, 24),
        "night": (21, 22, 23, 0, 1, 2, 3),
    }
    assert set(peak_hours) == set(HOUR_PROFILES)
    for name, hours in peak_hours.items():
        of_profile = [e for e in events if profile[e["user_id"]] == name]
        in_peak = sum(e["context"]["hour"] in hours for e in of_profile)
        assert in_peak > 0.7 * len(of_profile), (name, in_peak, len(of_profile))


def test_listens_follow_taste_and_popularity(
    population: Population, events: list[dict[str, Any]]
) -> None:
    users = {u.user_id: u for u in population.users}
    tracks = {t.track_id: t for t in population.tracks}
    on_taste = sum(users[e["user_id"]].affinity(tracks[e["track_id"]]) >= 0.5 for e in events)
    assert on_taste > 0.6 * len(events)
    top = sorted(population.tracks, key=lambda t: -t.popularity)[: len(population.tracks) // 10]
    top_ids = {t.track_id for t in top}
    assert sum(e["track_id"] in top_ids for e in events) > 0.3 * len(events)


def test_catalog_matches_the_spec(population: Population) -> None:
    tracks = population.tracks
    assert [t.track_id for t in tracks] == [f"t{i:05d}" for i in range(SMALL.n_tracks)]
    artists = collections.defaultdict(set)
    for track in tracks:
        artists[track.artist_id].add(track.genres)
        assert 1 <= len(track.genres) <= 2 and set(track.genres) <= set(GENRES)
        assert 120_000 <= track.duration_ms <= 420_000
        assert 1960 <= track.release_year <= 2026
        assert 0 < track.popularity <= 1
        record = track.to_dict()
        assert record["genres"] == list(track.genres)
        assert orjson.loads(orjson.dumps(record)) == record
    assert len(artists) == SMALL.n_artists  # every artist has a track
    assert all(len(genres) == 1 for genres in artists.values())  # genres belong to the artist
    assert 0.05 < sum(t.explicit for t in tracks) / len(tracks) < 0.15
    assert 0.02 < sum(t.editorial for t in tracks) / len(tracks) < 0.09
    assert max(t.popularity for t in tracks) == 1.0  # Zipf: the top rank weighs 1


def test_catalog_does_not_depend_on_the_users(population: Population) -> None:
    other = Population(dataclasses.replace(SMALL, n_users=3, events_per_second=1))
    assert other.tracks == population.tracks


def test_users_have_a_taste_and_habits(population: Population) -> None:
    ids = [u.user_id for u in population.users]
    assert ids == [f"u{i:04d}" for i in range(SMALL.n_users)]
    for user in population.users:
        assert set(user.taste) == set(GENRES)
        assert set(user.device_weights) == set(DEVICES)
        assert set(user.context_weights) == set(CONTEXT_TYPES)
        for weights in (user.taste.values(), user.device_weights.values(), user.hour_weights):
            assert sum(weights) == pytest.approx(1)
        assert user.hour_profile in HOUR_PROFILES and len(user.hour_weights) == 24
        assert 1 <= len(user.favourite_artists) <= 5 and user.playlists
    assert len({u.hour_profile for u in population.users}) == len(HOUR_PROFILES)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_tracks": 0}, "n_tracks"),
        ({"n_artists": 0}, "n_artists"),
        ({"n_users": 2.5}, "n_users"),
        ({"seed": "7"}, "seed"),
        ({"n_artists": 11, "n_tracks": 10}, "n_artists"),
        ({"start_ts_ms": 0}, "start_ts_ms"),
        ({"start_ts_ms": 1_767_225_600.0}, "start_ts_ms"),
        ({"events_per_second": 0}, "events_per_second"),
        ({"events_per_second": -1.0}, "events_per_second"),
        ({"events_per_second": float("nan")}, "events_per_second"),
        ({"events_per_second": float("inf")}, "events_per_second"),
        ({"events_per_second": True}, "events_per_second"),
    ],
)
def test_invalid_config_is_rejected(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PopulationConfig(**changes)


def test_the_smallest_world_works() -> None:
    config = PopulationConfig(n_users=1, n_tracks=1, n_artists=1, events_per_second=1)
    events = Population(config).take(50)
    assert {e["track_id"] for e in events} == {"t00000"}
    assert {e["user_id"] for e in events} == {"u0000"}
