"""What one message costs tunestream's own code, in process: no Kafka, no Faust.

``python -m benchmarks.pipeline [--quick] [--json] [--profile N]`` (``make bench``
runs it). The worker's planner (:func:`streams.pipeline.message.planner_of`, with
the default settings: learning, exploration and lists on) plans and applies the
seeded simulator's single-event messages, as the worker's ingest agent does:
decode and validate, dedupe, the rolling features, the training example and the
taste step, the exploration credit, the user's state encoded for the changelog,
the clean and by-track records, and a list whenever one is due. The planner's
clock is the events' own (the simulator paces them at 1,000 events/s from 500
listeners, as in ``tunestream bench``'s latency phase), so the refresh debounce
fires as it does under that load. The served snapshot holds a vector for every
track, as in ``tunestream bench``.

What ``tunestream bench`` measures on top of this is the stream framework's own
cost (consume, produce, commit). Compare lines of one run, not absolutes: the
machine is shared. The keys of ``--json``:

``messages``, ``lists``
    Messages planned and lists built in the timed run.
``message_us``
    Median over ``repeat`` runs of the mean µs per message, everything included.
``message_us_without_lists``, ``list_us``
    The same with the lists' share taken out (their own clock, ``BuiltList``'s
    stage times), and the mean µs per list.
``state_encode_us``
    Mean µs per message to encode the user's state for the changelog (timed
    separately over the same states after the run).
``profile`` (with ``--profile N``)
    The ``N`` functions with the most cumulative time under ``cProfile``, for
    finding the next thing to make faster (cProfile slows everything: not a figure).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from features import TrackInfo
from online_models.snapshot import generate_local_key
from online_models.trending import PartitionTop, TrendingBoard
from streams.pipeline.learning import ModelSlot
from streams.settings import Settings
from streams.state.codec import encode_state
from streams.tools.bench import latency_population, starting_snapshot
from streams.tools.console import Table, write_tables
from streams.tools.in_process import Rig, rig_of
from streams.tools.simulator import Population
from streams.tools.state_size import catalog_of

#: As in ``tunestream bench``'s latency phase.
RATE = 1_000.0
START_MS = 1_767_225_600_000


@dataclass(frozen=True)
class Sizes:
    events: int
    warmup: int
    repeat: int


FULL = Sizes(events=10_000, warmup=2_000, repeat=3)
QUICK = Sizes(events=1_000, warmup=200, repeat=1)


def trending_of(population: Population, settings: Settings, at_ms: int) -> TrendingBoard:
    """A board whose partitions rank the catalog by its hidden popularity."""
    board = TrendingBoard(half_life_s=settings.popularity_half_life_s)
    tops = [
        PartitionTop(settings.trending_top_k, settings.popularity_half_life_s)
        for _ in range(settings.partitions)
    ]
    for i, track in enumerate(population.tracks):
        tops[i % len(tops)].offer(track.track_id, track.popularity, at_ms)
    for partition, top in enumerate(tops):
        board.merge(top.snapshot(partition))
    return board


def make_rig(population: Population, settings: Settings) -> Rig:
    """The worker's planner in process (:mod:`streams.tools.in_process`), serving a
    snapshot that knows every track, ranking lists with the population's board."""
    catalog: dict[str, TrackInfo] = catalog_of(population)
    models = ModelSlot(settings.snapshot_key.encode(), settings.taste_factors, catalog)
    models.offer(
        starting_snapshot(
            population, settings.taste_factors, settings.snapshot_key.encode(), START_MS
        )
    )
    return rig_of(settings, catalog, trending_of(population, settings, START_MS), models, START_MS)


def measure(sizes: Sizes, profile_top: int = 0) -> dict[str, Any]:
    settings = Settings(snapshot_key=generate_local_key().hex())
    population = latency_population(RATE, START_MS)
    events = population.take(sizes.warmup + sizes.events)
    warm, timed = events[: sizes.warmup], events[sizes.warmup :]
    per_message, per_list, lists = [], [], 0
    for _ in range(sizes.repeat):
        rig = make_rig(population, settings)
        rig.feed(warm)
        started = time.perf_counter()
        lists, list_s = rig.feed(timed)
        elapsed = time.perf_counter() - started
        per_message.append((elapsed, list_s))
        per_list.append(list_s / max(1, lists))
    elapsed, list_s = sorted(per_message)[len(per_message) // 2]
    states = [rig.planner.load(stored) for stored in rig.stored.values()]
    started = time.perf_counter()
    for state in states:
        encode_state(state.to_state())
    encode_us = 1e6 * (time.perf_counter() - started) / max(1, len(states))
    result: dict[str, Any] = {
        "messages": len(timed),
        "lists": lists,
        "message_us": round(1e6 * elapsed / len(timed), 1),
        "message_us_without_lists": round(1e6 * (elapsed - list_s) / len(timed), 1),
        "list_us": round(1e6 * statistics.median(per_list), 1),
        "state_encode_us": round(encode_us, 1),
        "repeat": sizes.repeat,
    }
    if profile_top:
        rig = make_rig(population, settings)
        rig.feed(warm)
        profiler = cProfile.Profile()
        profiler.runcall(rig.feed, timed)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile_top)
        result["profile"] = out.getvalue()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also print cProfile's top N"
    )
    args = parser.parse_args(argv)
    result = measure(QUICK if args.quick else FULL, args.profile)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [
        (
            "messages planned (one event each) / lists built",
            f"{result['messages']:,} / {result['lists']:,}",
        ),
        ("µs per message, all of it", f"{result['message_us']:,.1f}"),
        ("µs per message without its lists", f"{result['message_us_without_lists']:,.1f}"),
        ("µs per list", f"{result['list_us']:,.1f}"),
        ("µs to encode a user's state for the changelog", f"{result['state_encode_us']:,.1f}"),
    ]
    table: Table = ("tunestream's code per message, in process", ("figure", "measured"), rows)
    write_tables([table], sys.stdout)
    if args.profile:
        print(result["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
