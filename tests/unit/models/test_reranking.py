"""Re-ranking: the rules' invariants over random candidate sets and configs, then the
rule counts and slots on small hand-built cases.

A candidate set here is what :func:`online_models.reranking.rerank` sees: blended
scores, artist and genre indices, unit taste vectors, the popular-head and
new-artist flags, and a removal reason per candidate; the last section adds which
candidates are back in rotation and each genre's cap by the listener's diet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from online_models.exploration_slot import NEW_ARTIST, TASTE
from online_models.list_evaluation import unconstrained_rerank
from online_models.reranking import (
    DISCOVERY,
    EXPLORATION,
    RANKED,
    REMOVALS,
    RULES,
    CandidateFacts,
    Explore,
    RerankConfig,
    Reranked,
    diet_genre_caps,
    rerank,
)

GENRE_WIDTH = 2
PROPERTY = settings(max_examples=200, deadline=None, database=None)


@dataclass(frozen=True)
class Case:
    """One drawn input of :func:`rerank`: scores, facts, config and explorer kind."""

    scores: NDArray[np.float64]
    facts: CandidateFacts
    config: RerankConfig
    #: None: no exploration slot; else how the stand-in policy fills it
    explorer: str | None

    def run(self) -> Reranked:
        explore = None if self.explorer is None else explorer(self, self.explorer)
        return rerank(self.scores, self.facts, self.config, explore)

    @property
    def kept(self) -> NDArray[np.bool_]:
        return np.array([not reason for reason in self.facts.removed], bool)


def explorer(case: Case, kind: str) -> Explore:
    """A stand-in for the policy: ``taste`` takes the best free candidate,
    ``new_artist`` the best free new-artist one (else the best), ``nothing`` none."""
    scores, new = case.scores, case.facts.new_artist

    def explore(free: NDArray[np.bool_]) -> tuple[int, str] | None:
        if kind == "nothing" or not free.any():
            return None
        if kind == NEW_ARTIST and (free & new).any():
            return int(np.argmax(np.where(free & new, scores, -np.inf))), NEW_ARTIST
        return int(np.argmax(np.where(free, scores, -np.inf))), TASTE

    return explore


def facts_of(
    artist: list[int],
    genres: list[list[int]] | None = None,
    popular: list[bool] | None = None,
    new_artist: list[bool] | None = None,
    removed: list[str] | None = None,
    unit: NDArray[np.float64] | None = None,
) -> CandidateFacts:
    """Facts for hand-built cases; unset columns are "no genre", "not popular", ..."""
    n = len(artist)
    padded = np.full((n, GENRE_WIDTH), -1, np.intp)
    for i, row in enumerate(genres or [[] for _ in artist]):
        padded[i, : len(row)] = row
    return CandidateFacts(
        artist=np.array(artist, np.intp),
        genres=padded,
        unit=np.zeros((n, 1)) if unit is None else unit,
        popular=np.array(popular or [False] * n, bool),
        new_artist=np.array(new_artist or [False] * n, bool),
        removed=removed or [""] * n,
    )


#: no exploration slot, or a policy standing in as :func:`explorer` says
ANY_EXPLORER: st.SearchStrategy[str | None] = st.sampled_from([None, TASTE, NEW_ARTIST, "nothing"])


@st.composite
def cases(
    draw: st.DrawFn,
    explorers: st.SearchStrategy[str | None] = ANY_EXPLORER,
) -> Case:
    """Up to 30 candidates and any valid config. Hypothesis draws the shape (how many
    candidates, artists and genres, how often a flag or a removal is set); a generator
    it seeds draws the columns, which keeps an example cheap. Scores lie on a coarse
    grid, so ties happen; artist ``-1`` is "unknown"."""
    n = draw(st.integers(0, 30))
    artists, genres = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    share = st.sampled_from([0.0, 0.1, 0.3, 0.6, 1.0])
    popular, new, removed = draw(share), draw(share), draw(share)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    genre_rows = [
        rng.choice(genres, size=rng.integers(0, min(genres, GENRE_WIDTH) + 1), replace=False)
        for _ in range(n)
    ]
    raw_unit = rng.integers(-2, 3, size=(n, 3)).astype(np.float64)
    norms = np.linalg.norm(raw_unit, axis=1, keepdims=True)
    facts = facts_of(
        rng.integers(-1, artists, size=n).tolist(),
        [row.tolist() for row in genre_rows],
        (rng.random(n) < popular).tolist(),
        (rng.random(n) < new).tolist(),
        [str(rng.choice(REMOVALS)) if r < removed else "" for r in rng.random(n)],
        np.divide(raw_unit, norms, out=np.zeros_like(raw_unit), where=norms > 0),
    )
    config = RerankConfig(
        size=draw(st.integers(1, 12)),
        max_per_artist=draw(st.integers(1, 4)),
        max_per_genre=draw(st.integers(1, 5)),
        mmr_lambda=draw(st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0])),
        max_popular_share=draw(st.sampled_from([0.0, 0.2, 0.3, 0.5, 1.0])),
        discovery_slot=draw(st.booleans()),
    )
    scores = rng.integers(0, 21, size=n) / 20
    return Case(scores.astype(np.float64), facts, config, draw(explorers))


def picked(ranked: Reranked) -> list[int]:
    return [pick.index for pick in ranked.picks]


# Small cases the properties must hold for, each pinned as an explicit example.
#: size 2, one track a genre; c1 keeps the cap, c2 (the only new artist) shares c0's genre
DISCOVERY_OVER_GENRE_CAP = Case(
    np.array([0.9, 0.8, 0.1]),
    facts_of([0, 1, 2], genres=[[0], [1], [0]], new_artist=[False, False, True]),
    RerankConfig(size=2, max_per_genre=1, mmr_lambda=1.0),
    None,
)
#: size 2, one popular track at most; c1 is not popular, c2 (the only new artist) is
DISCOVERY_OVER_POPULAR_CAP = Case(
    np.array([0.9, 0.8, 0.1]),
    facts_of([0, 1, 2], popular=[True, False, True], new_artist=[False, False, True]),
    RerankConfig(size=2, max_popular_share=0.5, mmr_lambda=1.0),
    None,
)
#: size 2, one track an artist, and every candidate is a0's
EXPLORATION_OVER_ARTIST_CAP = Case(
    np.array([0.9, 0.8, 0.7]), facts_of([0, 0, 0]), RerankConfig(size=2, max_per_artist=1), TASTE
)
#: size 1, a discovery slot due (c1 is by a new artist), the policy draws the taste arm
ONE_ITEM_WITH_EXPLORATION = Case(
    np.array([0.9, 0.1]), facts_of([0, 1], new_artist=[False, True]), RerankConfig(size=1), TASTE
)


# --- invariants ------------------------------------------------------------------------


@PROPERTY
@given(cases())
@example(DISCOVERY_OVER_GENRE_CAP)
@example(EXPLORATION_OVER_ARTIST_CAP)
def test_artist_and_genre_caps_hold_whenever_enough_candidates_respect_them(case: Case) -> None:
    ranked = case.run()
    if ranked.rule_counts["caps_relaxed"] > 0:
        return
    indices = picked(ranked)
    artists = Counter(int(a) for a in case.facts.artist[indices] if a >= 0)
    genres = Counter(int(g) for row in case.facts.genres[indices] for g in row if g >= 0)
    assert max(artists.values(), default=0) <= case.config.max_per_artist, ranked.picks
    assert max(genres.values(), default=0) <= case.config.max_per_genre, ranked.picks


@PROPERTY
@given(cases())
def test_removed_candidates_never_appear(case: Case) -> None:
    ranked = case.run()
    assert all(case.kept[i] for i in picked(ranked))


@PROPERTY
@given(cases())
@example(DISCOVERY_OVER_POPULAR_CAP)
def test_the_popular_head_takes_at_most_its_share_unless_caps_were_relaxed(case: Case) -> None:
    ranked = case.run()
    if ranked.rule_counts["caps_relaxed"] > 0:
        return
    popular = int(case.facts.popular[picked(ranked)].sum())
    assert popular <= case.config.max_popular, ranked.picks


@PROPERTY
@given(cases())
def test_the_discovery_slot_is_filled_when_a_new_artist_candidate_exists(case: Case) -> None:
    new_and_kept = case.facts.new_artist & case.kept
    if not (case.config.discovery_slot and case.config.size >= 2 and new_and_kept.any()):
        return
    ranked = case.run()
    assert case.facts.new_artist[picked(ranked)].any(), ranked.picks


@PROPERTY
@given(cases())
def test_the_list_is_deterministic(case: Case) -> None:
    first, second = case.run(), case.run()
    assert first.picks == second.picks
    assert first.rule_counts == second.rule_counts
    np.testing.assert_array_equal(first.mmr, second.mmr)


@PROPERTY
@given(cases())
@example(ONE_ITEM_WITH_EXPLORATION)
def test_the_list_is_as_long_as_the_candidates_allow(case: Case) -> None:
    ranked = case.run()
    assert len(ranked.picks) == min(case.config.size, int(case.kept.sum())), ranked.picks


@PROPERTY
@given(cases())
def test_no_candidate_is_picked_twice(case: Case) -> None:
    indices = picked(case.run())
    assert len(indices) == len(set(indices))


@PROPERTY
@given(cases(explorers=st.none()))
def test_mmr_lambda_one_with_no_caps_ranks_by_score(case: Case) -> None:
    size = case.config.size
    loose = unconstrained_rerank(size)
    ranked = rerank(case.scores, case.facts, loose)
    kept = [i for i in range(len(case.scores)) if case.kept[i]]
    by_score = sorted(kept, key=lambda i: (-case.scores[i], i))  # ties: the earlier first
    assert picked(ranked) == by_score[:size]
    assert {pick.slot for pick in ranked.picks} <= {RANKED}
    assert sum(ranked.rule_counts[rule] for rule in ("mmr", "caps_relaxed", "discovery")) == 0


@PROPERTY
@given(cases(explorers=st.just(NEW_ARTIST)))
def test_the_exploration_slot_comes_last_and_counts_a_new_artist_arm_as_discovery(
    case: Case,
) -> None:
    ranked = case.run()
    slots = [pick.slot for pick in ranked.picks]
    explored = [pick for pick in ranked.picks if pick.slot == EXPLORATION]
    assert len(explored) <= 1
    if not explored:
        return
    assert slots[-1] == EXPLORATION
    arm = explored[0].arm
    assert arm in (TASTE, NEW_ARTIST)
    discovery_slots = slots.count(DISCOVERY)
    assert ranked.rule_counts["discovery"] == discovery_slots + (arm == NEW_ARTIST)
    if arm == NEW_ARTIST:
        assert case.facts.new_artist[explored[0].index]
        assert discovery_slots == 0  # the exploration pick is the discovery


def test_every_rule_is_counted_even_when_it_never_acted() -> None:
    ranked = rerank(np.array([0.5]), facts_of([0]), RerankConfig(size=3))
    assert list(ranked.rule_counts) == list(RULES)
    assert set(ranked.rule_counts.values()) == {0}


# --- rule counts and slots, by hand ------------------------------------------------------


def test_a_removal_counts_once_per_removed_candidate() -> None:
    removed = ["skipped", "", "blocked", "skipped", "explicit", "recently_played", ""]
    facts = facts_of(list(range(len(removed))), removed=removed)
    ranked = rerank(np.linspace(1.0, 0.4, len(removed)), facts, RerankConfig(size=2))
    counts = ranked.rule_counts
    assert [counts[reason] for reason in REMOVALS] == [1, 2, 1, 1]
    assert picked(ranked) == [1, 6]


def test_an_artist_cap_that_displaces_the_best_candidate_counts_artist_cap() -> None:
    # a0 holds the two best; with one track an artist, a1's takes the second slot.
    facts = facts_of([0, 0, 1])
    config = RerankConfig(size=2, max_per_artist=1, mmr_lambda=1.0, discovery_slot=False)
    ranked = rerank(np.array([0.9, 0.8, 0.7]), facts, config)
    assert picked(ranked) == [0, 2]
    assert ranked.rule_counts["artist_cap"] == 1
    assert ranked.rule_counts["genre_cap"] == ranked.rule_counts["mmr"] == 0


def test_a_genre_cap_and_the_popular_cap_each_count_the_slot_they_change() -> None:
    genre = rerank(
        np.array([0.9, 0.8, 0.7]),
        facts_of([0, 1, 2], genres=[[0], [0], [1]]),
        RerankConfig(size=2, max_per_genre=1, mmr_lambda=1.0, discovery_slot=False),
    )
    assert picked(genre) == [0, 2] and genre.rule_counts["genre_cap"] == 1
    popular = rerank(
        np.array([0.9, 0.8, 0.7, 0.6]),
        facts_of([0, 1, 2, 3], popular=[True, True, False, False]),
        RerankConfig(size=4, max_popular_share=0.25, mmr_lambda=1.0, discovery_slot=False),
    )
    # The second and third slots would have gone to c1 without the cap; the fourth
    # has only c1 left, so the cap is relaxed for it.
    assert picked(popular) == [0, 2, 3, 1]
    assert popular.rule_counts["popular_cap"] == 2 and popular.rule_counts["caps_relaxed"] == 1


def test_similarity_to_chosen_items_counts_mmr_when_it_changes_a_pick() -> None:
    unit = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    config = RerankConfig(size=2, mmr_lambda=0.5, discovery_slot=False)
    ranked = rerank(np.array([0.9, 0.85, 0.7]), facts_of([0, 1, 2], unit=unit), config)
    assert picked(ranked) == [0, 2]  # the twin of the first pick loses to the unlike one
    assert ranked.rule_counts["mmr"] == 1


def test_caps_are_relaxed_popular_first_then_genre_then_artist_and_counted() -> None:
    # Everything is one artist, one genre and popular: every slot after the first
    # needs all three caps relaxed.
    facts = facts_of([0, 0, 0], genres=[[0], [0], [0]], popular=[True] * 3)
    config = RerankConfig(size=3, max_per_artist=1, max_per_genre=1, max_popular_share=0.4)
    ranked = rerank(np.array([0.9, 0.8, 0.7]), facts, config)
    assert picked(ranked) == [0, 1, 2]
    assert ranked.rule_counts["caps_relaxed"] == 2


def test_the_discovery_slot_takes_the_best_new_artist_candidate_once() -> None:
    facts = facts_of([0, 1, 2, 3, 4], new_artist=[False, False, False, True, True])
    config = RerankConfig(size=3, mmr_lambda=1.0)
    ranked = rerank(np.array([0.9, 0.8, 0.7, 0.2, 0.3]), facts, config)
    assert [(p.index, p.slot) for p in ranked.picks] == [(0, RANKED), (1, RANKED), (4, DISCOVERY)]
    assert ranked.rule_counts["discovery"] == 1


def test_no_discovery_slot_when_a_ranked_pick_is_already_by_a_new_artist() -> None:
    facts = facts_of([0, 1, 2, 3], new_artist=[False, True, False, True])
    ranked = rerank(np.array([0.9, 0.8, 0.7, 0.1]), facts, RerankConfig(size=3, mmr_lambda=1.0))
    assert picked(ranked) == [0, 1, 2]
    assert ranked.rule_counts["discovery"] == 0


def test_a_new_artist_exploration_pick_is_the_lists_discovery_and_comes_last() -> None:
    facts = facts_of([0, 1, 2, 3], new_artist=[False, False, False, True])
    case = Case(np.array([0.9, 0.8, 0.7, 0.1]), facts, RerankConfig(size=3), NEW_ARTIST)
    ranked = case.run()
    assert [(p.index, p.slot, p.arm) for p in ranked.picks] == [
        (0, RANKED, None),
        (1, RANKED, None),
        (3, EXPLORATION, NEW_ARTIST),
    ]
    assert ranked.rule_counts["discovery"] == 1


def test_the_exploration_slot_is_filled_by_the_ranked_list_when_the_policy_gives_nothing() -> None:
    facts = facts_of([0, 1, 2])
    case = Case(np.array([0.9, 0.8, 0.7]), facts, RerankConfig(size=3), "nothing")
    assert [(p.index, p.slot) for p in case.run().picks] == [(0, RANKED), (1, RANKED), (2, RANKED)]


# --- where a slot bypasses the caps or the size ------------------------------------------


def test_a_discovery_pick_keeps_the_caps_or_counts_them_relaxed() -> None:
    case = DISCOVERY_OVER_GENRE_CAP
    ranked = case.run()
    genres = Counter(int(g) for g in case.facts.genres[picked(ranked), 0])
    assert max(genres.values()) <= 1 or ranked.rule_counts["caps_relaxed"] > 0, (
        ranked.picks,
        ranked.rule_counts,
    )


def test_a_discovery_pick_keeps_the_popular_share_or_counts_the_caps_relaxed() -> None:
    case = DISCOVERY_OVER_POPULAR_CAP
    ranked = case.run()
    popular = int(case.facts.popular[picked(ranked)].sum())
    assert popular <= case.config.max_popular or ranked.rule_counts["caps_relaxed"] > 0, (
        ranked.picks,
        ranked.rule_counts,
    )


def test_an_exploration_pick_keeps_the_caps_or_counts_them_relaxed() -> None:
    case = EXPLORATION_OVER_ARTIST_CAP
    ranked = case.run()
    artists = Counter(int(a) for a in case.facts.artist[picked(ranked)])
    assert max(artists.values()) <= 1 or ranked.rule_counts["caps_relaxed"] > 0, (
        ranked.picks,
        ranked.rule_counts,
    )


def test_a_one_item_list_with_an_exploration_slot_holds_one_item() -> None:
    ranked = ONE_ITEM_WITH_EXPLORATION.run()
    assert len(ranked.picks) == 1, ranked.picks


# --- the rotation cap and the genre cap by diet -------------------------------------------


@st.composite
def diet_cases(draw: st.DrawFn) -> Case:
    """A :func:`cases` case with some candidates back in rotation, a rotation cap, and
    per-genre caps drawn as :func:`diet_genre_caps` makes them from a diet."""
    case = draw(cases())
    n, genres = len(case.scores), int(case.facts.genres.max(initial=-1)) + 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rotation = rng.random(n) < draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    config = replace(case.config, max_rotation=draw(st.integers(0, 4)))
    shares = rng.dirichlet(np.ones(genres)) if genres else np.empty(0)
    facts = replace(case.facts, rotation=rotation, genre_caps=diet_genre_caps(shares, config))
    return Case(case.scores, facts, config, case.explorer)


@PROPERTY
@given(diet_cases())
def test_the_usual_invariants_hold_with_rotation_and_diet_caps(case: Case) -> None:
    ranked = case.run()
    indices = picked(ranked)
    assert all(case.kept[i] for i in indices)
    assert len(indices) == len(set(indices)) == min(case.config.size, int(case.kept.sum()))
    assert case.run().picks == ranked.picks
    if ranked.rule_counts["caps_relaxed"] == 0:
        artists = Counter(int(a) for a in case.facts.artist[indices] if a >= 0)
        assert max(artists.values(), default=0) <= case.config.max_per_artist
        assert int(case.facts.popular[indices].sum()) <= case.config.max_popular


@PROPERTY
@given(diet_cases())
def test_the_rotation_cap_holds_unless_caps_were_relaxed_and_each_item_is_counted(
    case: Case,
) -> None:
    ranked = case.run()
    assert case.facts.rotation is not None
    in_rotation = int(case.facts.rotation[picked(ranked)].sum())
    assert ranked.rule_counts["rotation"] == in_rotation
    if ranked.rule_counts["caps_relaxed"] == 0:
        assert in_rotation <= case.config.max_rotation, ranked.picks


@PROPERTY
@given(diet_cases())
def test_a_genre_takes_at_most_its_diet_cap_and_each_item_past_the_plain_cap_is_counted(
    case: Case,
) -> None:
    ranked = case.run()
    if ranked.rule_counts["caps_relaxed"] > 0:
        return
    caps = case.facts.genre_caps
    assert caps is not None
    genres = Counter(int(g) for row in case.facts.genres[picked(ranked)] for g in row if g >= 0)
    assert all(count <= caps[genre] for genre, count in genres.items()), (genres, caps)
    beyond = sum(max(0, count - case.config.max_per_genre) for count in genres.values())
    assert ranked.rule_counts["genre_diet"] == beyond


@settings(max_examples=100, deadline=None, database=None)
@given(
    shares=st.lists(st.floats(0.0, 1.0), max_size=12),
    size=st.integers(1, 20),
    max_per_genre=st.integers(1, 8),
)
def test_a_diet_cap_is_never_below_the_plain_cap_and_follows_the_share(
    shares: list[float], size: int, max_per_genre: int
) -> None:
    config = RerankConfig(size=size, max_per_genre=max_per_genre)
    caps = diet_genre_caps(np.array(shares), config)
    assert len(caps) == len(shares)
    assert (caps >= max_per_genre).all()
    assert (caps <= max(size, max_per_genre)).all()
    order = np.argsort(shares, kind="stable")
    assert (np.diff(caps[order]) >= 0).all()  # more of the diet, never a lower cap
    if shares and max(shares) > 0:
        assert caps[int(np.argmax(shares))] == max(size, max_per_genre)  # the favourite


def test_a_rotation_cap_that_displaces_the_best_candidate_counts_rotation_cap() -> None:
    # c0 and c1 are back in rotation; with one such item a list, c2 takes the second slot.
    facts = replace(facts_of([0, 1, 2]), rotation=np.array([True, True, False]))
    config = RerankConfig(size=2, max_rotation=1, mmr_lambda=1.0, discovery_slot=False)
    ranked = rerank(np.array([0.9, 0.8, 0.7]), facts, config)
    assert picked(ranked) == [0, 2]
    assert ranked.rule_counts["rotation_cap"] == 1 and ranked.rule_counts["rotation"] == 1


def test_no_rotation_item_when_max_rotation_is_0_unless_nothing_else_is_left() -> None:
    facts = replace(facts_of([0, 1, 2]), rotation=np.array([True, False, True]))
    config = RerankConfig(size=2, max_rotation=0, mmr_lambda=1.0, discovery_slot=False)
    ranked = rerank(np.array([0.9, 0.8, 0.7]), facts, config)
    assert picked(ranked) == [1, 0]  # c0 only once nothing else is left
    assert ranked.rule_counts["caps_relaxed"] == 1


def test_a_genre_the_diet_allows_takes_slots_the_plain_cap_would_not() -> None:
    # Three g0 tracks first; a plain cap of 1 keeps two of them out, the diet's cap of 3 not.
    facts = facts_of([0, 1, 2, 3], genres=[[0], [0], [0], [1]])
    config = RerankConfig(size=3, max_per_genre=1, mmr_lambda=1.0, discovery_slot=False)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    plain = rerank(scores, facts, config)
    by_diet = rerank(scores, replace(facts, genre_caps=np.array([3, 1])), config)
    assert picked(plain) == [0, 3, 1] and plain.rule_counts["caps_relaxed"] == 1
    assert picked(by_diet) == [0, 1, 2]
    assert by_diet.rule_counts["genre_diet"] == 2 and by_diet.rule_counts["genre_cap"] == 0
