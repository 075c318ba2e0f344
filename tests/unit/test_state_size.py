"""The stored state of a typical active user: small, and restored exactly.

A typical active user is a simulated heavy listener after 1,000 events over
weeks, each ingested as the worker ingests it (:mod:`streams.tools.state_size`).
Its budget is 2 KB as the changelog stores it (deflated JSON). The squeezed
user sends the same events within minutes, so every id is within the lateness
and the dedupe memory is full: 256 fingerprints of 8 bytes, about 15 characters
each with their offset and time (under 17), which deflate cannot shrink (they are random).
"""

from __future__ import annotations

import orjson
import pytest

from features import UserFeatures
from streams.state.codec import decode_state, encode_state
from streams.state.keyed_state import UserState
from streams.tools.state_size import stored_bytes, typical_user

TYPICAL_BUDGET = 2_048
DEDUPE_CAPACITY = 256  # the settings' default (dedupe_ids_per_user)


@pytest.fixture(scope="module")
def typical() -> UserState:
    state = typical_user()
    assert state.features.events_seen == 1_000
    return state


@pytest.fixture(scope="module")
def squeezed() -> UserState:
    return typical_user(clock="stream")


def test_a_typical_active_user_is_stored_in_at_most_2_kb(typical: UserState) -> None:
    assert stored_bytes(typical) <= TYPICAL_BUDGET


def test_a_typical_user_keeps_only_the_ids_within_the_lateness(typical: UserState) -> None:
    lateness = typical.features.config.lateness_ms
    horizon = typical.features.latest_ts_ms - lateness
    assert 0 < len(typical.seen) < 20
    assert all(ts >= horizon for _, ts in typical.seen._seen.values())


def test_a_user_with_the_dedupe_memory_full_stays_within_its_bound(squeezed: UserState) -> None:
    assert len(squeezed.seen) == DEDUPE_CAPACITY
    seen_bytes = len(orjson.dumps(squeezed.to_state()["seen"]))
    assert seen_bytes <= 17 * DEDUPE_CAPACITY
    assert stored_bytes(squeezed) <= seen_bytes + TYPICAL_BUDGET


@pytest.mark.parametrize("which", ["typical", "squeezed"])
def test_a_stored_user_restores_exactly(which: str, request: pytest.FixtureRequest) -> None:
    state: UserState = request.getfixturevalue(which)
    saved = decode_state(encode_state(state.to_state()))  # as the changelog holds it
    restored = UserState.from_state(saved, DEDUPE_CAPACITY)
    assert restored.to_state() == saved
    at = state.features.latest_ts_ms
    for read_at in (at, at + 3_600_000, at + 30 * 86_400_000):
        assert restored.features.read(read_at) == state.features.read(read_at)
    assert restored.recent_tracks == state.recent_tracks
    assert restored.seen.last_position == state.seen.last_position


def test_a_restored_user_goes_on_exactly_like_the_live_one(typical: UserState) -> None:
    # The features a restored state reads after more events equal the live state's.
    live = UserFeatures.from_state(typical.features.to_state())
    restored = UserFeatures.from_state(orjson.loads(orjson.dumps(live.to_state())))
    at = live.latest_ts_ms
    for step, kind in enumerate(["play", "skip", "save"], 1):
        event = {"type": kind, "track_id": "t00001", "ts": at + step * 1000, "ms_played": 9}
        assert live.update(event, None) and restored.update(event, None)
    assert restored.read(at + 5000) == live.read(at + 5000)
