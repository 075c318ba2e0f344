"""The feature API answers what a recomputation from the same events gives, across a kill -9.

Timeline::

    catalog ──► worker ready ──► first 600 simulated events
        ──► every user's and a few tracks' features == recomputed from those events
    next 600 events, the worker SIGKILLed part-way and restarted
        ──► features == recomputed from all 1,200: restored from the changelog,
            replays not folded twice, nothing lost

The recomputation folds each user's events, in event-time order, into a fresh
``UserFeatures`` with no Kafka, no table and no state round trips in between.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import orjson
import pytest

from features import TrackFeatures, TrackInfo, UserFeatureConfig, UserFeatures
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools.publish import publish_catalog
from streams.tools.simulator import Population, PopulationConfig
from tests.integration.harness import WorkerProcess

pytestmark = pytest.mark.integration

N_EVENTS = 1200


def population() -> Population:
    start = int(time.time() * 1000) - 40 * 60_000  # 1,200 events over the last ~25 minutes
    return Population(
        PopulationConfig(
            seed=11,
            n_users=20,
            n_tracks=150,
            n_artists=40,
            start_ts_ms=start,
            events_per_second=0.8,
        )
    )


async def publish(settings: Settings, events: list[dict[str, Any]], then: Any = None) -> None:
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        for i, event in enumerate(events):
            await producer.publish(event)
            if then is not None and i == len(events) // 2:
                await producer.flush()
                await asyncio.sleep(1.0)  # let the worker get into the middle of it
                then()
        await producer.flush()


def recomputed_users(
    events: list[dict[str, Any]], catalog: dict[str, TrackInfo]
) -> dict[str, UserFeatures]:
    users: dict[str, UserFeatures] = defaultdict(lambda: UserFeatures(UserFeatureConfig()))
    for event in sorted(events, key=lambda e: e["ts"]):
        assert users[event["user_id"]].update(event, catalog.get(event["track_id"]))
    return users


def recomputed_tracks(events: list[dict[str, Any]]) -> dict[str, TrackFeatures]:
    tracks: dict[str, TrackFeatures] = defaultdict(TrackFeatures)
    for event in events:
        tracks[event["track_id"]].update(event)
    return tracks


def answer(worker: WorkerProcess, path: str) -> dict[str, Any] | None:
    status, body = worker.get(path)
    return orjson.loads(body) if status == 200 else None


def wait_until_folded(worker: WorkerProcess, expected: dict[str, UserFeatures]) -> None:
    deadline = time.monotonic() + 90
    pending = dict(expected)
    while pending:
        for user, features in list(pending.items()):
            got = answer(worker, f"/users/{user}/features")
            if got is not None and got["events_seen"] >= features.events_seen:
                del pending[user]
        assert time.monotonic() < deadline, f"users not caught up: {sorted(pending)}"
        time.sleep(0.5)


def assert_same(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    else:
        assert actual == expected, where


def compare(
    worker: WorkerProcess,
    events: list[dict[str, Any]],
    catalog: dict[str, Any],
    phase: str,
) -> None:
    users = recomputed_users(events, catalog)
    wait_until_folded(worker, users)
    for user, features in users.items():
        got = answer(worker, f"/users/{user}/features")
        assert got is not None
        expected = orjson.loads(orjson.dumps(features.read(got["as_of_ms"])))
        assert_same({k: got[k] for k in expected}, expected, f"{phase}: {user}")
    tracks = recomputed_tracks(events)
    busiest = sorted(tracks, key=lambda t: -sum(e["track_id"] == t for e in events))[:5]
    deadline = time.monotonic() + 30
    for track in busiest:
        while True:
            got = answer(worker, f"/tracks/{track}/features")
            expected = tracks[track].read(got["as_of_ms"]) if got else None
            try:
                assert got is not None and expected is not None
                assert_same({k: got[k] for k in expected}, expected, f"{phase}: {track}")
                break
            except AssertionError:  # the by-track topic lags the users a little
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def test_feature_api_matches_a_recomputation_before_and_after_a_kill_9(
    settings: Settings, worker: WorkerProcess
) -> None:
    world = population()
    events = world.take(N_EVENTS)
    catalog = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in world.tracks}
    asyncio.run(publish_catalog(settings, (t.to_dict() for t in world.tracks)))
    worker.start()
    first, second = events[: N_EVENTS // 2], events[N_EVENTS // 2 :]
    asyncio.run(publish(settings, first))
    compare(worker, first, catalog, "before the kill")

    asyncio.run(publish(settings, second, then=worker.kill))
    worker.start()
    compare(worker, events, catalog, "after the restart")
