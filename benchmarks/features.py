"""Rolling-feature cost: updates in isolation, inside a worker, and state bytes per user.

``python -m benchmarks.features`` (``make bench`` runs it). Prints figures
measured in this run only:

* µs per ``UserFeatures.update`` / ``TrackFeatures.update`` / ``UserFeatures.read``
  over simulated events (with the catalog);
* bytes of a user's stored state (JSON, as the changelog holds it) after 1,000 of
  their events, and the mean over a population;
* events/s through a real worker on the embedded broker: ingest, dedupe, user
  features, the by-track topic and track statistics, lists published.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict

import orjson
from prometheus_client.parser import text_string_to_metric_families

from features import TrackFeatures, TrackInfo, UserFeatures
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics
from streams.settings import Settings, env_name
from streams.state.keyed_state import UserState
from streams.tools.publish import publish_catalog
from streams.tools.simulator import Population, PopulationConfig


def isolation(n_events: int, repeat: int) -> None:
    population = Population(PopulationConfig(seed=3, n_users=200, n_tracks=5000, n_artists=800))
    catalog = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in population.tracks}
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

    # State bytes: the busiest user after 1,000 of their own events, and the mean.
    by_user: dict[str, list[dict]] = defaultdict(list)
    for e in population.take(250_000):  # enough for the busiest users to pass 1,000
        by_user[e["user_id"]].append(e)
    busiest = max(by_user.values(), key=len)[:1000]
    state = UserState.empty()
    for e in busiest:
        state.features.update(e, catalog.get(e["track_id"]))
        state.seen.add(e["event_id"], 0)
    size = len(orjson.dumps(state.to_state()))
    print(f"state of one user after {len(busiest)} events: {size:,} bytes (JSON)")
    sizes = []
    for user_events in by_user.values():
        s = UserState.empty()
        for e in user_events:
            ingest_message_free(s, e, catalog)
        sizes.append(len(orjson.dumps(s.to_state())))
    mean_events = statistics.mean(len(v) for v in by_user.values())
    print(
        f"mean state over {len(sizes)} users ({mean_events:.0f} events each): "
        f"{statistics.mean(sizes):,.0f} bytes"
    )


def ingest_message_free(state: UserState, event: dict, catalog: dict) -> None:
    """What ingest does per event, without the decoder (measured separately)."""
    state.seen.add(event["event_id"], 0)
    state.features.update(event, catalog.get(event["track_id"]))
    if event["type"] != "skip":
        state.remember_track(event["track_id"])


def ok_events(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "tunestream_events_total" and s.labels.get("outcome") == "ok"
    )


def in_worker(n_events: int) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        settings = Settings.from_env({}, broker=broker.bootstrap_servers, data_dir=data_dir)
        asyncio.run(ensure_topics(settings))
        start_ms = int(time.time() * 1000) - 3_600_000
        population = Population(
            PopulationConfig(seed=4, n_users=500, n_tracks=5000, n_artists=800,
                             start_ts_ms=start_ms, events_per_second=n_events / 3000)
        )  # fmt: skip
        asyncio.run(publish_catalog(settings, (t.to_dict() for t in population.tracks)))
        env = dict(os.environ)
        env.update({env_name(k): str(v) for k, v in vars(settings).items()})
        env[env_name("web_port")] = str(port)
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)

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
            worker.terminate()
            worker.wait(30)
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
