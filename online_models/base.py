"""The interfaces every model of tunestream follows (River's verbs).

A *ranker* answers "the best ``n`` tracks now" (River's ``rank`` for
recommenders); later models (engagement, taste) add ``learn_one`` /
``predict_one``. The worker and the list builder depend on these protocols,
never on a concrete class, so a model slots in without touching them.

>>> from online_models.trending import TrendingBoard
>>> isinstance(TrendingBoard(), Ranker)
True
"""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol, runtime_checkable


@runtime_checkable
class Ranker(Protocol):
    """Ranks tracks at an event time; ``model_version`` names what made the ranking."""

    model_version: str

    def rank(
        self, n: int, ts_ms: int, exclude: Container[str] = frozenset()
    ) -> list[tuple[str, float]]:
        """The ``n`` best tracks at ``ts_ms`` not in ``exclude``, best first, with scores."""
        ...


__all__ = ["Ranker"]
