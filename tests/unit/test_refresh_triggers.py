"""When a user's list goes out at once (a save, a skip streak, a new device or context
type within the session) and when it waits for the throttle."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from features import TrackInfo
from features.session import NO_SESSION, SessionFeatures, SessionTracker
from online_models.trending import TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline.ingest import Source
from streams.pipeline.message import Effects, MessagePlanner
from streams.pipeline.refresh import IMMEDIATE_REASONS, RefreshThrottle, immediate_reason
from tests.factories import NOW_MS, make_event, planner_config

MINUTE = 60_000
STREAK = 3
MOBILE = {"device": "mobile", "context_type": "playlist"}
CATALOG = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 3}", ("pop",), 200_000) for i in range(12)}


def session_after(
    *events: tuple[str, dict[str, Any]], gap_ms: int = 30 * MINUTE
) -> SessionFeatures:
    """The running session, read just before the next event (a minute after the last),
    of ``(type, context)`` events a minute apart."""
    tracker = SessionTracker(gap_ms=gap_ms)
    for n, (kind, context) in enumerate(events):
        tracker.update(n * MINUTE, kind, context)
    return tracker.read(len(events) * MINUTE)


def event(kind: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "track_id": "t1", "context": MOBILE if context is None else context}


# --- immediate_reason ----------------------------------------------------------------


def test_a_save_refreshes_at_once_even_outside_a_session() -> None:
    assert immediate_reason(event("save"), NO_SESSION, STREAK) == "save"
    assert immediate_reason(event("save"), session_after(("play", MOBILE)), STREAK) == "save"


@pytest.mark.parametrize("streak", [1, 2, 3, 5])
def test_the_nth_skip_in_a_row_refreshes_at_once_and_the_one_before_does_not(streak: int) -> None:
    before_nth = session_after(("play", MOBILE), *[("skip", MOBILE)] * (streak - 1))
    assert before_nth.skips_in_a_row == streak - 1
    assert immediate_reason(event("skip"), before_nth, streak) == "skip_streak"
    if streak > 1:
        before_previous = session_after(("play", MOBILE), *[("skip", MOBILE)] * (streak - 2))
        assert immediate_reason(event("skip"), before_previous, streak) is None


def test_a_play_between_skips_breaks_the_streak() -> None:
    session = session_after(("skip", MOBILE), ("skip", MOBILE), ("play", MOBILE))
    assert immediate_reason(event("skip"), session, STREAK) is None


def test_a_new_device_within_a_running_session_refreshes_at_once() -> None:
    session = session_after(("play", MOBILE), ("play", MOBILE))
    speaker = {**MOBILE, "device": "speaker"}
    assert immediate_reason(event("play", speaker), session, STREAK) == "context_change"


def test_a_new_context_type_within_a_running_session_refreshes_at_once() -> None:
    session = session_after(("play", MOBILE))
    radio = {**MOBILE, "context_type": "radio"}
    assert immediate_reason(event("play", radio), session, STREAK) == "context_change"


def test_naming_a_device_for_the_first_time_is_no_change() -> None:
    session = session_after(("play", {}), ("play", {}))
    assert session.active and session.device is None
    assert immediate_reason(event("play", MOBILE), session, STREAK) is None


def test_a_context_that_names_nothing_or_the_same_is_no_change() -> None:
    session = session_after(("play", MOBILE))
    for context in ({}, MOBILE, {"device": "", "context_type": None}):
        assert immediate_reason(event("play", context), session, STREAK) is None
    assert immediate_reason({"type": "play", "track_id": "t1"}, session, STREAK) is None


def test_a_new_device_after_the_session_ended_is_no_change() -> None:
    ended = session_after(("play", MOBILE), gap_ms=MINUTE // 2)
    assert not ended.active
    speaker = {**MOBILE, "device": "speaker"}
    assert immediate_reason(event("play", speaker), ended, STREAK) is None


def test_an_ordinary_play_is_debounced() -> None:
    assert immediate_reason(event("play"), session_after(("play", MOBILE)), STREAK) is None
    assert immediate_reason(event("play"), NO_SESSION, STREAK) is None


# --- through the planner ------------------------------------------------------------------


class Listener:
    """One user's messages through a planner with an hour-long throttle and a fixed
    clock: each message's effects are applied (the state kept, the throttle told)."""

    def __init__(self, interval_s: float = 3600.0) -> None:
        self.planner = MessagePlanner(
            planner_config(refresh_skip_streak=STREAK),
            EventDecoder(now_ms=lambda: NOW_MS),
            TrendingBoard(),
            RefreshThrottle(interval_s=interval_s),
            track_of=CATALOG.get,
            now_ms=lambda: NOW_MS,
            now_s=lambda: 0.0,
        )
        self.state: bytes | None = None
        self.offset = 0
        self.ts = NOW_MS - 30 * MINUTE

    def send(self, kind: str, track_id: str = "t1", **context: str) -> Effects:
        self.ts += MINUTE
        self.offset += 1
        sent = make_event(
            type=kind,
            track_id=track_id,
            ts=self.ts,
            ms_played=0 if kind == "save" else 180_000,
            context={**MOBILE, **context},
        )
        effects = self.planner.plan(
            b"u1", orjson.dumps([sent]), Source("listening-events", 0, self.offset), self.state
        )
        assert effects.state is not None, effects.outcome
        self.state = effects.state
        self.planner.applied(b"u1", effects)
        return effects


def triggers(*effects: Effects) -> list[str | None]:
    return [e.trigger for e in effects]


def test_within_the_interval_a_play_gets_no_list_but_a_save_does() -> None:
    user = Listener()
    first, second, saved, third = (
        user.send("play"),
        user.send("play", "t2"),
        user.send("save", "t3"),
        user.send("play", "t4"),
    )
    assert triggers(first, second, saved, third) == ["debounced", None, "save", None]
    assert first.recommendation is not None and saved.recommendation is not None
    assert second.recommendation is None and third.recommendation is None
    assert [o.topic for o in second.outputs].count("recs") == 0
    assert [o.topic for o in saved.outputs].count("recs") == 1


def test_a_skip_streak_gets_a_list_within_the_interval() -> None:
    user = Listener()
    user.send("play")
    skips = [user.send("skip", f"t{i}") for i in range(2, 2 + STREAK)]
    assert triggers(*skips) == [None] * (STREAK - 1) + ["skip_streak"]
    assert skips[-1].recommendation is not None


def test_a_device_or_context_type_change_gets_a_list_within_the_interval() -> None:
    user = Listener()
    user.send("play")
    same = user.send("play", "t2")
    speaker = user.send("play", "t3", device="speaker")
    radio = user.send("play", "t4", device="speaker", context_type="radio")
    assert triggers(same, speaker, radio) == [None, "context_change", "context_change"]


def test_once_the_interval_has_passed_a_play_gets_a_list_again() -> None:
    user = Listener(interval_s=0.0)
    assert triggers(user.send("play"), user.send("play", "t2")) == ["debounced", "debounced"]


def test_every_immediate_trigger_is_a_named_reason() -> None:
    assert set(IMMEDIATE_REASONS) == {"save", "skip_streak", "context_change"}
