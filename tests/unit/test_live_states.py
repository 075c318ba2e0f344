"""Decoded states kept in memory always equal what the table (and so the changelog) holds.

A worker with a cache and one that rebuilds every state from the table must
write the same stored states, message after message, whatever the messages:
good ones, duplicates, refused ones, ones whose planning fails half-way, and a
rebalance (the cache cleared) in between.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.pipeline.ingest import Source
from streams.pipeline.message import MessagePlanner
from streams.state.codec import decode_state
from streams.state.keyed_state import UserState
from streams.state.live import LiveStates
from tests.factories import NOW_MS, make_event
from tests.unit.test_message import planner

USERS = [b"u1", b"u2", b"u3"]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(["play", "skip", "save", "dup", "bad", "fail", "rebalance"]),
        st.integers(min_value=0, max_value=4),
    ),
    min_size=1,
    max_size=40,
)


class Injected(RuntimeError):
    pass


def run(steps: list[tuple[bytes, str, int]], cached: bool, monkeypatch: Any) -> dict[bytes, Any]:
    """Each user's stored state (decoded) after ``steps``."""
    p: MessagePlanner = planner()
    live: LiveStates[UserState] = LiveStates(capacity=2)
    table: dict[bytes, bytes] = {}
    for offset, (user, kind, track) in enumerate(steps):
        if kind == "rebalance":
            live.clear()
            continue
        event = make_event(
            user_id=user.decode(),
            event_id="same" if kind == "dup" else f"e{offset}",
            track_id=f"t{track}",
            type="pause" if kind == "bad" else ("play" if kind in ("dup", "fail") else kind),
            ts=NOW_MS - 60_000 + offset * 1_000,
        )
        value = orjson.dumps([event, make_event(user_id=user.decode(), event_id=f"x{offset}")])
        source = Source("events", 0, offset)
        with monkeypatch.context() as patch:
            if kind == "fail":  # fails after the state was changed, before the plan is done
                patch.setattr(UserState, "to_state", _raise)
            try:
                if cached:
                    effects = p.plan_with_live_state(user, value, source, live, table.get)
                else:
                    effects = p.plan(user, value, source, table.get(user))
            except Injected:
                continue
        if effects.state is not None:
            table[user] = effects.state  # bytes, as the changelog holds them
        p.applied(user, effects)
    return {user: decode_state(stored) for user, stored in table.items()}


def _raise(self: UserState) -> dict[str, Any]:
    raise Injected("to_state failed")


@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
def test_cached_states_write_exactly_what_rebuilt_states_write(steps: list[Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run(steps, cached=True, monkeypatch=monkeypatch) == run(
            steps, cached=False, monkeypatch=monkeypatch
        )


def test_a_cached_state_equals_the_state_restored_from_the_table() -> None:
    p = planner()
    live: LiveStates[UserState] = LiveStates()
    table: dict[bytes, Any] = {}
    for i in range(20):
        value = orjson.dumps(make_event(user_id="u1", event_id=f"e{i}", track_id=f"t{i % 3}"))
        effects = p.plan_with_live_state(b"u1", value, Source("e", 0, i), live, table.get)
        table[b"u1"] = effects.state
    held = live.get(b"u1")
    assert held is not None and live.hits >= 19
    assert held.to_state() == UserState.from_state(decode_state(table[b"u1"])).to_state()
