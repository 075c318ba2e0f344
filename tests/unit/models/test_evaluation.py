"""Offline prequential evaluation on a simulated stream whose listeners have known tastes.

The simulator's listeners skip tracks that fit their taste poorly and choose
tracks by taste and popularity, so a model that learns anything beats the
baselines. The ordering is asserted, never a wall-clock figure.
"""

from __future__ import annotations

from typing import Any

import pytest

from online_models.evaluation import POPULARITY_ONLY, replay
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import catalog_of


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    population = Population(
        PopulationConfig(seed=5, n_users=200, n_tracks=2000, n_artists=300, clock="story")
    )
    return replay(population.take(20_000), catalog_of(population), engagement=["logistic"])


def test_the_engagement_model_learns_well_above_chance_and_beats_popularity_alone(
    report: dict[str, Any],
) -> None:
    engagement = report["engagement"]
    assert engagement["logistic"]["roc_auc"] > 0.7
    assert engagement["logistic"]["roc_auc"] > engagement[POPULARITY_ONLY]["roc_auc"] + 0.1
    assert engagement["logistic"]["log_loss"] < engagement[POPULARITY_ONLY]["log_loss"]


def test_the_taste_model_ranks_the_next_positive_better_than_popularity_and_random(
    report: dict[str, Any],
) -> None:
    hit = {name: figures["hit_rate@10"] for name, figures in report["ranking"].items()}
    assert hit["taste"] > hit["popularity"] > hit["random"]
    assert report["ranking"]["taste"]["events_ranked"] > 1_000
