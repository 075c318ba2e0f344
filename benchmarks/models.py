"""Model cost: learning per event, scoring 500 candidates, and the learner's snapshot.

``python -m benchmarks.models [--quick] [--json]`` (``make bench`` runs it). Every
figure is measured in this run, on the simulator's events (:mod:`streams.tools.simulator`:
200 listeners, a catalog of 5,000 tracks, 20,000 events; ``--quick``: 50, 600 and
1,000), each the median of ``repeat`` runs; compare the lines of one run, not
absolutes, on a shared and noisy machine. The keys of ``--json``:

``engagement_learn_predict_us``
    Per engagement candidate (:data:`online_models.engagement.CANDIDATES`), µs per
    example of ``predict_one`` then ``learn_one`` (test, then train), a fresh model
    over the first ``engagement_examples`` examples of the stream. The examples are
    the offline evaluation's (:mod:`online_models.evaluation`): the user's and the
    track's rolling features before the event, and the taste similarity.
``taste_learn_us``
    µs per event of :meth:`~online_models.taste.TasteModel.learn`: the user's step and
    the shared parts' steps for the track heard and 4 negatives, a fresh model over
    every event.
``learner_examples_per_s``
    Examples per second through :meth:`~online_models.learner.Learner.learn_many`, in
    records of 100 as the workers send them, over the examples the workers' code
    (:meth:`~online_models.serving.ServingModels.example`) makes of every event. In
    process, no Kafka and no JSON: the fastest stream one learner can follow.
``score_500_linear_us``, ``score_500_columns_us``, ``score_500_river_loop_us``,
``score_500_speedup``
    The engagement probability of 500 candidate tracks for one user in one context:
    their features built as columns from the user's state and the served tracks'
    arrays (:func:`~online_models.candidates.candidate_columns`), then
    :meth:`~online_models.engagement.LinearScorer.score_columns` (the user's and the
    context's features passed once, as ``shared``), against a Python loop of the
    trained ``logistic`` candidate's ``predict_one`` over the same 500 complete
    examples. Those are built before the clock starts, so the loop is not charged
    for building them: the speed-up is a lower bound. ``score_500_columns_us`` is the
    part of ``score_500_linear_us`` spent building the columns.
``rank_500_taste_us``, ``rank_500_loop_us``, ``rank_500_speedup``
    The same 500 tracks ranked by taste for that user with the served models:
    :meth:`~online_models.serving.ServingModels.rank_by_taste` (one matrix product,
    one sort) against one dot product per track over the same cached track vectors,
    then a sort. Both scorings are checked before they are timed: the benchmark
    stops (:class:`ScoresDiffer`) if any score differs from the loop's by more than
    1e-9, or if all candidates score alike (a check that would prove nothing).
``snapshot_bytes``, ``snapshot_tracks``, ``snapshot_encode_ms``, ``snapshot_load_ms``
    The snapshot of the learner above after every event, signed with a random
    32-byte key: its size, the tracks it holds, the time to encode and sign it, and
    what a worker pays to take it: :func:`~online_models.snapshot.decode_snapshot`
    (verify, then decode), :meth:`~online_models.serving.ServingModels.from_snapshot`
    and, at its first ranking, the served tracks' arrays
    (:class:`~online_models.served_tracks.ServedTracks`) over the catalog.
``events``, ``tracks``, ``engagement_examples``, ``repeat``, ``score_repeat``
    The sizes of this run: runs per learning and snapshot figure (``repeat``), and
    per scoring figure (``score_repeat``, each over many calls).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from features import TrackFeatures, TrackInfo, UserFeatures
from online_models.candidates import Columns, candidate_columns, shared_features
from online_models.engagement import (
    CANDIDATES,
    LinearScorer,
    RiverEngagementModel,
    make_engagement_model,
)
from online_models.example import Example, build_example
from online_models.learner import Learner, TrainingExample
from online_models.recommender import STAGES, ListBuilder, ListRequest
from online_models.serving import ServingModels
from online_models.snapshot import decode_snapshot, encode_snapshot, generate_local_key
from online_models.taste import CatalogView, TasteModel, Vector
from streams.pipeline.learning import EXAMPLES_PER_RECORD
from streams.tools.console import Reporter, Table, write_tables
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import ARTISTS, TRACKS, catalog_of

#: Candidates scored for one user, and the largest gap allowed between two scorings.
N_CANDIDATES = 500
TOLERANCE = 1e-9
#: As the workers run: 4 negatives per event, 16 taste factors, the linear candidate.
NEGATIVES = 4
TASTE_FACTORS = 16
LINEAR = "logistic"

State = TypeVar("State")


@dataclass(frozen=True)
class Sizes:
    """How much one run simulates and how often it times each figure."""

    events: int
    tracks: int
    artists: int
    users: int
    engagement_examples: int  # the slowest candidate costs ~1 ms an example
    repeat: int
    score_repeat: int  # cheap: more runs, for a steadier median on a shared machine
    score_calls: int  # scorings of 500 per timing: one is too short to time alone


FULL = Sizes(20_000, TRACKS, ARTISTS, 200, 2_000, repeat=5, score_repeat=15, score_calls=20)
QUICK = Sizes(1_000, 600, 100, 50, 150, repeat=3, score_repeat=3, score_calls=3)


class ScoresDiffer(AssertionError):
    """The vectorised scores are not the loop's: a speed-up would compare different work."""


@dataclass
class World:
    """Simulated events turned into examples once, and the rolling state they left."""

    catalog: dict[str, TrackInfo]
    engagement: list[tuple[Example, int]] = field(default_factory=list)
    training: list[TrainingExample] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)  # of each training example
    users: dict[str, UserFeatures] = field(default_factory=dict)
    tracks: dict[str, TrackFeatures] = field(default_factory=dict)
    vectors: dict[str, Vector] = field(default_factory=dict)  # each user's taste vector
    last_event: dict[str, Any] = field(default_factory=dict)

    @property
    def taste_view(self) -> CatalogView:
        return {t: (info.artist_id, info.genres) for t, info in self.catalog.items()}

    def fold(self, event: dict[str, Any], serving: ServingModels, track_ids: list[str]) -> None:
        """Both examples of ``event`` from the state before it; then the state learns it."""
        user_id, track_id = event["user_id"], event["track_id"]
        user = self.users.setdefault(user_id, UserFeatures())
        track = self.tracks.setdefault(track_id, TrackFeatures())
        info = self.catalog.get(track_id)
        example, vector = serving.example(
            user, event, info, self.vectors.get(user_id), track_ids, NEGATIVES
        )
        similarity = example.x["taste_similarity"]
        x = build_example(user, event, info, track.read(int(event["ts"])), similarity)
        self.engagement.append((x, example.y))
        self.training.append(example)
        self.user_ids.append(user_id)
        user.update(event, info)
        track.update(event)
        self.vectors[user_id] = vector
        self.last_event = event


def simulate(sizes: Sizes) -> World:
    """The simulator's events folded as a worker folds them (before any snapshot)."""
    config = PopulationConfig(
        seed=3, n_users=sizes.users, n_tracks=sizes.tracks, n_artists=sizes.artists
    )
    population = Population(config)
    world = World(catalog_of(population))
    serving = ServingModels.untrained(TASTE_FACTORS)
    serving.set_catalog(world.catalog)
    track_ids = list(world.catalog)
    for event in population.take(sizes.events):
        world.fold(event, serving, track_ids)
    return world


def median_seconds(
    run: Callable[[State], object], fresh: Callable[[], State], repeat: int
) -> tuple[float, State]:
    """Median time of ``run`` over ``repeat`` states made by ``fresh`` off the clock,
    and the last state (a trained model, to measure further)."""
    timings = []
    for _ in range(repeat):
        state = fresh()
        started = time.perf_counter()
        run(state)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), state


def side_by_side_us(
    contenders: dict[str, Callable[[], object]], repeat: int, calls: int
) -> dict[str, float]:
    """Median µs of one call of each contender, each timing over ``calls`` of them.

    The contenders take turns within each repeat, so a neighbour's load on a shared
    machine weighs on all of them alike and their ratio stays fair.
    """
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, call in contenders.items():
            started = time.perf_counter()
            for _call in range(calls):
                call()
            timings[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(us) for name, us in timings.items()}


def engagement_costs(world: World, sizes: Sizes) -> tuple[dict[str, float], RiverEngagementModel]:
    """µs per example of predict + learn for every candidate; the trained linear one."""
    examples = world.engagement[: sizes.engagement_examples]

    def run(model: RiverEngagementModel) -> None:
        for x, y in examples:
            model.predict_one(x)
            model.learn_one(x, y)

    costs, trained = {}, {}
    for name in CANDIDATES:
        fresh = functools.partial(make_engagement_model, name)
        seconds, trained[name] = median_seconds(run, fresh, sizes.repeat)
        costs[name] = seconds / len(examples) * 1e6
    return costs, trained[LINEAR]


def taste_learn_us(world: World, sizes: Sizes) -> float:
    """µs per event of :meth:`TasteModel.learn` (user and shared steps), every event."""

    def fresh() -> TasteModel:
        model = TasteModel(k=TASTE_FACTORS)
        model.set_catalog(world.taste_view)
        return model

    def run(model: TasteModel) -> None:
        vectors: dict[str, Vector] = {}
        for user_id, example in zip(world.user_ids, world.training, strict=True):
            vector = vectors.get(user_id)
            if vector is None:
                vector = model.new_user_vector(example.track_id)
            vectors[user_id] = model.learn(vector, example.track_id, example.y, example.negatives)

    seconds, _ = median_seconds(run, fresh, sizes.repeat)
    return seconds / len(world.training) * 1e6


def learner_rate(world: World, sizes: Sizes) -> tuple[float, Learner]:
    """Examples/s through :meth:`Learner.learn_many`, in records as the workers send
    them; the learner that learned every event (to snapshot)."""
    per = EXAMPLES_PER_RECORD
    records = [world.training[at : at + per] for at in range(0, len(world.training), per)]

    def fresh() -> Learner:
        learner = Learner(LINEAR, taste_factors=TASTE_FACTORS)
        learner.set_catalog(world.taste_view)
        return learner

    def run(learner: Learner) -> None:
        for offset, record in enumerate(records):
            learner.learn_many(record, partition=0, offset=offset)

    seconds, learner = median_seconds(run, fresh, sizes.repeat)
    return len(world.training) / seconds, learner


def serving_models(blob: bytes, key: bytes, catalog: Mapping[str, TrackInfo]) -> ServingModels:
    """What a worker does with a snapshot record, up to its first ranking."""
    served = ServingModels.from_snapshot(decode_snapshot(blob, key))
    served.set_catalog(catalog)
    _ = served.served
    return served


def snapshot_costs(
    learner: Learner, created_at_ms: int, catalog: Mapping[str, TrackInfo], sizes: Sizes
) -> tuple[dict[str, float], ServingModels]:
    """Size, encode ms and load ms (verify + decode + serving models) of the learner's
    snapshot; the served models it gives."""
    snapshot = learner.snapshot(created_at_ms)
    key = generate_local_key()
    blob = encode_snapshot(snapshot, key)
    us = side_by_side_us(
        {
            "encode": lambda: encode_snapshot(snapshot, key),
            "load": lambda: serving_models(blob, key, catalog),
        },
        sizes.repeat,
        calls=1,
    )
    served = serving_models(blob, key, catalog)
    figures = {
        "snapshot_bytes": len(blob),
        "snapshot_tracks": len(served.taste.tracks.index),
        "snapshot_encode_ms": us["encode"] / 1000.0,
        "snapshot_load_ms": us["load"] / 1000.0,
    }
    return figures, served


def check_same(what: str, fast: ArrayLike, slow: ArrayLike) -> None:
    """:class:`ScoresDiffer` unless ``fast`` equals ``slow`` within :data:`TOLERANCE`
    and the candidates do not all score alike."""
    fast_a, slow_a = np.asarray(fast, dtype=float), np.asarray(slow, dtype=float)
    if fast_a.shape != slow_a.shape or not slow_a.size:
        raise ScoresDiffer(f"{what}: {fast_a.shape} scores vectorised, {slow_a.shape} looped")
    gaps = np.abs(fast_a - slow_a)
    worst = int(np.argmax(gaps))  # the first NaN, if any
    if not gaps[worst] <= TOLERANCE:
        raise ScoresDiffer(
            f"{what}: candidate {worst} scores {fast_a[worst]!r} vectorised and "
            f"{slow_a[worst]!r} looped, more than {TOLERANCE} apart"
        )
    if np.ptp(slow_a) == 0.0:
        raise ScoresDiffer(
            f"{what}: every candidate scores {slow_a[0]!r}; the check proves nothing"
        )


@dataclass(frozen=True)
class Candidates:
    """500 tracks for the last event's user, at its time and in its context."""

    track_ids: list[str]
    user: UserFeatures
    user_vector: Vector
    ts: int
    shared: Example  # the user's and the context's features: the same for all
    full: list[Example]  # each candidate's whole example: what ``predict_one`` takes


def candidates_of(world: World, served: ServingModels) -> Candidates:
    """The candidates' examples, as the worker would score them with ``served`` (the
    track statistics its snapshot serves)."""
    event = world.last_event
    user_id, ts, context = event["user_id"], int(event["ts"]), event.get("context") or {}
    user, vector = world.users[user_id], world.vectors[user_id]
    track_ids = random.Random(7).sample(sorted(world.catalog), N_CANDIDATES)
    full = []
    for track_id in track_ids:
        similarity = float(vector @ served.track_vector(track_id)[0])
        candidate = {"track_id": track_id, "ts": ts, "context": context}
        stats = served.track_stats.get(track_id)
        full.append(build_example(user, candidate, world.catalog[track_id], stats, similarity))
    shared = shared_features(user, ts, context)
    return Candidates(track_ids, user, vector, ts, shared, full)


def engagement_scoring(
    model: RiverEngagementModel, served: ServingModels, candidates: Candidates, sizes: Sizes
) -> dict[str, float]:
    """Candidate columns + ``LinearScorer.score_columns`` against a loop of
    ``predict_one``, checked equal first."""
    scorer = LinearScorer.of(model)
    tracks, c = served.served, candidates

    def columns() -> Columns:
        return candidate_columns(c.user, tracks, tracks.rows(c.track_ids), c.ts, c.user_vector)

    def vectorised() -> NDArray[np.float64]:
        return scorer.score_columns(columns(), len(c.track_ids), c.shared)

    def loop() -> list[float]:
        return [model.predict_one(x) for x in c.full]

    check_same("engagement", vectorised(), loop())
    us = side_by_side_us(
        {
            "score_500_linear_us": vectorised,
            "score_500_columns_us": columns,
            "score_500_river_loop_us": loop,
        },
        sizes.score_repeat,
        sizes.score_calls,
    )
    return {**us, "score_500_speedup": us["score_500_river_loop_us"] / us["score_500_linear_us"]}


def rank_one_at_a_time(
    served: ServingModels, user: Vector, track_ids: Sequence[str]
) -> list[tuple[str, float]]:
    """What :meth:`ServingModels.rank_by_taste` does, one dot product per track."""
    scored = []
    for track_id in track_ids:
        vector, bias = served.track_vector(track_id)
        scored.append((track_id, float(vector @ user) + bias))
    scored.sort(key=lambda pair: -pair[1])  # stable, as rank_by_taste's argsort
    return scored


def taste_ranking(served: ServingModels, candidates: Candidates, sizes: Sizes) -> dict[str, float]:
    """``rank_by_taste`` against :func:`rank_one_at_a_time`, checked equal first."""
    user, track_ids = candidates.user_vector, candidates.track_ids

    def vectorised() -> list[tuple[str, float]]:
        return served.rank_by_taste(user, track_ids)

    def loop() -> list[tuple[str, float]]:
        return rank_one_at_a_time(served, user, track_ids)

    ranked, looped = dict(vectorised()), loop()  # the first call fills the vector cache
    if ranked.keys() != {track_id for track_id, _ in looped}:
        raise ScoresDiffer("taste: the vectorised ranking holds other tracks than the loop's")
    check_same("taste", [ranked[t] for t, _ in looped], [score for _, score in looped])
    us = side_by_side_us(
        {"rank_500_taste_us": vectorised, "rank_500_loop_us": loop},
        sizes.score_repeat,
        sizes.score_calls,
    )
    return {**us, "rank_500_speedup": us["rank_500_loop_us"] / us["rank_500_taste_us"]}


def list_building(served: ServingModels, candidates: Candidates, sizes: Sizes) -> dict[str, Any]:
    """One whole list (:class:`~online_models.recommender.ListBuilder`) for the last
    event's user, trained models over every track: µs per stage, median of runs."""
    trending = [
        (t, float(len(candidates.track_ids) - i)) for i, t in enumerate(candidates.track_ids[:100])
    ]
    request = ListRequest(candidates.user, candidates.user_vector, candidates.ts, {}, "bench")
    builder = ListBuilder()
    policy = served.exploration
    runs = [
        builder.build(request, served, trending, policy=policy).stage_seconds
        for _ in range(sizes.score_repeat)
    ]
    per_stage = {stage: 1e6 * statistics.median(run[stage] for run in runs) for stage in STAGES}
    built = builder.build(request, served, trending, policy=policy)
    return {
        "list_stage_us": per_stage,
        "list_us": sum(per_stage.values()),
        "list_candidates": built.candidates,
        "list_items": len(built.items),
    }


def measure(sizes: Sizes, reporter: Reporter) -> dict[str, Any]:
    """Every figure of the module docstring, JSON-safe."""
    reporter.phase(f"simulating {sizes.events:,} events over {sizes.tracks:,} tracks")
    world = simulate(sizes)
    reporter.phase("engagement candidates: predict + learn")
    engagement, linear = engagement_costs(world, sizes)
    reporter.phase("taste model: learn")
    taste_us = taste_learn_us(world, sizes)
    reporter.phase("learner: learn_many")
    rate, learner = learner_rate(world, sizes)
    reporter.phase("snapshot: encode, verify + decode + serving models")
    snapshot, served = snapshot_costs(learner, int(world.last_event["ts"]), world.catalog, sizes)
    reporter.phase(f"scoring {N_CANDIDATES} candidates: vectorised and one at a time")
    candidates = candidates_of(world, served)
    return {
        "events": sizes.events,
        "tracks": sizes.tracks,
        "engagement_examples": min(sizes.engagement_examples, len(world.engagement)),
        "repeat": sizes.repeat,
        "score_repeat": sizes.score_repeat,
        "engagement_learn_predict_us": engagement,
        "taste_learn_us": taste_us,
        "learner_examples_per_s": rate,
        **engagement_scoring(linear, served, candidates, sizes),
        **taste_ranking(served, candidates, sizes),
        **list_building(served, candidates, sizes),
        **snapshot,
    }


def tables(result: dict[str, Any]) -> list[Table]:
    """The figures as three tables: learning, scoring 500 candidates, the snapshot."""
    n, events = result["engagement_examples"], result["events"]
    learning = [
        (f"engagement {name}: predict + learn", f"{us:,.1f} µs/event", f"first {n:,} examples")
        for name, us in result["engagement_learn_predict_us"].items()
    ]
    learning += [
        (
            "taste model: learn",
            f"{result['taste_learn_us']:,.1f} µs/event",
            f"track + {NEGATIVES} negatives, {events:,} events",
        ),
        (
            "learner: learn_many",
            f"{result['learner_examples_per_s']:,.0f} examples/s",
            f"records of {EXAMPLES_PER_RECORD}, in process",
        ),
    ]
    r = result
    scoring = [
        _scoring_row(
            "engagement: score_columns vs predict_one",
            r["score_500_linear_us"],
            r["score_500_river_loop_us"],
            r["score_500_speedup"],
        ),
        ["  of which the candidates' columns", f"{r['score_500_columns_us']:,.0f}", "", ""],
        _scoring_row(
            "taste: rank_by_taste vs a dot per track",
            r["rank_500_taste_us"],
            r["rank_500_loop_us"],
            r["rank_500_speedup"],
        ),
    ]
    building = [(f"list {stage}", f"{us:,.0f} µs") for stage, us in result["list_stage_us"].items()]
    building.append(("whole list", f"{result['list_us']:,.0f} µs"))
    snapshot = [
        ("size", f"{result['snapshot_bytes']:,} bytes ({result['snapshot_tracks']:,} tracks)"),
        ("encode + sign", f"{result['snapshot_encode_ms']:,.2f} ms"),
        ("load: verify + decode + serving models", f"{result['snapshot_load_ms']:,.2f} ms"),
    ]
    runs = f"median of {result['repeat']} runs"
    return [
        (f"learning ({runs})", ("figure", "value", "over"), learning),
        (
            f"scoring {N_CANDIDATES} candidates for one user "
            f"(µs per scoring, median of {result['score_repeat']} runs)",
            ("what", "vectorised µs", "loop µs", "speed-up"),
            scoring,
        ),
        (
            f"one list of {result['list_items']} from {result['list_candidates']} candidates "
            f"(median of {result['score_repeat']} runs)",
            ("stage", "time"),
            building,
        ),
        (f"the learner's snapshot after {events:,} events ({runs})", ("figure", "value"), snapshot),
    ]


def _scoring_row(label: str, fast_us: float, slow_us: float, speedup: float) -> list[str]:
    return [label, f"{fast_us:,.0f}", f"{slow_us:,.0f}", f"{speedup:,.1f}x"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.models", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, a few seconds (what the test runs); figures are noisier",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, not tables")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = measure(QUICK if args.quick else FULL, Reporter(prefix="benchmarks.models"))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        write_tables(tables(result), sys.stdout, text_columns=("figure", "what", "over"))


if __name__ == "__main__":
    main()
