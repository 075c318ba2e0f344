"""Live model quality, scored prequentially: each prediction is judged, then learned.

The worker calls ``update`` with a model's prediction *before* the model learns
the event's label (test-then-train), so every figure here is out-of-sample. Each
metric keeps only the last ``window`` observations: a model version's quality
*now*, not averaged since it started, and memory bounded by ``window``.

- :class:`RollingAUC` — ROC AUC of the engagement model (exact, ties count half).
- :class:`RollingLogLoss` — mean log loss, probabilities clipped to [1e-15, 1 - 1e-15].
- :class:`RollingCalibration` — expected calibration error and a reliability table.
- :class:`RollingHitRate` — hit-rate@k of the taste model on the next positive event.
- :class:`QualityReport` — the engagement metrics of one model version, JSON-safe.

A metric that cannot be known yet (an empty window, one class only) reads
``None`` rather than a number that looks like a verdict.

>>> report = QualityReport(model="engagement", version="lr-1", window=100)
>>> for y, p in [(True, 0.8), (False, 0.3), (True, 0.6), (False, 0.7)]:
...     report.update(y, p)
>>> report.gauges()["roc_auc"]  # 3 of the 4 (positive, negative) pairs ranked right
0.75
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Log loss clips probabilities to [EPSILON, 1 - EPSILON], as River and sklearn do.
EPSILON = 1e-15


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a whole number >= 1, got {window!r}")
    return window


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):  # one NaN would poison every later read of the window
        raise ValueError(f"{what} must be finite, got {value!r}")
    return value


def _probability(p: float) -> float:
    p = _finite(p, "a probability")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must be in [0, 1], got {p!r}")
    return p


class RollingAUC:
    """ROC AUC of the last ``window`` (label, score) pairs, exact, like sklearn's.

    The AUC is the share of (positive, negative) pairs whose positive scored
    higher, a tie counting half: sklearn's ``roc_auc_score`` on the window.
    Scores may be any finite numbers (only their order matters). The count of
    pairs won is kept as an integer of half-pairs, so it never drifts:
    ``update`` costs two binary searches and a list insert (a C memmove),
    ``get`` is O(1).

    ``get`` is None until the window holds a positive and a negative: 0.5
    would read as "no better than random", a verdict there is no data for.

    Memory bound: ``window`` pairs plus their scores in two sorted lists
    (about 3 x ``window`` floats).

    >>> auc = RollingAUC(window=4)
    >>> auc.update(True, 0.9); auc.get() is None
    True
    >>> for y, p in [(False, 0.2), (True, 0.4), (False, 0.4)]:
    ...     auc.update(y, p)
    >>> auc.get()  # 3 pairs right and 1 tie: (3 + 0.5) / 4
    0.875
    >>> auc.update(False, 0.95); auc.get()  # (True, 0.9) left the window
    0.5
    """

    def __init__(self, window: int = 1000) -> None:
        self.window = _check_window(window)
        self._pairs: deque[tuple[bool, float]] = deque()
        self._pos: list[float] = []  # positives' scores, sorted
        self._neg: list[float] = []  # negatives' scores, sorted
        self._half_wins = 0  # twice the pairs won: ties count one, wins two

    def update(self, y: bool, p: float) -> None:
        """Judge score ``p`` against label ``y``; the oldest pair leaves a full window."""
        p, y = _finite(p, "a score"), bool(y)
        if len(self._pairs) == self.window:
            self._remove(*self._pairs.popleft())
        self._pairs.append((y, p))
        self._half_wins += self._half_pairs_won(y, p)
        insort(self._pos if y else self._neg, p)

    def get(self) -> float | None:
        """The AUC over the window, or None until both classes are in it."""
        if not self._pos or not self._neg:
            return None
        return self._half_wins / (2 * len(self._pos) * len(self._neg))

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"RollingAUC(window={self.window})"

    def _remove(self, y: bool, p: float) -> None:
        scores = self._pos if y else self._neg
        del scores[bisect_left(scores, p)]
        self._half_wins -= self._half_pairs_won(y, p)

    def _half_pairs_won(self, y: bool, p: float) -> int:
        """Twice the pairs ``p`` wins against the other class, plus its ties."""
        if y:  # 2 x (negatives below p) + (negatives equal to p)
            return bisect_left(self._neg, p) + bisect_right(self._neg, p)
        # 2 x (positives above p) + (positives equal to p)
        return 2 * len(self._pos) - bisect_left(self._pos, p) - bisect_right(self._pos, p)


class RollingLogLoss:
    """Mean binary log loss of the last ``window`` predictions.

    Probabilities are clipped to ``[1e-15, 1 - 1e-15]`` (as River and sklearn
    do), so one confident miss costs at most ~34.5, not infinity. The running
    sum is re-added exactly (``math.fsum``) once per ``window`` updates, so
    subtraction rounding cannot pile up: O(1) amortised per update.

    Memory bound: ``window`` floats.

    >>> loss = RollingLogLoss(window=2)
    >>> for y, p in [(True, 0.9), (False, 0.1), (False, 0.5)]:
    ...     loss.update(y, p)
    >>> round(loss.get(), 4)  # (-ln 0.9 - ln 0.5) / 2: the first left the window
    0.3993
    """

    def __init__(self, window: int = 1000) -> None:
        self.window = _check_window(window)
        self._losses: deque[float] = deque()
        self._sum = 0.0
        self._updates = 0

    def update(self, y: bool, p: float) -> None:
        """Score probability ``p`` of the positive class against label ``y``."""
        p = min(max(_probability(p), EPSILON), 1.0 - EPSILON)
        loss = -math.log(p) if y else -math.log1p(-p)
        if len(self._losses) == self.window:
            self._sum -= self._losses.popleft()
        self._losses.append(loss)
        self._sum += loss
        self._updates += 1
        if self._updates % self.window == 0:
            self._sum = math.fsum(self._losses)

    def get(self) -> float | None:
        """The mean log loss over the window, or None while it is empty."""
        if not self._losses:
            return None
        return max(self._sum, 0.0) / len(self._losses)  # rounding may leave -1e-16

    def __len__(self) -> int:
        return len(self._losses)

    def __repr__(self) -> str:
        return f"RollingLogLoss(window={self.window})"


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One row of a reliability table: predictions in ``[lower, upper)`` and what happened.

    ``mean_predicted`` and ``observed_rate`` are None for an empty bin.
    """

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-safe dict."""
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
        }


class RollingCalibration:
    """Expected calibration error and reliability table of the last ``window`` predictions.

    Predictions fall into ``bins`` equal-width bins: bin ``b`` holds ``p`` with
    ``floor(p * bins) == b``, and the last bin also holds 1.0. The expected
    calibration error (ECE) is the count-weighted mean gap between a bin's
    mean prediction and its observed positive rate: 0 is perfectly calibrated.
    Per-bin sums of ``p`` are re-added exactly once per ``window`` updates (see
    :class:`RollingLogLoss`).

    Memory bound: ``window`` (bin, p, y) triples plus three numbers per bin.

    >>> cal = RollingCalibration(window=100, bins=10)
    >>> for y, p in [(False, 0.25), (False, 0.25), (True, 0.25), (False, 0.25), (True, 0.95)]:
    ...     cal.update(y, p)
    >>> round(cal.get(), 6)  # bin 2 says 0.25 and gets 1/4; bin 9 says 0.95, gets 1
    0.01
    >>> row = cal.reliability()[2]
    >>> row.count, row.mean_predicted, row.observed_rate
    (4, 0.25, 0.25)
    """

    def __init__(self, window: int = 1000, bins: int = 10) -> None:
        self.window = _check_window(window)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
        self.bins = bins
        self._seen: deque[tuple[int, float, bool]] = deque()
        self._counts = [0] * bins
        self._positives = [0] * bins
        self._p_sums = [0.0] * bins
        self._updates = 0

    def update(self, y: bool, p: float) -> None:
        """Record that probability ``p`` was predicted and label ``y`` followed."""
        p, y = _probability(p), bool(y)
        if len(self._seen) == self.window:
            self._add(*self._seen.popleft(), sign=-1)
        b = min(int(p * self.bins), self.bins - 1)
        self._seen.append((b, p, y))
        self._add(b, p, y, sign=1)
        self._updates += 1
        if self._updates % self.window == 0:
            self._resum()

    def get(self) -> float | None:
        """The expected calibration error over the window, or None while it is empty."""
        if not self._seen:
            return None
        gaps = (abs(s - k) for s, k in zip(self._p_sums, self._positives, strict=True))
        return math.fsum(gaps) / len(self._seen)

    def reliability(self) -> list[ReliabilityBin]:
        """Every bin, lowest first, with its count, mean prediction and observed rate."""
        rows = []
        for b, (n, k, s) in enumerate(
            zip(self._counts, self._positives, self._p_sums, strict=True)
        ):
            mean, rate = (max(s, 0.0) / n, k / n) if n else (None, None)
            rows.append(ReliabilityBin(b / self.bins, (b + 1) / self.bins, n, mean, rate))
        return rows

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"RollingCalibration(window={self.window}, bins={self.bins})"

    def _add(self, b: int, p: float, y: bool, sign: int) -> None:
        self._counts[b] += sign
        self._positives[b] += sign * y
        self._p_sums[b] = self._p_sums[b] + p if sign > 0 else self._p_sums[b] - p
        if not self._counts[b]:
            self._p_sums[b] = 0.0  # an emptied bin holds exactly nothing, not rounding dust

    def _resum(self) -> None:
        per_bin: list[list[float]] = [[] for _ in range(self.bins)]
        for b, p, _ in self._seen:
            per_bin[b].append(p)
        self._p_sums = [math.fsum(ps) for ps in per_bin]


class RollingHitRate:
    """Hit-rate@k over the last ``window`` positive events.

    For each positive event (a play through, a save), was its track in the
    top ``k`` of the list the taste model made *before* the event? Call
    :meth:`update` with the answer, or :meth:`update_ranked` with the list.

    Memory bound: ``window`` booleans.

    >>> hits = RollingHitRate(k=2, window=3)
    >>> hits.update_ranked(["a", "b", "c"], "b"), hits.update_ranked(["a", "b", "c"], "c")
    (True, False)
    >>> hits.get()
    0.5
    """

    def __init__(self, k: int = 10, window: int = 1000) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        self.k = k
        self.window = _check_window(window)
        self._hits: deque[bool] = deque()
        self._count = 0  # hits in the window: an int, so exact

    def update(self, hit: bool) -> None:
        """Record whether the event's item was in the top ``k``."""
        hit = bool(hit)
        if len(self._hits) == self.window:
            self._count -= self._hits.popleft()
        self._hits.append(hit)
        self._count += hit

    def update_ranked(self, ranked: Sequence[str], item: str) -> bool:
        """Record whether ``item`` is in the first ``k`` of ``ranked``; return it."""
        hit = item in ranked[: self.k]
        self.update(hit)
        return hit

    def get(self) -> float | None:
        """The share of hits in the window, or None while it is empty."""
        return self._count / len(self._hits) if self._hits else None

    def __len__(self) -> int:
        return len(self._hits)

    def __repr__(self) -> str:
        return f"RollingHitRate(k={self.k}, window={self.window})"


class QualityReport:
    """The live engagement metrics of one model version: AUC, log loss, calibration.

    One report per (model, version): a hot-swapped version starts a new report,
    so its figures never mix with its predecessor's. :meth:`gauges` gives the
    flat numbers for Prometheus (labels ``model`` and ``version`` only) and a
    snapshot's metrics; :meth:`to_dict` adds the reliability table for
    ``GET /models``. Both are JSON-safe: floats are finite, unknowns are None.

    Memory bound: that of its three metrics, about 7 x ``window`` numbers.

    >>> report = QualityReport(model="engagement", version="lr-1", window=2)
    >>> report.update(True, 0.9); report.update(False, 0.2); report.update(True, 0.4)
    >>> report.examples, report.gauges()["roc_auc"]  # 3 seen; the window holds 2
    (3, 1.0)
    """

    def __init__(self, model: str, version: str, window: int = 1000, bins: int = 10) -> None:
        self.model = model
        self.version = version
        self.window = window
        self.bins = bins
        self.auc = RollingAUC(window)
        self.log_loss = RollingLogLoss(window)
        self.calibration = RollingCalibration(window, bins)
        self.examples = 0  # every example scored by this version, not only the window's

    def update(self, y: bool, p: float) -> None:
        """Score predicted probability ``p`` against label ``y``, before the model learns it."""
        p = _probability(p)  # checked once, so a bad p leaves all three metrics untouched
        self.auc.update(y, p)
        self.log_loss.update(y, p)
        self.calibration.update(y, p)
        self.examples += 1

    def gauges(self) -> dict[str, float | None]:
        """The scalar metrics by name: ``roc_auc``, ``log_loss``, ``ece``."""
        return {
            "roc_auc": self.auc.get(),
            "log_loss": self.log_loss.get(),
            "ece": self.calibration.get(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything known about this version's quality, as a JSON-safe dict."""
        return {
            "model": self.model,
            "version": self.version,
            "examples": self.examples,
            "window": self.window,
            **self.gauges(),
            "reliability": [row.to_dict() for row in self.calibration.reliability()],
        }

    def __repr__(self) -> str:
        return (
            f"QualityReport(model={self.model!r}, version={self.version!r}, "
            f"window={self.window}, bins={self.bins})"
        )


__all__ = [
    "EPSILON",
    "QualityReport",
    "ReliabilityBin",
    "RollingAUC",
    "RollingCalibration",
    "RollingHitRate",
    "RollingLogLoss",
]
