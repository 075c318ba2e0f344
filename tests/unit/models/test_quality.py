"""Rolling quality metrics equal brute force over the window, and River where River agrees."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import metrics, utils

from online_models.quality import (
    EPSILON,
    QualityReport,
    RollingAUC,
    RollingCalibration,
    RollingHitRate,
    RollingLogLoss,
)

Pair = tuple[bool, float]

WINDOWS = st.integers(1, 25)
# Few distinct scores, so ties are common: where AUC implementations differ.
TIED_SCORES = st.integers(0, 6).map(lambda i: i / 6)
PROBABILITIES = st.one_of(
    st.floats(0.0, 1.0, allow_nan=False), st.sampled_from([0.0, 1.0, EPSILON, 1 - EPSILON])
)


def pairs(scores: st.SearchStrategy[float]) -> st.SearchStrategy[list[Pair]]:
    return st.lists(st.tuples(st.booleans(), scores), max_size=80)


def brute_auc(window: list[Pair]) -> float | None:
    """Every (positive, negative) pair compared, a tie counting half (sklearn's rule)."""
    pos = [p for y, p in window if y]
    neg = [p for y, p in window if not y]
    if not pos or not neg:
        return None
    won = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return won / (len(pos) * len(neg))


def brute_log_loss(window: list[Pair]) -> float | None:
    if not window:
        return None
    clipped = [(y, min(max(p, EPSILON), 1 - EPSILON)) for y, p in window]
    return math.fsum(-math.log(p if y else 1 - p) for y, p in clipped) / len(window)


def brute_bins(window: list[Pair], bins: int) -> list[list[Pair]]:
    table: list[list[Pair]] = [[] for _ in range(bins)]
    for y, p in window:
        table[min(math.floor(p * bins), bins - 1)].append((y, p))  # 1.0 joins the last bin
    return table


# --- AUC ------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(WINDOWS, pairs(st.one_of(TIED_SCORES, st.floats(-5, 5))))
def test_auc_equals_pairwise_brute_force_over_the_window(window: int, stream: list[Pair]) -> None:
    auc = RollingAUC(window)
    for i, (y, p) in enumerate(stream):
        auc.update(y, p)
        expected = brute_auc(stream[max(0, i + 1 - window) : i + 1])
        assert auc.get() == pytest.approx(expected, abs=1e-12)
        assert len(auc) == min(i + 1, window)


@settings(max_examples=60, deadline=None)
@given(WINDOWS, st.lists(st.floats(0, 1), unique=True, max_size=60), st.data())
def test_auc_equals_rivers_rolling_rocauc_on_distinct_scores(
    window: int, scores: list[float], data: st.DataObject
) -> None:
    # River's RollingROCAUC splits ties differently, so only distinct scores are compared.
    labels = data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)))
    ours, river = RollingAUC(window), metrics.RollingROCAUC(window_size=window)
    for i, (y, p) in enumerate(zip(labels, scores, strict=True)):
        ours.update(y, p)
        river.update(y, p)
        if ours.get() is not None:
            assert ours.get() == pytest.approx(river.get(), abs=1e-9), i


def test_auc_is_none_until_both_classes_are_in_the_window() -> None:
    auc = RollingAUC(window=2)
    assert auc.get() is None
    auc.update(True, 0.3)
    auc.update(True, 0.9)
    assert auc.get() is None
    auc.update(False, 0.5)  # (True, 0.3) leaves: one positive at 0.9 above one negative
    assert auc.get() == 1.0
    auc.update(False, 0.1)  # the last positive leaves
    assert auc.get() is None


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_auc_refuses_a_non_finite_score_and_keeps_its_state(score: float) -> None:
    auc = RollingAUC(window=3)
    auc.update(True, 0.8)
    auc.update(False, 0.2)
    with pytest.raises(ValueError, match="finite"):
        auc.update(True, score)
    assert (len(auc), auc.get()) == (2, 1.0)


# --- log loss ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(WINDOWS, pairs(PROBABILITIES))
def test_log_loss_equals_brute_force_over_the_window(window: int, stream: list[Pair]) -> None:
    loss = RollingLogLoss(window)
    for i, (y, p) in enumerate(stream):
        loss.update(y, p)
        expected = brute_log_loss(stream[max(0, i + 1 - window) : i + 1])
        assert loss.get() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(WINDOWS, pairs(PROBABILITIES))
def test_log_loss_equals_rivers_rolling_log_loss(window: int, stream: list[Pair]) -> None:
    ours = RollingLogLoss(window)
    river: Any = utils.Rolling(metrics.LogLoss, window_size=window)  # untyped proxy
    for y, p in stream:
        ours.update(y, p)
        river.update(y, p)
        assert ours.get() == pytest.approx(river.get(), rel=1e-9, abs=1e-12)


def test_log_loss_clips_certain_misses_to_a_finite_cost() -> None:
    loss = RollingLogLoss(window=2)
    loss.update(True, 0.0)
    loss.update(False, 1.0)
    # About 34.5 each, not infinity (1 - 1e-15 rounds to a double 1.11e-15 from 1: rel=1e-4).
    assert loss.get() == pytest.approx(-math.log(EPSILON), rel=1e-4)


def test_log_loss_does_not_drift_after_many_windows_of_huge_and_tiny_losses() -> None:
    # A window of confident misses, then many of near-perfect hits: without the
    # periodic exact re-sum, the subtraction of the misses leaves rounding behind.
    loss = RollingLogLoss(window=10)
    for _ in range(10):
        loss.update(True, 0.0)
    for _ in range(10_000):
        loss.update(True, 1 - 1e-12)
    assert loss.get() == pytest.approx(-math.log(1 - 1e-12), rel=1e-6, abs=0)


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_log_loss_refuses_what_is_not_a_probability(p: float) -> None:
    loss = RollingLogLoss()
    with pytest.raises(ValueError, match="probability"):
        loss.update(True, p)
    assert loss.get() is None


# --- calibration ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(WINDOWS, st.integers(1, 12), pairs(st.one_of(TIED_SCORES, PROBABILITIES)))
def test_calibration_equals_brute_force_binning(window: int, bins: int, stream: list[Pair]) -> None:
    cal = RollingCalibration(window, bins)
    for y, p in stream:
        cal.update(y, p)
    last = stream[-window:] if stream else []
    table = brute_bins(last, bins)
    rows = cal.reliability()
    assert [row.count for row in rows] == [len(b) for b in table]
    for row, b in zip(rows, table, strict=True):
        if b:
            assert row.observed_rate == sum(y for y, _ in b) / len(b)
            assert row.mean_predicted == pytest.approx(sum(p for _, p in b) / len(b), abs=1e-12)
        else:
            assert row.mean_predicted is None and row.observed_rate is None
    gaps = [abs(sum(p for _, p in b) - sum(y for y, _ in b)) for b in table]
    expected = math.fsum(gaps) / len(last) if last else None
    assert cal.get() == pytest.approx(expected, abs=1e-12)


def test_calibration_does_not_drift_after_many_windows_in_one_bin() -> None:
    # As for log loss: large predictions leave the bin, tiny ones stay; the
    # bin's mean must be the tiny ones' mean, not their mean plus rounding.
    cal = RollingCalibration(window=10, bins=1)
    for _ in range(10):
        cal.update(True, 1.0)
    for _ in range(10_000):
        cal.update(False, 1e-12)
    assert cal.reliability()[0].mean_predicted == pytest.approx(1e-12, rel=1e-6, abs=0)
    assert cal.get() == pytest.approx(1e-12, rel=1e-6, abs=0)


def test_calibration_of_confident_misses_is_their_confidence() -> None:
    cal = RollingCalibration(window=5, bins=10)
    for _ in range(5):
        cal.update(False, 0.9)
    assert cal.get() == pytest.approx(0.9)
    assert cal.reliability()[9].count == 5


def test_calibration_bins_cover_zero_to_one_and_put_one_in_the_last() -> None:
    cal = RollingCalibration(window=10, bins=4)
    cal.update(True, 1.0)
    cal.update(False, 0.0)
    rows = cal.reliability()
    assert [(r.lower, r.upper) for r in rows] == [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]
    assert [r.count for r in rows] == [1, 0, 0, 1]


# --- hit rate ---------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(WINDOWS, st.lists(st.booleans(), max_size=80))
def test_hit_rate_is_the_share_of_hits_in_the_window(window: int, hits: list[bool]) -> None:
    rate = RollingHitRate(k=10, window=window)
    for i, hit in enumerate(hits):
        rate.update(hit)
        last = hits[max(0, i + 1 - window) : i + 1]
        assert rate.get() == sum(last) / len(last)
    if not hits:
        assert rate.get() is None


def test_hit_rate_counts_only_the_first_k_of_the_list() -> None:
    rate = RollingHitRate(k=2, window=10)
    ranked = ["a", "b", "c"]
    assert rate.update_ranked(ranked, "a") is True
    assert rate.update_ranked(ranked, "c") is False  # third: outside the top 2
    assert rate.update_ranked([], "a") is False
    assert rate.get() == pytest.approx(1 / 3)


# --- the bundle and configuration -----------------------------------------------


def test_report_is_json_safe_and_agrees_with_its_metrics() -> None:
    report = QualityReport("engagement", "lr-7", window=50, bins=5)
    assert report.gauges() == {"roc_auc": None, "log_loss": None, "ece": None}
    stream = [(i % 3 == 0, (i % 10) / 10) for i in range(120)]
    for y, p in stream:
        report.update(y, p)
    out = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert out["model"] == "engagement" and out["version"] == "lr-7"
    assert (out["examples"], out["window"]) == (120, 50)
    assert out["roc_auc"] == pytest.approx(brute_auc(stream[-50:]))
    assert out["log_loss"] == pytest.approx(brute_log_loss(stream[-50:]))
    assert out["ece"] == report.calibration.get()
    assert [row["count"] for row in out["reliability"]] == [
        len(b) for b in brute_bins(stream[-50:], 5)
    ]


def test_report_refuses_a_bad_probability_before_touching_any_metric() -> None:
    report = QualityReport("engagement", "lr-7")
    with pytest.raises(ValueError):
        report.update(True, 2.0)
    assert report.examples == 0
    assert (len(report.auc), len(report.log_loss), len(report.calibration)) == (0, 0, 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RollingAUC(window=0),
        lambda: RollingLogLoss(window=True),
        lambda: RollingCalibration(window=10, bins=0),
        lambda: RollingHitRate(k=0),
        lambda: RollingHitRate(window=2.5),  # type: ignore[arg-type]
    ],
)
def test_configuration_is_checked_at_construction(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="whole number"):
        make()


def test_repr_shows_the_whole_configuration() -> None:
    assert repr(RollingCalibration(window=7, bins=3)) == "RollingCalibration(window=7, bins=3)"
    assert repr(RollingHitRate(k=5, window=9)) == "RollingHitRate(k=5, window=9)"
    assert "version='v2'" in repr(QualityReport("taste", "v2"))
