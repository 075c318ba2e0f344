"""The stored state of a typical active user: small, and restored exactly.

A typical active user is a simulated listener after 1,000 events, each folded
as the worker folds it (:func:`streams.pipeline.ingest.ingest_message`, one
message per event, at the offset it would have in a partition shared with the
other users). ``benchmarks/features.py`` measures the same state.

The budget per part. The dedupe memory holds 256 fingerprints of 64 bits: 2,048
bytes of hash, 2,731 characters of base64, plus 1 or 2 bytes of offset per id
(one message per event). The features and the recently heard tracks take about
as much again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from features import TrackInfo, UserFeatures
from streams.contracts.events import EventDecoder
from streams.pipeline.ingest import ingest_message
from streams.state.keyed_state import UserState
from streams.tools.simulator import Population, PopulationConfig

EVENTS_PER_USER = 1_000
DEDUPE_CAPACITY = 256  # the settings' default (dedupe_ids_per_user)
#: Bytes of JSON, per part of the state and in all.
DEDUPE_BUDGET = (8 + 2) * DEDUPE_CAPACITY * 4 // 3 + 50
FEATURES_BUDGET = 4_000
TOTAL_BUDGET = 7_500


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))


@pytest.fixture(scope="module")
def typical_user() -> UserState:
    population = Population(PopulationConfig(seed=3, n_users=20, n_tracks=5000, n_artists=800))
    catalog = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in population.tracks}
    events = population.take(25 * EVENTS_PER_USER)
    busiest, _ = Counter(e["user_id"] for e in events).most_common(1)[0]
    last_ts = events[-1]["ts"]
    decoder = EventDecoder(now_ms=lambda: last_ts)
    state = UserState.empty(DEDUPE_CAPACITY)
    theirs = [(offset, e) for offset, e in enumerate(events) if e["user_id"] == busiest]
    for offset, event in theirs[:EVENTS_PER_USER]:
        outcome = ingest_message(
            decoder, state, busiest.encode(), orjson.dumps(event), offset, catalog.get
        )
        assert outcome.folded == [event]
    assert state.features.events_seen == EVENTS_PER_USER
    return state


def test_the_state_of_a_typical_active_user_stays_within_its_budget(
    typical_user: UserState,
) -> None:
    state = typical_user.to_state()
    sizes = {part: json_size(value) for part, value in state.items()}
    assert sizes["seen"] <= DEDUPE_BUDGET, sizes
    assert sizes["features"] + sizes["recent"] <= FEATURES_BUDGET, sizes
    assert json_size(state) <= TOTAL_BUDGET, sizes


def test_the_state_of_a_typical_active_user_restores_exactly(typical_user: UserState) -> None:
    saved = orjson.loads(orjson.dumps(typical_user.to_state()))  # as the changelog holds it
    restored = UserState.from_state(saved, DEDUPE_CAPACITY)
    assert restored.to_state() == saved
    at = typical_user.features.latest_ts_ms
    for read_at in (at, at + 3_600_000, at + 30 * 86_400_000):
        assert restored.features.read(read_at) == typical_user.features.read(read_at)
    assert restored.recent_tracks == typical_user.recent_tracks


def test_a_restored_user_goes_on_exactly_like_the_live_one(typical_user: UserState) -> None:
    # The features a restored state reads after more events equal the live state's.
    live = UserFeatures.from_state(typical_user.features.to_state())
    restored = UserFeatures.from_state(orjson.loads(orjson.dumps(live.to_state())))
    at = live.latest_ts_ms
    for step, kind in enumerate(["play", "skip", "save"], 1):
        event = {"type": kind, "track_id": "t00001", "ts": at + step * 1000, "ms_played": 9}
        assert live.update(event, None) and restored.update(event, None)
    assert restored.read(at + 5000) == live.read(at + 5000)
