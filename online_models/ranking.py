"""Ranking in context: one score per candidate, from the taste and the engagement models.

Two models judge a candidate, and they see different things:

* the taste model (:mod:`online_models.taste`) knows who likes what, from every
  user's history: ``sigmoid(user . track + bias)``;
* the engagement model (:class:`~online_models.engagement.LinearScorer`) knows
  the moment: the triggering event's hour, device and context type, the
  user's session, the track's skip and save rates, and the taste similarity
  itself (:func:`~online_models.candidates.candidate_columns`). It gives
  the probability that the user saves the track or plays it through, now.

The blending rule, one line and configurable (``taste_weight`` =
``TUNESTREAM_TASTE_WEIGHT``)::

    score = taste_weight * P_taste + (1 - taste_weight) * P_engage + boost

Both terms are probabilities, so the weight is a share, not a rescaling.
``boost`` is the editorial set's (:mod:`features.editorial`), 0 for others.
Without an engagement model (before the first snapshot, or with learning off)
``P_engage`` is ``P_taste``. A user with no vector yet counts as the zero
vector: the taste term is then each track's bias, its general appeal.

>>> import numpy as np
>>> blend(np.array([0.8, 0.2]), np.array([0.1, 0.9]), np.array([0.0, 0.05]), taste_weight=0.5)
array([0.45, 0.6 ])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import UserFeatures
from online_models.candidates import candidate_columns, shared_features
from online_models.engagement import LinearScorer, sigmoid
from online_models.served_tracks import ServedTracks

#: The default share of the taste model in the blended score.
TASTE_WEIGHT = 0.5


@dataclass(frozen=True)
class Scores:
    """Each candidate's scores by stage (arrays in the candidates' order)."""

    taste: NDArray[np.float64]
    engagement: NDArray[np.float64]
    boost: NDArray[np.float64]
    blended: NDArray[np.float64]


def blend(
    taste: NDArray[np.float64],
    engagement: NDArray[np.float64],
    boost: NDArray[np.float64],
    taste_weight: float = TASTE_WEIGHT,
) -> NDArray[np.float64]:
    """The blending rule of the module docstring."""
    if not 0.0 <= taste_weight <= 1.0:
        raise ValueError(f"taste_weight: must be within [0, 1], got {taste_weight!r}")
    return taste_weight * taste + (1.0 - taste_weight) * engagement + boost


def rank_in_context(
    user: UserFeatures,
    user_vector: NDArray[np.float64] | None,
    served: ServedTracks,
    rows: NDArray[np.intp],
    scorer: LinearScorer | None,
    ts_ms: int,
    context: Mapping[str, Any],
    boost: NDArray[np.float64],
    taste_weight: float = TASTE_WEIGHT,
) -> Scores:
    """The scores of the candidates at ``rows`` for ``user`` in ``context`` at ``ts_ms``."""
    vector = np.zeros(served.vectors.shape[1]) if user_vector is None else user_vector
    vector = np.asarray(vector, np.float64)
    taste = sigmoid(served.vectors[rows] @ vector + served.bias[rows])
    if scorer is None:
        engagement = taste
    else:
        columns = candidate_columns(user, served, rows, ts_ms, vector)
        shared = shared_features(user, ts_ms, context)
        engagement = scorer.score_columns(columns, len(rows), shared)
    return Scores(taste, engagement, boost, blend(taste, engagement, boost, taste_weight))


__all__ = ["TASTE_WEIGHT", "Scores", "blend", "rank_in_context"]
