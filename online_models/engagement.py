"""Engagement models: the probability that a user plays a track through, in context.

Every candidate is a River classifier behind one small interface
(:class:`EngagementModel`: ``learn_one`` / ``predict_one``), built by name from
:data:`CANDIDATES`, so the offline evaluation compares them on the same stream
and the worker runs whichever is chosen, by name, without knowing which:

* ``logistic``: ``linear_model.LogisticRegression`` with plain SGD. The examples
  are already scaled where they are built (:mod:`online_models.example`: rates
  centred on their priors, counts on a log scale, flags), so no scaler runs per
  event: the "cheap scaling" is paid once, in the feature design.
* ``fm``: ``facto.FMClassifier`` with 4 factors: learns pairwise interactions
  (device x context type, for example) that a linear model cannot.
* ``tree``: ``tree.HoeffdingAdaptiveTreeClassifier``: splits on thresholds and
  adapts to drift, with no linear assumption at all.

:data:`DEFAULT` is the one the worker runs; the offline evaluation
(``tunestream evaluate``) prints the figures it was chosen on.

>>> model = make_engagement_model("logistic")
>>> for _ in range(200):
...     model.learn_one({"artist_affinity_share": 1.0}, 1)
...     model.learn_one({"artist_affinity_share": 0.0}, 0)
>>> model.predict_one({"artist_affinity_share": 1.0}) > 0.5 > model.predict_one({})
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from river import facto, linear_model, optim, tree

from online_models.example import Example


@runtime_checkable
class EngagementModel(Protocol):
    """Learns one example at a time; predicts the probability of engagement."""

    name: str

    def learn_one(self, x: Example, y: int) -> None:
        """Learn from one example and its label (1 engaged, 0 not)."""
        ...

    def predict_one(self, x: Example) -> float:
        """The probability of engagement, in [0, 1]."""
        ...


@dataclass
class RiverEngagementModel:
    """A River binary classifier as an :class:`EngagementModel`."""

    name: str
    classifier: Any

    def learn_one(self, x: Example, y: int) -> None:
        self.classifier.learn_one(x, bool(y))

    def predict_one(self, x: Example) -> float:
        return float(self.classifier.predict_proba_one(x).get(True, 0.0))


def _logistic() -> Any:
    return linear_model.LogisticRegression(optimizer=optim.SGD(0.01), l2=1e-4)


def _factorization_machine() -> Any:
    return facto.FMClassifier(
        n_factors=4,
        weight_optimizer=optim.SGD(0.01),
        latent_optimizer=optim.SGD(0.005),
        l2_weight=1e-4,
        l2_latent=1e-4,
        seed=7,
    )


def _hoeffding_tree() -> Any:
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=200, leaf_prediction="nba", seed=7)


#: Every candidate by name: a factory of a fresh River classifier.
CANDIDATES: dict[str, Callable[[], Any]] = {
    "logistic": _logistic,
    "fm": _factorization_machine,
    "tree": _hoeffding_tree,
}
#: The candidate the worker runs (chosen on the offline figures in the README).
DEFAULT = "logistic"


class LinearScorer:
    """Scores many examples at once with a logistic model's weights: NumPy, no loop of
    ``predict_one``. Built from the model as it stands (a snapshot of its weights).

    >>> model = make_engagement_model("logistic")
    >>> model.learn_one({"a": 1.0}, 1)
    >>> scorer = LinearScorer.of(model)
    >>> [round(p, 6) for p in scorer.score_many([{"a": 1.0}, {}])] == [
    ...     round(model.predict_one({"a": 1.0}), 6), round(model.predict_one({}), 6)]
    True
    """

    def __init__(self, weights: Mapping[str, float], intercept: float) -> None:
        self.names = list(weights)
        self.column = {name: i for i, name in enumerate(self.names)}
        self.weights = np.fromiter(weights.values(), float, len(self.names))
        self.intercept = intercept

    @classmethod
    def of(cls, model: RiverEngagementModel) -> LinearScorer:
        """The scorer of a ``logistic`` candidate; ``TypeError`` for any other kind."""
        classifier = model.classifier
        if not isinstance(classifier, linear_model.LogisticRegression):
            raise TypeError(f"{model.name} is not a linear model; it has no weight vector")
        return cls(dict(classifier.weights), float(classifier.intercept))

    def matrix(self, examples: Sequence[Example]) -> NDArray[np.float64]:
        """One row per example over the model's features (unknown features weigh 0)."""
        rows = np.zeros((len(examples), len(self.names)))
        column = self.column
        for i, x in enumerate(examples):
            for name, value in x.items():
                j = column.get(name)
                if j is not None:
                    rows[i, j] = value
        return rows

    def score_many(
        self, examples: Sequence[Example], shared: Example | None = None
    ) -> NDArray[np.float64]:
        """The probability of engagement of each example, each completed by ``shared``.

        Ranking candidates for one user in one context, the user's and the
        context's features (``shared``) are the same for all: their part of the
        logit is one dot product, not one per candidate; ``examples`` then hold
        only what differs (the track's features and the crosses).
        """
        base = self.intercept + self._dot(shared or {})
        return sigmoid(self.matrix(examples) @ self.weights + base)

    def score_columns(
        self, columns: Mapping[str, NDArray[np.float64]], n: int, shared: Example | None = None
    ) -> NDArray[np.float64]:
        """The probability of engagement of ``n`` candidates whose differing features
        come as one array each (:func:`online_models.candidates.candidate_columns`):
        one multiply-add per feature over all candidates, no per-candidate Python."""
        logits = np.full(n, self.intercept + self._dot(shared or {}))
        column, weights = self.column, self.weights
        for name, values in columns.items():
            j = column.get(name)
            if j is not None:
                logits += weights[j] * values
        return sigmoid(logits)

    def _dot(self, x: Example) -> float:
        column, weights = self.column, self.weights
        return sum(weights[column[n]] * v for n, v in x.items() if n in column)


def sigmoid(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """The logistic function, elementwise, safe for any finite logit."""
    # np.clip's result, by two ufuncs: clip's own Python costs more at a few hundred
    clipped = np.minimum(np.maximum(logits, -500.0), 500.0)
    return 1.0 / (1.0 + np.exp(-clipped))  # type: ignore[no-any-return]


def make_engagement_model(name: str = DEFAULT) -> RiverEngagementModel:
    """A fresh candidate by name; ``ValueError`` names the known ones."""
    factory = CANDIDATES.get(name)
    if factory is None:
        raise ValueError(f"unknown engagement model {name!r}; known: {', '.join(CANDIDATES)}")
    return RiverEngagementModel(name, factory())


__all__ = [
    "CANDIDATES",
    "DEFAULT",
    "EngagementModel",
    "LinearScorer",
    "RiverEngagementModel",
    "make_engagement_model",
    "sigmoid",
]
