"""The published lists' evaluation: its metrics on hand-made lists, its sampling, and
the ordering of the policies on the simulator's stream.

The metric tests check figures worked out by hand in each test's comment. The
ordering test replays 20,000 simulated events (about 20 s) and asserts what the
list builder is for: more of the listener's next positive tracks in its lists
than the popularity and BiasedMF baselines, with the artists' exposure less
concentrated than popularity's. It holds since the lists follow the listener's
diet and session, let a genre they play take its share of the list, and bring
their own tracks back into rotation after 10 minutes.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from features import TrackInfo
from online_models.list_evaluation import (
    BIASED_MF,
    NO_RERANK,
    POLICIES,
    POPULARITY,
    RANDOM,
    TUNESTREAM,
    ListEvalConfig,
    ListReplay,
    ListTally,
    count_positives,
    hit_and_ndcg,
    replay_lists,
    sample_every,
    unconstrained_rerank,
)
from online_models.list_quality import ListItem
from streams.tools.eval_report import markdown
from streams.tools.evaluate import (
    LIST_WARMUP_SHARE,
    EvaluateOptions,
    evaluate,
    list_rows,
    report_tables,
)
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import catalog_of

CATALOG = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 5}", (f"g{i % 3}",), 200_000) for i in range(40)}


def item(track_id: str, artist: str = "a0", genres: tuple[str, ...] = ("g0",)) -> ListItem:
    return ListItem(track_id, artist, genres, discovery=False)


def save(i: int, user: str, track: str) -> dict[str, Any]:
    return {"event_id": f"e{i}", "user_id": user, "track_id": track, "ts": i * 60_000,
            "type": "save"}  # fmt: skip


# Metrics on hand-made lists ------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "ndcg"),
    [(1, 1.0), (2, 1 / math.log2(3)), (3, 0.5), (7, 1 / 3), (10, 1 / math.log2(11))],
)
def test_a_hit_at_rank_r_scores_one_over_log2_of_r_plus_1(rank: int, ndcg: float) -> None:
    listed = [f"x{i}" for i in range(1, 11)]
    listed[rank - 1] = "target"
    assert hit_and_ndcg(listed, "target") == (True, pytest.approx(ndcg))


def test_a_track_not_in_the_list_is_no_hit_and_scores_0() -> None:
    assert hit_and_ndcg([f"x{i}" for i in range(10)], "target") == (False, 0.0)
    assert hit_and_ndcg([], "target") == (False, 0.0)


def test_hit_rate_and_ndcg_are_means_over_the_lists() -> None:
    tally = ListTally()
    tally.add([item("t1"), item("t2"), item("t3")], target="t1")  # rank 1: 1.0
    tally.add([item("t1"), item("t2"), item("t3")], target="t3")  # rank 3: 0.5
    tally.add([item("t1"), item("t2"), item("t3")], target="t9")  # absent: 0.0
    tally.add([item("t4"), item("t5"), item("t6")], target="t9")  # absent: 0.0
    figures = tally.figures(catalogue_tracks=12, catalogue_artists=1)
    assert figures["hit_rate_at_10"] == 0.5
    assert figures["ndcg_at_10"] == pytest.approx(1.5 / 4)
    assert figures["lists"] == 4


def test_coverage_diversity_and_discovery_of_known_lists() -> None:
    tally = ListTally()
    # Tracks t1..t4 shown (t1 twice): 4 of a catalogue of 10.
    # List 1: artists a1, a1, a2 (2 distinct); genres rock, pop, jazz (3).
    # List 2: artists a3, None (1 distinct); genres rock (1).
    # Discovery: 1 + 2 of the 5 items.
    tally.add(
        [
            ListItem("t1", "a1", ("rock",), False),
            ListItem("t2", "a1", ("pop",), True),
            ListItem("t3", "a2", ("jazz", "rock"), False),
        ],
        target="t1",
    )
    tally.add([ListItem("t1", "a3", ("rock",), True), ListItem("t4", None, (), True)], "t1")
    figures = tally.figures(catalogue_tracks=10, catalogue_artists=3)
    assert figures["coverage"] == 0.4
    assert figures["distinct_artists"] == 1.5
    assert figures["distinct_genres"] == 2.0
    assert figures["discovery_share"] == 0.6


def test_artist_gini_counts_every_catalogue_artist_and_the_exposed_one_only_those_shown() -> None:
    even, few = ListTally(), ListTally()
    even.add([item(f"t{i}", f"a{i}") for i in range(4)], target="t0")  # 4 artists once each
    few.add([item(f"t{i}", "a0") for i in range(4)], target="t0")  # one artist, 4 times
    # Of a catalogue of 4 artists: [1, 1, 1, 1] is 0; [0, 0, 0, 4] is (n - 1) / n = 0.75.
    assert even.figures(10, 4)["artist_gini"] == 0.0
    assert few.figures(10, 4)["artist_gini"] == 0.75
    # Among the artists shown only, both are even.
    assert even.figures(10, 4)["artist_gini_exposed"] == 0.0
    assert few.figures(10, 4)["artist_gini_exposed"] == 0.0


def test_hits_on_recently_played_tracks_are_left_out_of_the_not_recent_hit_rate() -> None:
    tally = ListTally()
    tally.add([item("t1")], target="t1", recent=True)  # a hit, on a repeat
    tally.add([item("t1")], target="t2")  # a miss
    tally.add([item("t3")], target="t3")  # a hit
    figures = tally.figures(10, 1)
    assert figures["hit_rate_at_10"] == pytest.approx(2 / 3)
    assert figures["hit_rate_at_10_not_recent"] == 0.5


def test_no_list_made_gives_unknown_figures_not_zeros() -> None:
    figures = ListTally().figures(10, 2)
    assert figures["lists"] == 0
    assert figures["hit_rate_at_10"] is None and figures["artist_gini"] is None


# Sampling and the replay ------------------------------------------------------


def test_the_stride_spreads_at_most_max_lists_over_the_positives() -> None:
    assert [sample_every(p, 100) for p in (0, 99, 100, 101, 1_000)] == [1, 1, 1, 2, 10]
    events = [
        {"user_id": "u", "track_id": "t1", "ts": 0, "type": "save"},
        {"user_id": "u", "track_id": "t1", "ts": 1, "type": "skip"},
        {"user_id": "u", "track_id": "nope", "ts": 2, "type": "save"},  # not catalogued
        {"user_id": "u", "track_id": "t2", "ts": 3, "type": "play", "ms_played": 200_000},
        {"user_id": "u", "track_id": "t2", "ts": 4, "type": "play", "ms_played": 10_000},
    ]
    assert count_positives(events, CATALOG) == 2
    assert count_positives(events, CATALOG, warmup_events=1) == 1


def test_lists_are_made_after_the_warm_up_every_nth_positive_up_to_max_lists() -> None:
    events = [save(i, f"u{i % 4}", f"t{i % 9}") for i in range(60)]
    config = ListEvalConfig(size=5, warmup_events=10, sample_every=3, max_lists=12)
    report = replay_lists(events, CATALOG, config)
    # 50 positives after the warm-up; one in 3 is 17, capped at 12.
    assert report["lists_made"] == 12
    assert {f["lists"] for f in report["policies"].values()} == {12}
    assert list(report["policies"]) == list(POLICIES)


def test_a_list_is_made_from_the_users_state_before_the_event() -> None:
    # The same save twice: before the first, t1 is new to the user; before the second,
    # they had just saved it (a repeat, which the builder's lists leave out).
    report = replay_lists([save(0, "u1", "t1"), save(1, "u1", "t1")], CATALOG)
    assert report["lists_made"] == 2
    assert report["repeat_share"] == 0.5
    assert report["policies"][TUNESTREAM]["hit_rate_at_10_not_recent"] is not None


def test_random_and_tunestream_lists_leave_out_the_tracks_played_recently() -> None:
    run = ListReplay(CATALOG, ListEvalConfig(size=10, warmup_events=6, seed=3))
    for i in range(30):
        run.process(save(i, "u1", f"t{i % 6}"))
    # After the warm-up u1 has saved t0..t5, and saves them again and again: none of
    # them is ever listed by these three, so they never hit.
    for name in (RANDOM, TUNESTREAM, NO_RERANK):
        assert run.tallies[name].tracks.isdisjoint({f"t{i}" for i in range(6)}), name
        assert run.tallies[name].hits == 0, name
    assert run.report()["repeat_share"] == 1.0


def test_the_replay_is_deterministic_and_refreshes_the_models_every_refresh_every() -> None:
    events = [save(i, f"u{i % 5}", f"t{(i * 7) % 40}") for i in range(120)]
    config = ListEvalConfig(warmup_events=20, refresh_every=25)
    first, second = replay_lists(events, CATALOG, config), replay_lists(events, CATALOG, config)
    assert first == second
    assert first["snapshots"] == 4


def test_the_unconstrained_rerank_relaxes_every_rule() -> None:
    rules = unconstrained_rerank(10)
    assert (rules.max_per_artist, rules.max_per_genre, rules.mmr_lambda) == (10, 10, 1.0)
    assert (rules.max_popular_share, rules.discovery_slot) == (1.0, False)
    assert rules.max_rotation == 10


@pytest.mark.parametrize(
    "bad", [{"size": 0}, {"sample_every": 0}, {"max_lists": -1}, {"trending_top_k": 5}]
)
def test_a_bad_setting_is_refused_and_named(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ListEvalConfig(**bad)


# The evaluate command's report -------------------------------------------------


def test_evaluate_adds_a_lists_section_and_its_table_and_markdown() -> None:
    fixtures = Path(__file__).parents[2] / "fixtures" / "loaders" / "jsonl"
    options = EvaluateOptions(
        log=(str(fixtures / "events.jsonl"),),
        catalog=str(fixtures / "tracks.csv"),
        models=("logistic",),
    )
    report = evaluate(options)
    lists = report["lists"]
    assert lists["warmup_events"] == int(report["events"] * LIST_WARMUP_SHARE)
    assert list(lists["policies"]) == list(POLICIES)
    assert lists["lists_made"] > 0
    tables = report_tables(report)
    assert len(tables) == 3 and tables[2][2] == list_rows(report)
    md = markdown(report, None)
    assert "## Published lists" in md
    for row in list_rows(report):
        assert "| " + " | ".join(row) + " |" in md
    off = evaluate(dataclasses.replace(options, list_samples=0))
    assert "lists" not in off and len(report_tables(off)) == 2


# The ordering on the simulator's stream ----------------------------------------


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    """The figures of ``tunestream evaluate`` (its seed and world, 20,000 events)."""
    population = Population(
        PopulationConfig(seed=5, n_users=200, n_tracks=2000, n_artists=300, clock="story")
    )
    events, catalog = population.take(20_000), catalog_of(population)
    warmup = int(len(events) * LIST_WARMUP_SHARE)
    stride = sample_every(count_positives(events, catalog, warmup), 2_000)
    config = ListEvalConfig(warmup_events=warmup, sample_every=stride, max_lists=2_000)
    return replay_lists(events, catalog, config)


def test_the_simulated_replay_lists_enough_events(simulated: dict[str, Any]) -> None:
    assert 1_500 <= simulated["lists_made"] <= 2_000
    assert simulated["policies"][RANDOM]["coverage"] > 0.9


def test_tunestream_lists_hit_more_than_popularity_and_biasedmf_with_fairer_exposure(
    simulated: dict[str, Any],
) -> None:
    """Measured at 20k events: hit@10 0.171 against popularity's 0.165 and BiasedMF's
    0.156, artist Gini 0.765 against popularity's 0.793 (see the README). The margin
    on the hit-rate is small: the lists leave out what was heard within the last 10
    minutes, 18% of the positive events with every save among them (a save follows
    its play by seconds), and popularity and BiasedMF hit about half of those."""
    figures = simulated["policies"]
    hit = {name: f["hit_rate_at_10"] for name, f in figures.items()}
    gini = {name: f["artist_gini"] for name, f in figures.items()}
    claims = {
        "hit-rate above popularity's": hit[TUNESTREAM] > hit[POPULARITY],
        "hit-rate above BiasedMF's": hit[TUNESTREAM] > hit[BIASED_MF],
        "artist Gini below popularity's": gini[TUNESTREAM] < gini[POPULARITY],
    }
    broken = [claim for claim, holds in claims.items() if not holds]
    assert not broken, f"tunestream's lists: not {broken}; hit-rate@10 {hit}, artist Gini {gini}"
