"""The closed-loop listeners and the comparison of policies they drive (no Kafka)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from online_models.list_evaluation import unconstrained_rerank
from streams.pipeline.message import list_config
from streams.settings import Settings
from streams.tools.cli import main
from streams.tools.closed_loop import (
    QUICK,
    SUMMARY_KEYS,
    ClosedLoop,
    ClosedLoopConfig,
    make_listeners,
    make_policy,
    make_world,
    run_closed_loop,
)
from streams.tools.listeners import Catalog, Context, Listener, ListenerParams, SessionTally
from streams.tools.loop_policies import (
    POLICIES,
    TUNESTREAM,
    PlannerPolicy,
    ablation_settings,
    catalog_infos,
)
from streams.tools.simulator import Population, PopulationConfig
from tests.unit.test_cli_errors import one_line_error

TINY = ClosedLoopConfig(days=3, listeners=12, tracks=200, artists=30)
MORNING = Context(hour=8, device="mobile", context_type="playlist")
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world() -> tuple[Population, Catalog]:
    population = Population(PopulationConfig(seed=5, n_users=4, n_tracks=2000, n_artists=300))
    return population, Catalog(population, ListenerParams())


def fresh_listener(world: tuple[Population, Catalog]) -> Listener:
    population, catalog = world
    return Listener(population.users[0], catalog, ListenerParams(), seed=5)


def run_sessions(listener: Listener, tracks_of: Any, sessions: int, rng: random.Random) -> None:
    """``sessions`` daily sessions of 8 tracks, each chosen by ``tracks_of(listener, now)``."""
    for day in range(sessions):
        tally = SessionTally()
        now = day * DAY_MS
        for _ in range(8):
            listener.listen(tracks_of(listener, now, tally), MORNING, now, rng, tally)
            now += 200_000
        listener.end_session(tally)


def test_satisfaction_falls_when_the_same_track_is_played_over_and_over(
    world: tuple[Population, Catalog],
) -> None:
    listener = fresh_listener(world)
    favourite = int(np.argmax(listener.values(MORNING, 0)))
    run_sessions(listener, lambda *_: favourite, sessions=6, rng=random.Random(1))
    assert listener.satisfaction < ListenerParams().s0 - 0.1


def test_satisfaction_rises_with_varied_lists_that_fit(
    world: tuple[Population, Catalog],
) -> None:
    listener = fresh_listener(world)
    catalog = world[1]

    def best_of_another_artist(listener: Listener, now: int, tally: SessionTally) -> int:
        values = listener.values(MORNING, now)
        values[np.isin(catalog.artist_of, list(tally.played_artists))] = -1.0  # one an artist
        return int(np.argmax(values))

    run_sessions(listener, best_of_another_artist, sessions=6, rng=random.Random(1))
    assert listener.satisfaction > ListenerParams().s0 + 0.1


def test_fatigue_lowers_a_repeated_tracks_chance_of_being_played(
    world: tuple[Population, Catalog],
) -> None:
    listener = fresh_listener(world)
    track = int(np.argmax(listener.values(MORNING, 0)))
    fresh = listener.value(track, MORNING, 0)
    rng, tally = random.Random(2), SessionTally()
    now = 0
    for _ in range(4):
        listener._count(track, int(world[1].artist_of[track]), now)  # four plays in an hour
        now += 900_000
    tired = listener.value(track, MORNING, now)
    assert tired < fresh - 0.1
    assert listener.skip_probability(tired) > listener.skip_probability(fresh) + 0.1
    # and it wears off: a month later the track is nearly as welcome as at first
    rested = listener.value(track, MORNING, now + 30 * DAY_MS)
    assert rested > tired and abs(rested - fresh) < 0.05
    listener.listen(track, MORNING, now, rng, tally)
    assert tally.started == 1


def test_the_vector_and_the_single_track_preference_agree(
    world: tuple[Population, Catalog],
) -> None:
    listener = fresh_listener(world)
    rng, tally = random.Random(3), SessionTally()
    for step in range(20):
        listener.listen(listener.own_choice(rng), MORNING, step * 60_000, rng, tally)
    night = Context(hour=23, device="speaker", context_type="radio")
    values = listener.values(night, 3_600_000)
    single = [listener.value(i, night, 3_600_000) for i in range(len(values))]
    assert np.allclose(values, single)


def test_mood_follows_the_context(world: tuple[Population, Catalog]) -> None:
    listener = fresh_listener(world)
    night = Context(hour=2, device="mobile", context_type="playlist")
    car = Context(hour=13, device="car", context_type="radio")
    assert listener.target_energy(night) < listener.target_energy(car)


def test_the_oracle_satisfies_listeners_more_than_random_lists() -> None:
    config = dataclasses.replace(QUICK, policies=("random", "oracle"))
    figures = run_closed_loop(config)["policies"]
    oracle, random_ = figures["oracle"]["summary"], figures["random"]["summary"]
    assert oracle["satisfaction_last_week"] > random_["satisfaction_last_week"] + 0.05
    assert oracle["skip_rate"] < random_["skip_rate"]


def test_the_same_seed_gives_the_same_result_and_another_seed_another() -> None:
    first = run_closed_loop(TINY)
    assert json.dumps(first, sort_keys=True) == json.dumps(run_closed_loop(TINY), sort_keys=True)
    other = run_closed_loop(dataclasses.replace(TINY, seed=8))
    assert other["policies"] != first["policies"]


def test_the_result_has_the_published_shape_and_is_json_safe() -> None:
    result = run_closed_loop(TINY)
    json.dumps(result, allow_nan=False)
    assert set(result) == {"config", "policies"}
    assert list(result["policies"]) == list(POLICIES)
    for figures in result["policies"].values():
        assert set(figures) == {
            "days",
            "skip_rate",
            "save_rate",
            "diversity",
            "return_rate",
            "satisfaction",
            "summary",
        }
        assert figures["days"] == [0, 1, 2]
        assert all(len(figures[key]) == 3 for key in figures if key != "summary")
        assert set(figures["summary"]) == set(SUMMARY_KEYS)
        assert all(0.0 <= s <= 1.0 for s in figures["satisfaction"])


class RecordingPolicy:
    """Hands out numbered lists of the catalog's first tracks and keeps what it gave."""

    name = "recording"

    def __init__(self, track_ids: Sequence[str]) -> None:
        self.track_ids = list(track_ids)
        self.given: dict[str, list[str]] = {}
        self.events: list[dict[str, Any]] = []

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        list_id = f"r{len(self.given)}"
        start = len(self.given) % 50
        self.given[list_id] = self.track_ids[start : start + 10]
        return list_id, self.given[list_id]

    def observe(self, events: Sequence[dict[str, Any]]) -> None:
        self.events.extend(events)


def test_every_event_names_the_list_its_track_came_from() -> None:
    population, catalog = make_world(TINY)
    policy = RecordingPolicy(catalog.track_ids)
    listeners = make_listeners(TINY, population, catalog)
    loop = ClosedLoop(TINY, catalog, policy, listeners)
    for day in range(TINY.days):
        loop.run_day(day)
    from_lists = [e for e in policy.events if "recommendation_id" in e]
    own = [e for e in policy.events if "recommendation_id" not in e]
    assert from_lists and own  # both the lists and the listeners' own picks are heard
    for event in from_lists:
        assert event["track_id"] in policy.given[event["recommendation_id"]]
    by_user: dict[str, list[int]] = {}
    for event in policy.events:
        by_user.setdefault(event["user_id"], []).append(event["ts"])
    assert all(ts == sorted(ts) for ts in by_user.values())  # each listener in event time
    assert len({e["event_id"] for e in policy.events}) == len(policy.events)


def test_the_tunestream_policy_is_the_workers_planner_and_learner() -> None:
    population, catalog = make_world(TINY)
    listeners = make_listeners(TINY, population, catalog)
    policy = make_policy(TUNESTREAM, TINY, catalog, listeners)
    assert isinstance(policy, PlannerPolicy)
    loop = ClosedLoop(TINY, catalog, policy, listeners)
    for day in range(TINY.days):
        loop.run_day(day)
    assert policy.refused == 0  # every event the listeners sent was valid for the worker
    assert policy.lists > 0 and policy.snapshots > 0
    assert policy.slot.current.version.startswith("logistic-v")


def test_the_policies_catalog_carries_each_tracks_content_and_energy(
    world: tuple[Population, Catalog],
) -> None:
    population, catalog = world
    infos = catalog_infos(catalog)
    assert set(infos) == {t.track_id for t in population.tracks}
    for i in (0, 7, 1999):
        vector = infos[catalog.track_ids[i]].content_vector
        assert vector is not None
        np.testing.assert_allclose(vector[:-1], catalog.content[i], atol=1e-4)
        assert vector[-1] == pytest.approx(catalog.energy[i], abs=1e-4)


def test_tunestream_lists_bring_tracks_that_sound_like_what_a_listener_liked() -> None:
    population, catalog = make_world(TINY)
    listeners = make_listeners(TINY, population, catalog)
    policy = make_policy(TUNESTREAM, TINY, catalog, listeners)
    assert isinstance(policy, PlannerPolicy)
    loop = ClosedLoop(TINY, catalog, policy, listeners)
    loop.run_day(0)
    assert policy.sources["sounds_like"] > 0


def test_the_ablation_is_unconstrained_reranking_without_exploration() -> None:
    settings = ablation_settings(Settings())
    assert list_config(settings).rerank == unconstrained_rerank(settings.list_size)
    assert settings.exploration == "off"


def test_a_bad_policy_name_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["simulate", "--closed-loop", "--policies", "tunestream,best"])
    assert "unknown policy best" in line


def test_closed_loop_flags_need_closed_loop(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["simulate", "--days", "3"])
    assert "--days needs --closed-loop" in line


def test_the_command_prints_the_table_and_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--closed-loop",
            "--quick",
            "--days",
            "2",
            "--listeners",
            "8",
            "--policies",
            "tunestream,no-exploration-rerank",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "no-exploration-rerank" in out and "target " in out


def test_the_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--closed-loop",
            "--quick",
            "--days",
            "2",
            "--listeners",
            "5",
            "--policies",
            "random",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and list(result["policies"]) == ["random"]
    assert result["config"]["days"] == 2 and result["config"]["listeners"] == 5
