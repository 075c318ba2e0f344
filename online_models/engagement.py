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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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
    "RiverEngagementModel",
    "make_engagement_model",
]
