"""The taste model: vectorised scoring, cold start, and learning split between owner and learner."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.taste import TasteModel

CATALOG = {
    "t1": ("a1", ("jazz",)),
    "t2": ("a1", ("jazz", "soul")),
    "t3": ("a2", ("metal",)),
    "t4": ("a3", ()),
}


def trained(seed: int = 1) -> tuple[TasteModel, np.ndarray]:
    model = TasteModel(k=8, seed=seed)
    model.set_catalog(CATALOG)
    user = model.new_user_vector("t1")
    rng = random.Random(seed)
    for _ in range(200):
        negatives = model.sample_negatives(rng, list(CATALOG), 2)
        user = model.learn(user, rng.choice(["t1", "t2"]), 1, negatives)
    return model, user


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["t1", "t2", "t3", "t4", "t9"]), min_size=1, max_size=12))
def test_vectorised_scores_equal_scores_one_at_a_time(track_ids: list[str]) -> None:
    model, user = trained()
    one_by_one = [model.score(user, track_id) for track_id in track_ids]
    assert np.allclose(model.score_many(user, track_ids), one_by_one, rtol=1e-12, atol=1e-12)


def test_a_user_who_plays_jazz_ranks_jazz_above_metal() -> None:
    model, user = trained()
    jazz, soul_jazz, metal = model.score_many(user, ["t1", "t2", "t3"])
    assert min(jazz, soul_jazz) > metal


def test_a_new_track_starts_from_its_artist_and_genres() -> None:
    model, user = trained()
    model.set_catalog({"t5": ("a1", ("jazz",)), "t6": ("a9", ())})
    new_by_known_artist, new_by_unknown_artist = model.score_many(user, ["t5", "t6"])
    assert new_by_known_artist > new_by_unknown_artist


def test_a_new_user_starts_from_the_first_track_they_play() -> None:
    model, _ = trained()
    assert np.array_equal(model.new_user_vector("t3"), model.track_vector("t3"))
    assert not model.new_user_vector(None).any()


def test_learning_in_two_places_equals_learning_in_one() -> None:
    # The owner of the user's partition updates the user; the learner the shared parts.
    together, user = trained(seed=2)
    owner, _ = trained(seed=2)
    learner, _ = trained(seed=2)
    after_together = together.learn(user, "t3", 0)
    after_owner = owner.learn_user(user, "t3", 0)
    learner.learn_shared(user, "t3", 0)
    assert np.array_equal(after_together, after_owner)
    assert np.array_equal(together.track_matrix(list(CATALOG)), learner.track_matrix(list(CATALOG)))


def test_the_users_step_as_one_matrix_product_equals_the_sum_of_single_steps() -> None:
    model = TasteModel(k=6, seed=3)
    model.set_catalog({f"t{i}": (f"a{i % 3}", ("jazz", "rock")[: 1 + i % 2]) for i in range(8)})
    user = model.new_user_vector("t1") + 0.1
    model.bias.update({"t2": 0.4, "t5": -0.3})
    negatives = ["t2", "t5", "t5", "t7"]
    expected = model.learn_user(user, "t3", 1)
    for negative in negatives:
        expected = expected + (model.learn_user(user, negative, 0) - user)
    np.testing.assert_allclose(model.user_step(user, "t3", 1, negatives), expected)
