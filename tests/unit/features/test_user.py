"""UserFeatures against a brute-force recomputation from the raw events.

The recomputation below is deliberately naive (sums over the whole event list,
sorting, no state), so the two can only agree if the incremental code is right.
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

T0 = 1_700_000_000_000
HOUR = 3_600_000
CONFIG = UserFeatureConfig()
CATALOG = {
    "t1": TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000),
    "t2": TrackInfo("t2", "a1", ("jazz", "soul"), duration_ms=180_000),
    "t3": TrackInfo("t3", "a2", ("rock",), duration_ms=240_000),
    "t4": TrackInfo("t4", "a3", ("rock", "pop"), duration_ms=None),
    "t5": TrackInfo("t5", "a3", (), duration_ms=100_000),
}
HALF_LIVES = dict(CONFIG.horizons)


def decay(age_ms: float, half_life_s: float) -> float:
    return 0.5 ** (age_ms / (half_life_s * 1000.0))


def brute_force(events: list[dict[str, Any]], at: int) -> dict[str, Any]:
    """Every feature from the whole event list, the slow obvious way."""
    week = HALF_LIVES["7d"]
    out: dict[str, Any] = {}
    for kind in ("play", "skip", "save"):
        for name, half_life in HALF_LIVES.items():
            out[f"{kind}s_{name}"] = sum(
                decay(at - e["ts"], half_life) for e in events if e["type"] == kind
            )
    r, w = CONFIG.skip_prior
    for name in CONFIG.rate_horizons:
        plays, skips = out[f"plays_{name}"], out[f"skips_{name}"]
        out[f"skip_rate_{name}"] = (skips + r * w) / (plays + skips + w)
    r, w = CONFIG.save_prior
    out["save_rate_7d"] = (out["saves_7d"] + r * w) / (out["plays_7d"] + w)
    listened = [e for e in events if e["type"] != "save" and CATALOG[e["track_id"]].duration_ms]
    n = sum(decay(at - e["ts"], week) for e in listened)
    out["completion_ratio_7d"] = (
        sum(
            decay(at - e["ts"], week)
            * min(1.0, e["ms_played"] / CATALOG[e["track_id"]].duration_ms)
            for e in listened
        )
        / n
        if n
        else None
    )
    plays = [e for e in events if e["type"] == "play"]
    first_play = {}
    for e in sorted(plays, key=lambda e: e["ts"]):
        first_play.setdefault(CATALOG[e["track_id"]].artist_id, e["ts"])
    total = sum(decay(at - e["ts"], week) for e in plays)
    out["new_artist_share_7d"] = (
        sum(decay(at - ts, week) for ts in first_play.values()) / total if plays else None
    )
    artists: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    for e in events:
        weight = {"play": 1.0, "save": 2.0, "skip": 0.0}[e["type"]] * decay(at - e["ts"], week)
        if weight:
            track = CATALOG[e["track_id"]]
            artists[track.artist_id] += weight
            for genre in track.genres:
                genres[genre] += weight
    out["artist_affinity"], out["genre_affinity"] = dict(artists), dict(genres)
    out["artist_diversity"], out["genre_diversity"] = entropy(artists), entropy(genres)
    out["last_played_ms"] = {
        "tracks": {
            t: max(e["ts"] for e in plays if e["track_id"] == t)
            for t in {e["track_id"] for e in plays}
        },
        "artists": first_last(plays),
    }
    out["context"] = context_shares(events, at)
    out["session"] = session_of(events, at)
    return out


def entropy(weights: Counter[str]) -> float:
    total = sum(weights.values())
    return sum(-(w / total) * math.log2(w / total) for w in weights.values() if w) if total else 0


def first_last(plays: list[dict[str, Any]]) -> dict[str, int]:
    last: dict[str, int] = {}
    for e in plays:
        artist = CATALOG[e["track_id"]].artist_id
        last[artist] = max(last.get(artist, e["ts"]), e["ts"])
    return last


def context_shares(events: list[dict[str, Any]], at: int) -> dict[str, dict[str, float]]:
    half_life = 28 * 86_400.0
    maps: dict[str, Counter[str]] = {
        n: Counter() for n in ("hour_of_day", "day_of_week", "device", "context_type")
    }
    for e in events:
        weight = decay(at - e["ts"], half_life)
        moment = datetime.fromtimestamp(e["ts"] / 1000, UTC)
        maps["hour_of_day"][str(moment.hour)] += weight
        maps["day_of_week"][str(moment.weekday())] += weight
        for name in ("device", "context_type"):
            if e["context"].get(name):
                maps[name][e["context"][name]] += weight
    return {
        name: {k: v / sum(m.values()) for k, v in m.items()} if m else {}
        for name, m in maps.items()
    }


def session_of(events: list[dict[str, Any]], at: int) -> dict[str, Any]:
    # Equal times are ordered by content, as the tracker does: arrival must not matter.
    ordered = sorted(
        events,
        key=lambda e: (
            e["ts"],
            e["type"] == "skip",
            e["context"].get("device", ""),
            e["context"].get("context_type", ""),
        ),
    )
    if not ordered or at - ordered[-1]["ts"] > CONFIG.session_gap_ms:
        return {
            "active": False,
            "start_ms": None,
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
    latest = {
        name: next((e["context"][name] for e in reversed(session) if e["context"].get(name)), None)
        for name in ("device", "context_type")
    }
    return {
        "active": True,
        "start_ms": session[0]["ts"],
        "position": len(session),
        "length_ms": session[-1]["ts"] - session[0]["ts"],
        "skips_in_a_row": trailing,
        **latest,
    }


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected), path
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert actual == expected, path


def comparable(features: dict[str, Any]) -> dict[str, Any]:
    """The read, with the top-k lists as dicts (ties may order either way)."""
    out = {k: v for k, v in features.items() if k not in ("as_of_ms", "events_seen")}
    out["artist_affinity"] = dict(out["artist_affinity"])
    out["genre_affinity"] = dict(out["genre_affinity"])
    return out


events_strategy = st.lists(
    st.tuples(
        st.integers(0, 3 * HOUR),  # gap since the previous event
        st.sampled_from(["play", "play", "skip", "save"]),
        st.sampled_from(sorted(CATALOG)),
        st.integers(0, 300_000),
        st.sampled_from([None, "phone", "desktop"]),
        st.sampled_from([None, "playlist", "radio"]),
        st.integers(0, CONFIG.lateness_ms),  # arrival jitter
    ),
    min_size=1,
    max_size=60,
)


def build(raw: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events in event-time order, and the same events in a late-but-allowed arrival order."""
    ts, events, keys = T0, [], []
    for i, (gap, kind, track, ms_played, device, context_type, jitter) in enumerate(raw):
        ts += gap
        context = {k: v for k, v in (("device", device), ("context_type", context_type)) if v}
        events.append(
            {
                "event_id": f"e{i}",
                "type": kind,
                "track_id": track,
                "ts": ts,
                "ms_played": ms_played,
                "context": context,
            }
        )
        keys.append(ts + jitter)  # arriving at ts + jitter: never more than lateness behind
    arrival = [e for _, e in sorted(zip(keys, events, strict=True), key=lambda p: p[0])]
    return events, arrival


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.integers(0, 2 * HOUR))
def test_every_feature_equals_a_recomputation_from_the_raw_events(
    raw: list[tuple[Any, ...]], read_after_ms: int
) -> None:
    events, arrival = build(raw)
    user = UserFeatures(CONFIG)
    for event in arrival:
        assert user.update(event, CATALOG[event["track_id"]])
    at = events[-1]["ts"] + read_after_ms
    assert_close(comparable(user.read(at)), brute_force(events, at))


@settings(max_examples=50, deadline=None)
@given(events_strategy)
def test_state_round_trip_through_json_reads_the_same(raw: list[tuple[Any, ...]]) -> None:
    events, arrival = build(raw)
    user = UserFeatures(CONFIG)
    for event in arrival[: len(arrival) // 2]:
        user.update(event, CATALOG[event["track_id"]])
    restored = UserFeatures.from_state(orjson.loads(orjson.dumps(user.to_state())), CONFIG)
    for event in arrival[len(arrival) // 2 :]:
        user.update(event, CATALOG[event["track_id"]])
        restored.update(event, CATALOG[event["track_id"]])
    at = events[-1]["ts"]
    assert_close(comparable(restored.read(at)), comparable(user.read(at)))


def play(ts: int, track: str = "t1", kind: str = "play", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "track_id": track, "ts": ts, "ms_played": 100_000, "context": {}, **extra}


def test_decayed_counts_halve_per_half_life() -> None:
    # t=0 play        t=1h play        read at t=2h
    #   weight 1/4      weight 1/2     -> plays_1h = 0.75; plays_1d barely moved
    user = UserFeatures(CONFIG)
    user.update(play(T0), CATALOG["t1"])
    user.update(play(T0 + HOUR), CATALOG["t1"])
    features = user.read(T0 + 2 * HOUR)
    assert features["plays_1h"] == pytest.approx(0.75)
    assert features["plays_1d"] == pytest.approx(2 ** (-2 / 24) + 2 ** (-1 / 24))


def test_a_new_user_reads_the_prior_rates_not_zero_or_one() -> None:
    features = UserFeatures(CONFIG).read(T0)
    assert features["skip_rate_1d"] == CONFIG.skip_prior[0]
    assert features["save_rate_7d"] == CONFIG.save_prior[0]
    assert features["completion_ratio_7d"] is None and features["new_artist_share_7d"] is None


def test_too_late_event_is_refused_and_changes_nothing() -> None:
    # t=0 play ......... t=10 min play ... then an event stamped t=4 min arrives
    #                      lateness 5 min: 10 - 4 = 6 min > 5 min  -> refused
    user = UserFeatures(CONFIG)
    user.update(play(T0), CATALOG["t1"])
    user.update(play(T0 + 600_000), CATALOG["t1"])
    before = user.to_state()
    assert user.too_late(T0 + 240_000)
    assert user.update(play(T0 + 240_000, "t3"), CATALOG["t3"]) is False
    assert user.to_state() == before


def test_late_play_of_a_known_artist_moves_the_new_artist_mark_to_itself() -> None:
    # arrival: t=4 min play a1 (new), then t=1 min play a1 (late, earlier: now the new one)
    # read at t=4 min: one "new" play, weighted at its own time t=1 min
    user = UserFeatures(CONFIG)
    user.update(play(T0 + 240_000), CATALOG["t1"])
    user.update(play(T0 + 60_000, "t2"), CATALOG["t2"])
    week_ms = 7 * 86_400_000
    share = 2 ** (-180_000 / week_ms) / (1 + 2 ** (-180_000 / week_ms))
    assert user.read(T0 + 240_000)["new_artist_share_7d"] == pytest.approx(share)


def test_context_profile_shares_hour_day_and_device() -> None:
    user = UserFeatures(CONFIG)
    moment = int(datetime(2026, 11, 23, 8, 30, tzinfo=UTC).timestamp() * 1000)  # a Monday
    user.update(play(moment, context={"device": "phone", "context_type": "radio"}), None)
    context = user.read(moment)["context"]
    assert context["hour_of_day"] == {"8": 1.0} and context["day_of_week"] == {"0": 1.0}
    assert context["device"] == {"phone": 1.0} and context["context_type"] == {"radio": 1.0}


def test_memory_stays_bounded_however_many_tracks_and_artists() -> None:
    rng = random.Random(1)
    user = UserFeatures(UserFeatureConfig(top_k=20, recent_k=10, max_known_artists=30))
    for i in range(3000):
        track = TrackInfo(f"t{rng.randrange(10**6)}", f"a{rng.randrange(10**5)}", ("g",), 1000)
        user.update(play(T0 + i * 1000, track.track_id), track)
    assert len(user.artists) <= 20 and len(user.first_play_ms) <= 30
    assert len(user.track_last_ms) <= 10 and len(user.artist_last_ms) <= 10
    assert len(orjson.dumps(user.to_state())) < 16_000


def test_state_of_another_version_is_refused() -> None:
    state = UserFeatures(CONFIG).to_state()
    with pytest.raises(ValueError, match="version"):
        UserFeatures.from_state({**state, "v": 99}, CONFIG)
