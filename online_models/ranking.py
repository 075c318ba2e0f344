"""Ranking in context: one score per candidate, from the taste and the engagement models
and the listener's diet.

Two models and one reading of the user's state judge a candidate, and they see
different things:

* the taste model (:mod:`online_models.taste`) knows who likes what, from every
  user's history: ``sigmoid(user . track + bias)``;
* the engagement model (:class:`~online_models.engagement.LinearScorer`) knows
  the moment: the triggering event's hour, device and context type, the
  user's session, the track's skip and save rates, and the taste similarity
  itself (:func:`~online_models.candidates.candidate_columns`). It gives
  the probability that the user saves the track or plays it through, now;
* the diet (:meth:`online_models.diet.Diet.affinity`) knows what the user is
  playing: how much of their listening, lately and in the running session,
  is the candidate's artist and genre (0..1). Neither model sees the session's
  artist or genre: in the middle of an album or a jazz session, more of the
  same is the likeliest next choice, and the taste model alone ranks the hits
  of every genre the user ever liked above it.

The blending rule, one line and configurable (``taste_weight`` =
``TUNESTREAM_TASTE_WEIGHT``, ``affinity_weight`` = ``TUNESTREAM_AFFINITY_WEIGHT``)::

    score = taste_weight * P_taste + (1 - taste_weight) * P_engage
            + affinity_weight * affinity + boost

The first two terms are probabilities, so the taste weight is a share, not a
rescaling; the affinity is added on a comparable scale (1.5 by default: a
track by the artist and genre of the whole session outranks one the models
favour more, but not one they favour far more).
``boost`` is the editorial set's (:mod:`features.editorial`), 0 for others.
Without an engagement model (before the first snapshot, or with learning off)
``P_engage`` is ``P_taste``. A user with no vector yet counts as the zero
vector: the taste term is then each track's bias, its general appeal.

>>> import numpy as np
>>> blend(np.array([0.8, 0.2]), np.array([0.1, 0.9]), np.array([0.0, 0.05]), taste_weight=0.5)
array([0.45, 0.6 ])
>>> blend(np.array([0.8, 0.2]), np.array([0.1, 0.9]), np.zeros(2), 0.5, np.array([0.0, 0.5]))
array([0.45, 1.3 ])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features import UserFeatures
from online_models.candidates import candidate_columns, shared_features
from online_models.diet import Diet
from online_models.engagement import LinearScorer, sigmoid
from online_models.served_tracks import ServedTracks

#: The default share of the taste model in the blended score.
TASTE_WEIGHT = 0.5
#: The default weight of the diet's affinity in the blended score.
AFFINITY_WEIGHT = 1.5


@dataclass(frozen=True)
class Scores:
    """Each candidate's scores by stage (arrays in the candidates' order)."""

    taste: NDArray[np.float64]
    engagement: NDArray[np.float64]
    boost: NDArray[np.float64]
    blended: NDArray[np.float64]
    #: the diet's affinity (0 for every candidate without a diet)
    affinity: NDArray[np.float64] | None = None


def blend(
    taste: NDArray[np.float64],
    engagement: NDArray[np.float64],
    boost: NDArray[np.float64],
    taste_weight: float = TASTE_WEIGHT,
    affinity: NDArray[np.float64] | None = None,
    affinity_weight: float = AFFINITY_WEIGHT,
) -> NDArray[np.float64]:
    """The blending rule of the module docstring (``affinity`` None: no such term)."""
    if not 0.0 <= taste_weight <= 1.0:
        raise ValueError(f"taste_weight: must be within [0, 1], got {taste_weight!r}")
    if not affinity_weight >= 0.0:
        raise ValueError(f"affinity_weight: must be >= 0, got {affinity_weight!r}")
    blended = taste_weight * taste + (1.0 - taste_weight) * engagement + boost
    return blended if affinity is None else blended + affinity_weight * affinity


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
    diet: Diet | None = None,
    affinity_weight: float = AFFINITY_WEIGHT,
) -> Scores:
    """The scores of the candidates at ``rows`` for ``user`` in ``context`` at ``ts_ms``
    (``diet`` None: no affinity term)."""
    vector = np.zeros(served.vectors.shape[1]) if user_vector is None else user_vector
    vector = np.asarray(vector, np.float64)
    similarity = served.vectors.take(rows, axis=0) @ vector  # also an engagement feature
    taste = sigmoid(similarity + served.bias[rows])
    if scorer is None:
        engagement = taste
    else:
        columns = candidate_columns(user, served, rows, ts_ms, vector, similarity)
        shared = shared_features(user, ts_ms, context)
        engagement = scorer.score_columns(columns, len(rows), shared)
    affinity = None if diet is None else diet.affinity(served, rows)
    blended = blend(taste, engagement, boost, taste_weight, affinity, affinity_weight)
    return Scores(taste, engagement, boost, blended, affinity)


__all__ = ["AFFINITY_WEIGHT", "TASTE_WEIGHT", "Scores", "blend", "rank_in_context"]
