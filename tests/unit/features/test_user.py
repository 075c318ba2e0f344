"""UserFeatures against a brute-force recomputation from the raw events.

The recomputation below is deliberately naive (sums over the whole event list,
sorting, datetime for the calendar, no state), so the two can only agree if the
incremental code is right whatever the arrival order.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackInfo, UserFeatureConfig, UserFeatures
from features.base import unpack_floats
from features.event_types import engagement_label

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday
MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
WEEK_S = 7 * 86_400.0
CONFIG = UserFeatureConfig()
LATENESS = CONFIG.lateness_ms
CATALOG: dict[str, TrackInfo | None] = {
    "t1": TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000),
    "t2": TrackInfo("t2", "a1", ("jazz", "soul"), duration_ms=180_000),
    "t3": TrackInfo("t3", "a2", ("rock",), duration_ms=240_000),
    "t4": TrackInfo("t4", "a3", ("rock", "pop"), duration_ms=None),
    "t5": TrackInfo("t5", "a3", (), duration_ms=100_000),
    "t9": None,  # a track the catalog does not know (yet)
}
HALF_LIVES = dict(CONFIG.horizons)

Event = dict[str, Any]


def decay(age_ms: float, half_life_s: float) -> float:
    return 0.5 ** (age_ms / (half_life_s * 1000.0))


def brute_force(events: list[Event], at: int, config: UserFeatureConfig = CONFIG) -> dict[str, Any]:
    """Every feature from the whole event list, the slow obvious way."""
    out: dict[str, Any] = {"as_of_ms": at, "events_seen": len(events)}
    for kind in ("play", "skip", "save"):
        for name, half_life in HALF_LIVES.items():
            out[f"{kind}s_{name}"] = sum(
                decay(at - e["ts"], half_life) for e in events if e["type"] == kind
            )
    r, w = config.skip_prior
    for name in config.rate_horizons:
        plays, skips = out[f"plays_{name}"], out[f"skips_{name}"]
        out[f"skip_rate_{name}"] = (skips + r * w) / (plays + skips + w)
    r, w = config.save_prior
    out["save_rate_7d"] = (out["saves_7d"] + r * w) / (out["plays_7d"] + w)

    def track(e: Event) -> TrackInfo | None:
        return CATALOG[e["track_id"]]

    listened = [e for e in events if e["type"] != "save" and (t := track(e)) and t.duration_ms]
    ratios = [min(1.0, e["ms_played"] / track(e).duration_ms) for e in listened]  # type: ignore[union-attr]
    weights = [decay(at - e["ts"], WEEK_S) for e in listened]
    out["completion_ratio_7d"] = (
        sum(r * w for r, w in zip(ratios, weights, strict=True)) / sum(weights)
        if listened
        else None
    )

    plays = [e for e in events if e["type"] == "play"]
    catalogued = [e for e in plays if track(e)]
    first_play: dict[str, int] = {}
    for e in catalogued:
        artist = track(e).artist_id  # type: ignore[union-attr]
        first_play[artist] = min(first_play.get(artist, e["ts"]), e["ts"])
    out["new_artist_share_7d"] = (
        sum(decay(at - ts, WEEK_S) for ts in first_play.values())
        / sum(decay(at - e["ts"], WEEK_S) for e in catalogued)
        if catalogued
        else None
    )

    artists: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    for e in events:
        t = track(e)
        weight = {"play": 1.0, "save": 2.0, "skip": 0.0}[e["type"]]
        if t and weight:
            artists[t.artist_id] += weight * decay(at - e["ts"], config.affinity_half_life_s)
            for genre in t.genres:
                genres[genre] += weight * decay(at - e["ts"], config.affinity_half_life_s)
    out["artist_affinity"], out["genre_affinity"] = dict(artists), dict(genres)
    out["artist_diversity"], out["genre_diversity"] = entropy(artists), entropy(genres)

    out["last_played_ms"] = {
        "tracks": newest(plays, lambda e: e["track_id"], config.recent_k),
        "artists": newest(catalogued, lambda e: track(e).artist_id, config.recent_k),  # type: ignore[union-attr]
    }
    out["recent_feedback"] = {
        "skipped": newest(
            [e for e in events if e["type"] == "skip"], lambda e: e["track_id"], config.feedback_k
        ),
        "liked": newest(
            [e for e in events if engagement_label(e, track(e))],
            lambda e: e["track_id"],
            config.feedback_k,
        ),
    }
    out.update(context_profile(events, at, config.context_half_life_s))
    out["session"] = session_of(events, at)
    return out


def entropy(weights: Counter[str]) -> float:
    total = sum(weights.values())
    return sum(-(w / total) * math.log2(w / total) for w in weights.values() if w) if total else 0


def newest(plays: list[Event], key_of: Any, bound: int) -> dict[str, int]:
    last: dict[str, int] = {}
    for e in plays:
        last[key_of(e)] = max(last.get(key_of(e), e["ts"]), e["ts"])
    kept = sorted(last, key=lambda k: (last[k], k), reverse=True)[:bound]
    return {k: last[k] for k in kept}


def context_profile(events: list[Event], at: int, half_life_s: float) -> dict[str, Any]:
    hours, days = [0.0] * 24, [0.0] * 7
    mixes: dict[str, Counter[str]] = {"device": Counter(), "context_type": Counter()}
    for e in events:
        weight = decay(at - e["ts"], half_life_s)
        moment = datetime.fromtimestamp(e["ts"] / 1000, UTC)
        hours[moment.hour] += weight
        days[moment.weekday()] += weight
        for name, mix in mixes.items():
            if (e.get("context") or {}).get(name):
                mix[e["context"][name]] += weight
    shares = {
        f"{name}_mix": {k: v / sum(m.values()) for k, v in m.items()} for name, m in mixes.items()
    }
    return {"hour_of_day": hours, "day_of_week": days, **shares}


def session_of(events: list[Event], at: int) -> dict[str, Any]:
    def context(e: Event, name: str) -> str:
        return (e.get("context") or {}).get(name) or ""

    # Equal times are ordered by content (a play before a skip), as documented.
    ordered = sorted(
        events,
        key=lambda e: (
            e["ts"],
            e["type"] == "skip",
            context(e, "device"),
            context(e, "context_type"),
        ),
    )
    if not ordered or at - ordered[-1]["ts"] > CONFIG.session_gap_ms:
        return {
            "active": False,
            "session_start_ms": None,
            "position": 0,
            "length_ms": 0,
            "skips_in_a_row": 0,
            "device": None,
            "context_type": None,
        }
    start = len(ordered) - 1
    while start and ordered[start]["ts"] - ordered[start - 1]["ts"] <= CONFIG.session_gap_ms:
        start -= 1
    session = ordered[start:]
    trailing = 0
    for e in reversed(session):
        if e["type"] != "skip":
            break
        trailing += 1
    return {
        "active": True,
        "session_start_ms": session[0]["ts"],
        "position": len(session),
        "length_ms": session[-1]["ts"] - session[0]["ts"],
        "skips_in_a_row": trailing,
        "device": ([context(e, "device") for e in session if context(e, "device")] or [None])[-1],
        "context_type": (
            [context(e, "context_type") for e in session if context(e, "context_type")] or [None]
        )[-1],
    }


def assert_close(actual: Any, expected: Any, path: str = "", rel: float = 1e-9) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), path
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}", rel)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]", rel)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=rel, abs=1e-12), path
    else:
        assert actual == expected, path


def comparable(features: dict[str, Any]) -> dict[str, Any]:
    """The read with the top-k lists as dicts (keys of equal weight may come in either order),
    after checking each list is sorted heaviest first."""
    out = dict(features)
    for name in ("artist_affinity", "genre_affinity"):
        weights = [w for _, w in out[name]]
        assert weights == sorted(weights, reverse=True) and len(weights) <= 10
        out[name] = dict(out[name])
    return out


def event_lists(
    steps: st.SearchStrategy[int], delays: st.SearchStrategy[int], min_size: int = 1
) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    return st.lists(
        st.tuples(
            steps,  # since the previous event
            st.sampled_from(["play", "play", "skip", "save"]),
            st.sampled_from(sorted(CATALOG)),
            st.sampled_from([0, 30_000, 100_000, 180_000, 500_000]) | st.integers(0, 300_000),
            st.sampled_from([None, "phone", "desktop"]),
            st.sampled_from([None, "playlist", "radio"]),
            delays,  # of the arrival; beyond LATENESS the event may be too late
        ),
        min_size=min_size,
        max_size=60,
    )


# Equal times, steps around the session gap, hours and days; arrival within the lateness.
STEPS = st.sampled_from([0, 1, MIN, 4 * MIN, 29 * MIN, 31 * MIN, 2 * HOUR, 20 * HOUR, 2 * DAY])
events_strategy = event_lists(STEPS | st.integers(0, 3 * HOUR), st.integers(0, LATENESS))
# Dense events arriving up to 4 lateness late: about half the examples refuse some.
dense_events_strategy = event_lists(
    st.sampled_from([0, 1, MIN, 2 * MIN]) | st.integers(0, 3 * MIN),
    st.sampled_from([0, 0, 2 * LATENESS, 4 * LATENESS]) | st.integers(0, 4 * LATENESS),
    min_size=8,
)


def build(raw: list[tuple[Any, ...]], max_delay: int = LATENESS) -> tuple[list[Event], list[Event]]:
    """Events in event-time order, and the same events in arrival order: each arrives at
    ``ts + delay`` with ``delay <= max_delay`` (so never more than max_delay behind the
    newest arrived before it)."""
    ts, events, arrivals = T0, [], []
    for i, (step, kind, track, ms_played, device, context_type, delay) in enumerate(raw):
        ts += step
        context = {k: v for k, v in (("device", device), ("context_type", context_type)) if v}
        event = {
            "event_id": f"e{i}",
            "user_id": "u1",
            "type": kind,
            "track_id": track,
            "ts": ts,
            "ms_played": ms_played,
            "context": context,
        }
        if i % 7 == 3:
            del event["context"]  # optional in the event contract
        events.append(event)
        arrivals.append(ts + min(delay, max_delay))
    order = sorted(range(len(events)), key=lambda i: (arrivals[i], i))
    return events, [events[i] for i in order]


@settings(max_examples=200, deadline=None)
@given(events_strategy, st.integers(0, 2 * HOUR))
def test_every_feature_equals_a_recomputation_for_any_arrival_within_the_lateness(
    raw: list[tuple[Any, ...]], read_after_ms: int
) -> None:
    events, arrival = build(raw)
    user = UserFeatures(CONFIG)
    for event in arrival:
        assert user.update(event, CATALOG[event["track_id"]])
    at = events[-1]["ts"] + read_after_ms
    expected = brute_force(events, at) | {"too_late_count": 0}
    assert_close(comparable(user.read(at)), expected)


@settings(max_examples=200, deadline=None)
@given(dense_events_strategy)
def test_too_late_events_are_refused_and_the_rest_equals_a_recomputation(
    raw: list[tuple[Any, ...]],
) -> None:
    events, arrival = build(raw, max_delay=4 * LATENESS)
    user = UserFeatures(CONFIG)
    accepted, newest = [], None
    for event in arrival:
        too_late = newest is not None and event["ts"] < newest - LATENESS
        assert user.update(event, CATALOG[event["track_id"]]) is not too_late
        if not too_late:
            accepted.append(event)
            newest = event["ts"] if newest is None else max(newest, event["ts"])
    at = max(e["ts"] for e in accepted)
    expected = brute_force(accepted, at) | {"too_late_count": len(events) - len(accepted)}
    assert_close(comparable(user.read(at)), expected)


@settings(max_examples=100, deadline=None)
@given(events_strategy, st.integers(0, 60), st.integers(0, 2 * HOUR))
def test_a_state_round_trip_through_json_changes_no_read(
    raw: list[tuple[Any, ...]], cut: int, read_after_ms: int
) -> None:
    events, arrival = build(raw)
    user = UserFeatures(CONFIG)
    for event in arrival[:cut]:
        user.update(event, CATALOG[event["track_id"]])
    state = orjson.loads(orjson.dumps(user.to_state()))
    restored = UserFeatures.from_state(state, CONFIG)
    assert restored.to_state() == state
    at = events[-1]["ts"] + read_after_ms
    assert restored.read(at) == user.read(at)  # bit for bit: saving rebased the live user
    for event in arrival[cut:]:  # and both go on alike
        assert user.update(event, CATALOG[event["track_id"]])
        assert restored.update(event, CATALOG[event["track_id"]])
    assert restored.read(at) == user.read(at)
    assert restored.to_state() == user.to_state()


def play(ts: int, track: str = "t1", kind: str = "play", **extra: Any) -> Event:
    return {"type": kind, "track_id": track, "ts": ts, "ms_played": 100_000, **extra}


def fold(*events: Event, config: UserFeatureConfig = CONFIG) -> UserFeatures:
    user = UserFeatures(config)
    for event in events:
        assert user.update(event, CATALOG[event["track_id"]])
    return user


def test_decayed_counts_halve_per_half_life() -> None:
    # t=0 play        t=1h play        read at t=2h
    #   weighs 1/4      weighs 1/2     -> plays_1h = 0.75; plays_1d barely moved
    user = fold(play(T0), play(T0 + HOUR))
    features = user.read(T0 + 2 * HOUR)
    assert features["plays_1h"] == pytest.approx(0.75)
    assert features["plays_1d"] == pytest.approx(2 ** (-2 / 24) + 2 ** (-1 / 24))
    assert features["skips_7d"] == features["saves_1h"] == 0.0


def test_a_new_user_reads_the_priors_and_empty_maps() -> None:
    features = UserFeatures(CONFIG).read(T0)
    assert features["skip_rate_1d"] == features["skip_rate_7d"] == CONFIG.skip_prior[0]
    assert features["save_rate_7d"] == CONFIG.save_prior[0]
    assert features["completion_ratio_7d"] is None and features["new_artist_share_7d"] is None
    assert features["artist_affinity"] == [] and features["artist_diversity"] == 0.0
    assert features["hour_of_day"] == [0.0] * 24 and features["device_mix"] == {}
    assert features["session"]["active"] is False and features["as_of_ms"] == T0
    assert (features["events_seen"], features["too_late_count"]) == (0, 0)


def test_skip_rate_counts_skips_among_plays_and_skips_with_the_prior() -> None:
    # t=0 play   t=0 skip   t=0 skip   t=0 save (not a listen)   read at t=0
    # skip_rate = (2 + 0.3 * 5) / (1 + 2 + 5);  save_rate = (1 + 0.05 * 5) / (1 + 5)
    user = fold(play(T0), play(T0, kind="skip"), play(T0, kind="skip"), play(T0, kind="save"))
    features = user.read(T0)
    assert features["skip_rate_1d"] == pytest.approx(3.5 / 8)
    assert features["save_rate_7d"] == pytest.approx(1.25 / 6)


def test_completion_ratio_averages_listens_of_tracks_with_a_known_duration() -> None:
    # t1 (200 s) played 100 s -> 0.5;  t5 (100 s) skipped after 300 s -> capped at 1;
    # t4 (duration unknown) and t9 (not in the catalog) and the save: left out
    user = fold(
        play(T0, "t1"),
        play(T0, "t5", kind="skip", ms_played=300_000),
        play(T0, "t4"),
        play(T0, "t9"),
        play(T0, "t1", kind="save", ms_played=0),
    )
    assert user.read(T0)["completion_ratio_7d"] == pytest.approx(0.75)


def test_affinity_weighs_a_save_twice_a_play_and_a_skip_not_at_all() -> None:
    user = fold(play(T0, "t1"), play(T0, "t3", kind="save"), play(T0, "t5", kind="skip"))
    features = user.read(T0)
    assert features["artist_affinity"] == [["a2", 2.0], ["a1", 1.0]]
    assert dict(features["genre_affinity"]) == {"rock": 2.0, "jazz": 1.0}
    diet = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    assert features["artist_diversity"] == pytest.approx(diet)


def test_too_late_event_is_refused_and_changes_no_feature() -> None:
    # t=0 play ......... t=10 min play ... then an event stamped t=4 min arrives
    #                      lateness 5 min: 10 - 4 = 6 min > 5 min  -> refused
    user = fold(play(T0), play(T0 + 10 * MIN))
    before_state, before = user.to_state(), user.read(T0 + 10 * MIN)
    assert user.too_late(T0 + 4 * MIN) and not user.too_late(T0 + 5 * MIN)
    assert user.update(play(T0 + 4 * MIN, "t3"), CATALOG["t3"]) is False
    after_state, after = user.to_state(), user.read(T0 + 10 * MIN)
    assert (before.pop("too_late_count"), after.pop("too_late_count")) == (0, 1)
    assert after == before
    assert after_state == {**before_state, "seen": [2, 1]}


def test_an_unknown_event_type_or_negative_ms_played_raises_and_changes_nothing() -> None:
    user = fold(play(T0))
    before = user.to_state()
    with pytest.raises(ValueError, match="type: expected one of"):
        user.update(play(T0 + MIN, kind="like"), CATALOG["t1"])
    with pytest.raises(ValueError, match="ms_played: must be >= 0"):
        user.update(play(T0 + MIN, ms_played=-1), CATALOG["t1"])
    assert user.to_state() == before


def test_late_play_of_a_known_artist_moves_the_new_artist_mark_to_itself() -> None:
    # arrival: t=4 min play a1 (new), then t=1 min play a1 (late, earlier: now the new one)
    # read at t=4 min: one "new" play, weighted at its own time t=1 min
    user = fold(play(T0 + 4 * MIN, "t1"), play(T0 + 1 * MIN, "t2"))
    week_ms = 7 * 86_400_000
    share = 2 ** (-3 * MIN / week_ms) / (1 + 2 ** (-3 * MIN / week_ms))
    assert user.read(T0 + 4 * MIN)["new_artist_share_7d"] == pytest.approx(share, rel=1e-12)


def test_new_artist_share_counts_first_plays_of_each_artist() -> None:
    # play a1, play a1, play a2, skip a3 (not a play), all at t=0 -> 2 new of 3 plays
    user = fold(play(T0, "t1"), play(T0, "t2"), play(T0, "t3"), play(T0, "t5", kind="skip"))
    assert user.read(T0)["new_artist_share_7d"] == pytest.approx(2 / 3)


def test_context_profile_is_utc_hour_and_weekday_and_shares_of_devices() -> None:
    monday = int(datetime(2026, 11, 23, 8, 30, tzinfo=UTC).timestamp() * 1000)
    user = fold(
        play(monday, context={"device": "phone", "context_type": "radio"}),
        play(monday, context={"device": "phone"}),
        play(monday, context={"device": "car", "context_type": None}),
        play(monday + 7 * DAY - 9 * HOUR, context={}),  # Sunday 23:30, a week later
    )
    features = user.read(monday + 7 * DAY - 9 * HOUR)
    old = 2 ** (-(7 * DAY - 9 * HOUR) / (28 * DAY))  # the Monday events, decayed
    hours, days = features["hour_of_day"], features["day_of_week"]
    assert hours[8] == pytest.approx(3 * old) and hours[23] == 1.0
    assert sum(hours) == pytest.approx(3 * old + 1) and len(hours) == 24
    assert days[0] == pytest.approx(3 * old) and days[6] == 1.0 and len(days) == 7
    assert features["device_mix"] == pytest.approx({"phone": 2 / 3, "car": 1 / 3})
    assert features["context_type_mix"] == {"radio": 1.0}


def test_session_is_read_at_the_read_time() -> None:
    # 0 play (phone)   2 min skip   3 min skip     read at 4 min -> position 3, 2 skips
    user = fold(
        play(T0, context={"device": "phone", "context_type": "playlist"}),
        play(T0 + 2 * MIN, kind="skip"),
        play(T0 + 3 * MIN, kind="skip"),
    )
    assert user.read(T0 + 4 * MIN)["session"] == {
        "active": True,
        "session_start_ms": T0,
        "position": 3,
        "length_ms": 3 * MIN,
        "skips_in_a_row": 2,
        "device": "phone",
        "context_type": "playlist",
    }
    assert user.read(T0 + 34 * MIN)["session"]["active"] is False


def test_last_played_keeps_the_most_recent_keys_newest_first() -> None:
    config = UserFeatureConfig(recent_k=2)
    # t1 at 0, t3 at 2 min, t5 at 1 min (late), a skip of t1 at 3 min (not a play)
    events = [play(T0, "t1"), play(T0 + 2 * MIN, "t3"), play(T0 + 1 * MIN, "t5")]
    user = fold(*events, play(T0 + 3 * MIN, "t1", kind="skip"), config=config)
    last = user.read(T0 + 3 * MIN)["last_played_ms"]
    assert list(last["tracks"].items()) == [("t3", T0 + 2 * MIN), ("t5", T0 + 1 * MIN)]
    assert list(last["artists"].items()) == [("a2", T0 + 2 * MIN), ("a3", T0 + 1 * MIN)]


@settings(max_examples=100, deadline=None)
@given(events_strategy, st.integers(1, 3))
def test_small_bounds_keep_recency_exact_whatever_the_arrival(
    raw: list[tuple[Any, ...]], recent_k: int
) -> None:
    config = UserFeatureConfig(recent_k=recent_k)
    events, arrival = build(raw)
    user = fold(*arrival, config=config)
    at = events[-1]["ts"]
    assert user.read(at)["last_played_ms"] == brute_force(events, at, config)["last_played_ms"]


def test_memory_stays_bounded_however_many_tracks_and_artists() -> None:
    rng = random.Random(1)
    user = UserFeatures(UserFeatureConfig(top_k=20, recent_k=10, max_known_artists=30))
    for i in range(3000):
        track = TrackInfo(f"t{rng.randrange(10**6)}", f"a{rng.randrange(10**5)}", ("g",), 1000)
        device = f"d{rng.randrange(100)}"
        assert user.update(play(T0 + i * 1000, track.track_id, context={"device": device}), track)
    assert len(user.artists) <= 20 and len(user.first_play_ms) <= 30
    assert len(user.track_last_ms) <= 10 and len(user.artist_last_ms) <= 10
    assert len(user.devices) <= 8 and len(user.session) <= CONFIG.session_max_events
    assert len(orjson.dumps(user.to_state())) < 10_000


def test_the_default_state_stays_small_for_a_heavy_listener() -> None:
    rng = random.Random(2)
    user = UserFeatures(CONFIG)
    for i in range(5000):
        track = TrackInfo(f"t{rng.randrange(10**4)}", f"a{rng.randrange(300)}", ("g", "h"), 1000)
        user.update(play(T0 + i * 60_000, track.track_id, context={"device": "phone"}), track)
    size = len(orjson.dumps(user.to_state()))
    assert size < 4_500, size  # 256 artists known, of the 300 heard; all 24 hours of the day


def test_the_state_is_compact_and_restores_under_a_changed_config() -> None:
    user = fold(*(play(T0 + i * MIN, t) for i, t in enumerate(["t1", "t3", "t5", "t1"])))
    state = orjson.loads(orjson.dumps(user.to_state()))
    assert "half_life_s" not in orjson.dumps(state).decode()  # the config's, not stored
    assert set(state["counts"]) == {"1h", "1d", "7d"}  # horizons, each plays, skips, saves
    assert unpack_floats(state["counts"]["7d"])[1:] == [0.0, 0.0]
    smaller = UserFeatureConfig(
        horizons=(("1d", 86_400.0), ("7d", WEEK_S)),
        top_k=1,
        recent_k=1,
        session_gap_ms=MIN // 2,
        lateness_ms=0,
        session_max_events=2,
    )
    features = UserFeatures.from_state(state, smaller).read(T0 + 3 * MIN)
    assert "plays_1h" not in features and features["plays_1d"] > 0
    assert features["session"]["position"] == 1  # a minute apart: sessions of one, now
    assert [k for k, _ in features["artist_affinity"]] == ["a1"]
    assert list(features["last_played_ms"]["tracks"]) == ["t1"]


def test_state_of_another_version_or_missing_a_field_is_refused() -> None:
    state = UserFeatures(CONFIG).to_state()
    with pytest.raises(ValueError, match="UserFeatures state has version 99"):
        UserFeatures.from_state({**state, "v": 99}, CONFIG)
    with pytest.raises(ValueError, match="lacks field 'session'"):
        UserFeatures.from_state({k: v for k, v in state.items() if k != "session"}, CONFIG)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"horizons": (("1h", 3600.0),)}, "including '7d'"),
        ({"horizons": (("7d", 1.0), ("7d", 2.0))}, "distinct names"),
        ({"rate_horizons": ("1w",)}, "rate_horizons"),
        ({"lateness_ms": 1_800_000}, "lateness_ms must be >= 0 and below session_gap_ms"),
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"skip_prior": (1.5, 5.0)}, "skip_prior must be"),
        ({"save_prior": (0.1, 0.0)}, "save_prior must be"),
    ],
)
def test_a_bad_config_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UserFeatureConfig(**change)
