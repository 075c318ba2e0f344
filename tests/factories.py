"""Shared fixtures: a valid event factory and a fixed clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from streams.pipeline.message import PlannerConfig

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_ids = itertools.count()


def planner_config(**overrides: Any) -> PlannerConfig:
    """The planner configuration unit tests share: short topic names, ``overrides`` on top."""
    topics = {
        "clean_topic": "clean",
        "dlq_topic": "dlq",
        "recommendations_topic": "recs",
    }
    return PlannerConfig(**{**topics, **overrides})


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid listening event; ``overrides`` change or (with None) remove fields."""
    event: dict[str, Any] = {
        "event_id": f"e{next(_ids)}",
        "user_id": "u1",
        "track_id": "t1",
        "type": "play",
        "ts": NOW_MS - 1000,
        "ms_played": 180_000,
        "session_id": "s1",
        "context": {"device": "mobile", "context_type": "playlist", "hour": 8},
    }
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


@pytest.fixture
def event_factory() -> Callable[..., dict[str, Any]]:
    return make_event
