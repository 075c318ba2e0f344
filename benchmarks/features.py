"""Rolling-feature cost: updates in isolation, inside a worker, and state bytes per user.

``python -m benchmarks.features`` (``make bench`` runs it). Prints figures
measured in this run only:

* µs per ``UserFeatures.update`` / ``TrackFeatures.update`` / ``UserFeatures.read``
  over simulated events (with the catalog);
* bytes of a user's stored state (as the changelog holds it) after 1,000 of
  their events (:mod:`streams.tools.state_size`);
* events/s through a real worker on the embedded broker: ingest, dedupe, user
  features, the by-track topic and track statistics, lists published.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from features import TrackFeatures, UserFeatures
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics
from streams.settings import Settings
from streams.tools.bench import backlog_population, ok_events, start_worker
from streams.tools.publish import publish_catalog
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import STATE_EVENTS, catalog_of, stored_bytes, typical_user


def isolation(n_events: int, repeat: int) -> None:
    population = Population(PopulationConfig(seed=3, n_users=200, n_tracks=5000, n_artists=800))
    catalog = catalog_of(population)
    events = population.take(n_events)

    def users_run() -> None:
        users: dict[str, UserFeatures] = defaultdict(UserFeatures)
        for e in events:
            users[e["user_id"]].update(e, catalog.get(e["track_id"]))

    def tracks_run() -> None:
        tracks: dict[str, TrackFeatures] = defaultdict(TrackFeatures)
        for e in events:
            tracks[e["track_id"]].update(e)

    user = UserFeatures()
    for e in events[:2000]:
        user.update(e, catalog.get(e["track_id"]))
    at = events[-1]["ts"]

    def read_run() -> None:
        for _ in range(1000):
            user.read(at)

    def median_us(run: object, per_run: int) -> float:
        timings = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()  # type: ignore[operator]
            timings.append(time.perf_counter() - start)
        return statistics.median(timings) / per_run * 1e6

    user_us = median_us(users_run, n_events)
    print(f"UserFeatures.update   {user_us:7.1f} µs/event  ({1e6 / user_us:,.0f} events/s)")
    track_us = median_us(tracks_run, n_events)
    print(f"TrackFeatures.update  {track_us:7.1f} µs/event  ({1e6 / track_us:,.0f} events/s)")
    print(f"UserFeatures.read     {median_us(read_run, 1000):7.1f} µs/read")

    # State bytes: the typical active user (what `tunestream bench` reports) over a
    # few simulated worlds, and the squeezed user whose dedupe memory is full.
    sizes = [stored_bytes(typical_user(seed=seed)) for seed in (3, 4, 5, 6)]
    print(
        f"stored state of a heavy listener after {STATE_EVENTS:,} events (4 seeds): "
        f"{', '.join(f'{size:,}' for size in sizes)} bytes (deflated JSON)"
    )
    squeezed = stored_bytes(typical_user(clock="stream"))
    print(f"the same events within minutes (dedupe memory full): {squeezed:,} bytes")


def in_worker(n_events: int) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        settings = Settings.from_env(
            {}, broker=broker.bootstrap_servers, data_dir=data_dir, web_port=port
        )
        asyncio.run(ensure_topics(settings))
        population = backlog_population(n_events)
        asyncio.run(publish_catalog(settings, (t.to_dict() for t in population.tracks)))
        worker, _ = start_worker(settings, Path(data_dir) / "worker.log")
        try:

            async def publish() -> None:
                async with EventProducer(settings.bootstrap_servers, settings.events_topic) as p:
                    await p.publish_many(population.take(n_events))

            started = time.perf_counter()
            asyncio.run(publish())
            published = time.perf_counter() - started
            while ok_events(port) < n_events:
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            worker.stop()
    print(
        f"worker: {n_events:,} events in {elapsed:.1f} s = {n_events / elapsed:,.0f} events/s "
        f"(publishing took {published:.1f} s; one worker, 2-core machine, Tansu)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run (20000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (5)")
    parser.add_argument("--no-worker", action="store_true", help="skip the worker measurement")
    args = parser.parse_args()
    isolation(args.events, args.repeat)
    if not args.no_worker:
        in_worker(args.events)


if __name__ == "__main__":
    main()
