"""Top-k affinities are exact while distinct keys <= k, and never overestimate beyond it."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.affinity import DecayedTopK

T0 = 1_700_000_000_000
H = 3_600_000  # one hour in ms
KEYS = [f"artist-{i}" for i in range(12)]

Update = tuple[int, str, float]


def brute_weights(updates: list[Update], t: int, half_life_s: float) -> dict[str, float]:
    weights: dict[str, float] = {}
    for ts, key, w in updates:
        weights[key] = weights.get(key, 0.0) + w * 2.0 ** (-(t - ts) / (half_life_s * 1000.0))
    return weights


def brute_entropy(weights: dict[str, float]) -> float:
    total = sum(weights.values())
    shares = [w / total for w in weights.values()]
    return -sum(p * math.log2(p) for p in shares if p > 0)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@st.composite
def histories(draw: st.DrawFn, n_keys: int) -> tuple[float, list[Update]]:
    half_life_s = draw(st.sampled_from([1.0, 3600.0, 7 * 86_400.0]))
    ts = st.integers(T0, T0 + draw(st.sampled_from([10_000, 30 * 86_400_000])))
    key = st.sampled_from(KEYS[:n_keys])
    weight = st.floats(0.0, 1e3, allow_nan=False)
    updates = draw(st.lists(st.tuples(ts, key, weight), min_size=1, max_size=50))
    return half_life_s, draw(st.permutations(updates))


@settings(deadline=None)
@given(st.data(), st.integers(1, len(KEYS)), st.integers(0, 10**9))
def test_affinity_is_exact_while_distinct_keys_fit_in_k(
    data: st.DataObject, k: int, later_ms: int
) -> None:
    n_keys = data.draw(st.integers(1, k))
    half_life_s, updates = data.draw(histories(n_keys))
    stat = DecayedTopK(half_life_s, k)
    for ts, key, w in updates:
        assert stat.update(ts, key, w) is True
    t = max(ts for ts, _, _ in updates) + later_ms
    expected = brute_weights(updates, t, half_life_s)
    for key, w in expected.items():
        assert close(stat.weight(t, key), w)
        assert close(stat.read(t).get(key, 0.0), w)
    assert close(stat.total(t), sum(expected.values()))
    if sum(expected.values()) > 1e-200:  # shares are meaningless once everything underflows
        assert math.isclose(stat.entropy(t), brute_entropy(expected), abs_tol=1e-9)
    ranked = [w for _, w in stat.top(t, n=len(KEYS))]
    assert ranked == sorted(ranked, reverse=True)


@settings(deadline=None)
@given(histories(len(KEYS)), st.integers(1, 4))
def test_beyond_k_keys_held_weights_never_exceed_the_truth(
    history: tuple[float, list[Update]], k: int
) -> None:
    half_life_s, updates = history
    stat = DecayedTopK(half_life_s, k)
    for ts, key, w in updates:
        stat.update(ts, key, w)
        assert len(stat) <= k
    t = max(ts for ts, _, _ in updates)
    truth = brute_weights(updates, t, half_life_s)
    for key, w in stat.read(t).items():
        assert w <= truth[key] * (1 + 1e-9) + 1e-9


@settings(deadline=None)
@given(histories(len(KEYS)), st.integers(1, 12), st.integers(0, 50), st.integers(0, 10**9))
def test_state_round_trip_through_json_gives_an_equal_reading(
    history: tuple[float, list[Update]], k: int, cut: int, later_ms: int
) -> None:
    half_life_s, updates = history
    stat = DecayedTopK(half_life_s, k)
    for ts, key, w in updates[:cut]:
        stat.update(ts, key, w)
    restored = DecayedTopK.from_state(orjson.loads(orjson.dumps(stat.to_state())))
    for ts, key, w in updates[cut:]:
        stat.update(ts, key, w)
        restored.update(ts, key, w)
    t = max(ts for ts, _, _ in updates) + later_ms
    got, want = restored.read(t), stat.read(t)
    assert got.keys() == want.keys()
    assert all(close(got[key], want[key]) for key in want)
    assert math.isclose(restored.entropy(t), stat.entropy(t), abs_tol=1e-9)


def test_the_lightest_decayed_key_is_evicted_even_if_it_was_played_more() -> None:
    # half-life 1 h, k = 2
    # ts (h):   0        1       2
    # events:   a a a    b       c      at 2 h: a = 3/4, b = 1/2, c = 1 -> b goes
    stat = DecayedTopK(half_life_s=3600, k=2)
    for ts, key in [(0, "a"), (0, "a"), (0, "a"), (H, "b")]:
        stat.update(ts, key)
    assert stat.update(2 * H, "c") is True
    assert stat.top(2 * H, n=3) == [("c", 1.0), ("a", pytest.approx(0.75))]
    assert stat.weight(2 * H, "b") == 0.0


def test_a_new_key_lighter_than_all_held_is_evicted_at_once() -> None:
    stat = DecayedTopK(half_life_s=3600, k=1)
    stat.update(0, "a", 2.0)
    assert stat.update(0, "b", 1.0) is False
    assert stat.read(0) == {"a": 2.0}


def test_entropy_is_zero_for_one_key_and_log2_m_for_m_equal_keys() -> None:
    stat = DecayedTopK(k=8)
    assert stat.entropy(T0) == 0.0  # empty
    stat.update(T0, "a")
    assert stat.entropy(T0) == 0.0
    for key in "bcd":
        stat.update(T0, key)
    assert stat.entropy(T0) == pytest.approx(2.0)


def test_entropy_does_not_move_with_decay_alone() -> None:
    stat = DecayedTopK(half_life_s=3600, k=4)
    stat.update(0, "a", 3.0)
    stat.update(H, "b", 1.0)
    assert stat.entropy(H) == pytest.approx(stat.entropy(100 * H))


def test_keys_that_decay_to_nothing_are_dropped_when_the_frame_moves() -> None:
    # half-life 1 s: after 2 000 s a weight of 1 is 2**-2000, below the smallest float
    stat = DecayedTopK(half_life_s=1, k=4)
    stat.update(0, "old")
    stat.update(2_000_000, "new")
    assert list(stat.read(2_000_000)) == ["new"]


def test_empty_map_reads_nothing() -> None:
    stat = DecayedTopK()
    assert (stat.read(T0), stat.top(T0, 3), stat.weight(T0, "a"), stat.total(T0)) == (
        {},
        [],
        0.0,
        0.0,
    )


@pytest.mark.parametrize(("half_life_s", "k"), [(0.0, 5), (-1.0, 5), (3600.0, 0)])
def test_invalid_configuration_is_rejected(half_life_s: float, k: int) -> None:
    with pytest.raises(ValueError):
        DecayedTopK(half_life_s, k)


def test_negative_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        DecayedTopK().update(T0, "a", -1.0)


def test_state_holding_more_than_k_keys_is_rejected() -> None:
    state = DecayedTopK(k=1).to_state()
    state["weights"] = {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="more than k"):
        DecayedTopK.from_state(state)
