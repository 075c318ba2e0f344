"""Checks every stateful feature passes, generated over all of them (River's ``checks`` idea).

A new stat joins by adding a factory to STATS (or KEYED for keyed maps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import features
from features import (
    STATE_VERSION,
    DecayedCounter,
    DecayedRate,
    DecayedSum,
    DecayedTopK,
    RollingStat,
    SlidingWindowSum,
)
from features.base import (
    pack_floats,
    pack_unsigned,
    read_state,
    unpack_floats,
    unpack_unsigned,
    versioned_state,
)

T0 = 1_700_000_000_000

STATS: dict[str, Callable[[], Any]] = {
    "DecayedSum": lambda: DecayedSum(half_life_s=60.0),
    "DecayedCounter": lambda: DecayedCounter(half_life_s=3600),
    "DecayedRate": lambda: DecayedRate(half_life_s=86_400.0, prior_rate=0.25, prior_weight=3.0),
    "SlidingWindowSum": lambda: SlidingWindowSum(window_ms=60_000, lateness_ms=5_000),
    "SlidingWindowSum-capped": lambda: SlidingWindowSum(window_ms=60_000, max_items=3),
}
KEYED: dict[str, Callable[[], Any]] = {
    "DecayedTopK": lambda: DecayedTopK(half_life_s=3600.0, k=3),
}
EMPTY_READ = {"DecayedRate": 0.25}

every_stat = pytest.mark.parametrize("name", sorted(STATS))
every_state = pytest.mark.parametrize("name", sorted(STATS | KEYED))


def fed(name: str) -> Any:
    """A stat after a few in-order and late events."""
    stat = (STATS | KEYED)[name]()
    for i, ts in enumerate([T0, T0 + 30_000, T0 + 10_000, T0 + 90_000, T0 + 88_000]):
        if name in KEYED:
            stat.update(ts, f"key-{i % 4}", 1.0 + i)
        else:
            stat.update(ts, 1.0 if i % 2 else 0.5)
    return stat


def assert_json_safe(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_json_safe(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_safe(item)
    else:
        assert type(value) in (str, int, float), value


@every_stat
def test_stat_follows_the_rolling_stat_protocol(name: str) -> None:
    stat = STATS[name]()
    assert isinstance(stat, RollingStat)
    assert stat.update(T0, 1.0) is True


@every_stat
def test_empty_stat_reads_its_neutral_value(name: str) -> None:
    assert STATS[name]().read(T0) == pytest.approx(EMPTY_READ.get(name, 0.0))


@every_state
@pytest.mark.parametrize("feed", [False, True], ids=["empty", "fed"])
def test_state_is_compact_json_and_round_trips_to_an_equal_reading(name: str, feed: bool) -> None:
    stat = fed(name) if feed else (STATS | KEYED)[name]()
    state = stat.to_state()
    assert state["v"] == STATE_VERSION
    assert_json_safe(state)
    restored = type(stat).from_state(orjson.loads(orjson.dumps(state)))
    assert restored.to_state() == state
    for t in (T0 - 1_000, T0 + 90_000, T0 + 200_000):
        assert restored.read(t) == pytest.approx(stat.read(t), rel=1e-12)


@every_state
@pytest.mark.parametrize("version", [None, 0, 2, "1", True, 1.0])
def test_state_of_an_unknown_version_is_refused_with_value_error(name: str, version: Any) -> None:
    stat = fed(name)
    state = stat.to_state()
    if version is None:
        del state["v"]
    else:
        state["v"] = version
    with pytest.raises(ValueError, match=f"{type(stat).__name__} state has version"):
        type(stat).from_state(state)


@every_state
def test_state_missing_a_field_is_refused_with_value_error(name: str) -> None:
    stat = (STATS | KEYED)[name]()
    with pytest.raises(ValueError, match="lacks field"):
        type(stat).from_state({"v": STATE_VERSION})


@every_state
def test_repr_shows_the_whole_configuration(name: str) -> None:
    stat = (STATS | KEYED)[name]()
    rebuilt = eval(repr(stat), vars(features))  # hyperparameters only live in __init__
    assert repr(rebuilt) == repr(stat)
    assert rebuilt.to_state() == stat.to_state()


def test_package_exports_are_sorted_and_importable() -> None:
    assert features.__all__ == sorted(features.__all__, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(features, name) for name in features.__all__)


def test_version_helpers_tag_and_check_states() -> None:
    assert versioned_state(a=1) == {"v": 1, "a": 1}
    assert read_state({"v": 1, "a": 1, "b": [2]}, "X", "b", "a") == [[2], 1]
    with pytest.raises(ValueError, match="X state has version None"):
        read_state("not a mapping", "X")  # type: ignore[arg-type]


def test_a_class_can_read_and_write_its_own_version() -> None:
    assert versioned_state(2, a=1) == {"v": 2, "a": 1}
    assert read_state({"v": 2, "a": 1}, "X", "a", version=2) == [1]
    with pytest.raises(ValueError, match="X state has version 1; this code reads version 2"):
        read_state({"v": 1, "a": 1}, "X", "a", version=2)


@given(st.lists(st.floats(allow_nan=False)), st.lists(st.integers(0, 2**64) | st.integers(0, 99)))
def test_packed_columns_round_trip_every_bit(floats: list[float], ints: list[int]) -> None:
    text = orjson.loads(orjson.dumps([pack_floats(floats), pack_unsigned(ints)]))
    assert [repr(x) for x in unpack_floats(text[0])] == [repr(x) for x in floats]  # -0.0 too
    assert unpack_unsigned(text[1]) == ints


@pytest.mark.parametrize("text", ["not base64!", "AAAA"])
def test_a_broken_float_column_is_refused_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"float column|not base64"):
        unpack_floats(text)


def test_an_int_column_cut_inside_a_number_or_a_negative_int_is_refused() -> None:
    with pytest.raises(ValueError, match="ends inside a number"):
        unpack_unsigned(pack_unsigned([300])[:2])
    with pytest.raises(ValueError, match="takes ints >= 0, got -1"):
        pack_unsigned([300, -1])
