"""Learning on a real broker: examples to the learner, signed snapshots back to every worker.

Timeline of the first test::

    catalog ─► learner ─┐                      ┌─► worker A serves vN ─► kill -9, restart: vN again
    events ─► workers A, B ─► training-examples ┴─► snapshots (signed) ─► worker B serves vN
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from online_models.exploration_slot import ARMS
from online_models.learner import SNAPSHOT_NAME
from online_models.retrieval import SOURCES
from online_models.snapshot import Snapshot, decode_snapshot, encode_snapshot
from online_models.track_stats import served_track_stats
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools.bench import read_topic
from streams.tools.publish import publish_catalog
from tests.factories import make_event
from tests.integration.harness import TopicReader, WorkerProcess

pytestmark = pytest.mark.integration

KEY = "integration-test-snapshot-key-0123456789abcdef"
TRACKS = 40


@pytest.fixture
def learning(settings: Settings) -> Settings:
    return settings.replace(snapshot_key=KEY, snapshot_interval_s=1.0)


@pytest.fixture
def processes(learning: Settings, tmp_path: Path) -> Any:
    started: list[WorkerProcess] = []

    def start(role: str, name: str, settings: Settings | None = None) -> WorkerProcess:
        process = WorkerProcess(settings or learning, tmp_path / f"{name}.log", role=role)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


async def publish_catalog_and_events(settings: Settings, n: int, seed: int) -> None:
    tracks = [
        {"track_id": f"t{i}", "artist_id": f"a{i % 8}", "genres": [("jazz", "rock")[i % 2]]}
        for i in range(TRACKS)
    ]
    await publish_catalog(settings, tracks)
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        for i in range(n):
            user = rng.randrange(20)
            track = rng.randrange(TRACKS // 2) * 2 + user % 2  # each user keeps to one genre
            kind = "skip" if rng.random() < 0.3 else "play"
            await producer.publish(
                make_event(
                    event_id=f"e{seed}-{i}",
                    user_id=f"u{user}",
                    track_id=f"t{track}",
                    type=kind,
                    ts=now - (n - i),
                    ms_played=5_000 if kind == "skip" else 180_000,
                )
            )


async def publish_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        for event in events:
            await producer.publish(event)


async def read_snapshots(settings: Settings, key: bytes) -> list[Snapshot]:
    """Every snapshot on the topic so far, verified, in order."""
    records = await read_topic(settings, settings.snapshots_topic)
    return [decode_snapshot(record.value, key) for record in records]


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, *logs: WorkerProcess) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.role} log\n{p.log_tail()}" for p in logs)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{tails}")


def snapshot_with(settings: Settings, examples: int) -> Callable[[], Snapshot | None]:
    def check() -> Snapshot | None:
        snapshots = asyncio.run(read_snapshots(settings, KEY.encode()))
        return next((s for s in reversed(snapshots) if s.examples_seen == examples), None)

    return check


def serving(worker: WorkerProcess) -> dict[str, Any] | None:
    status, body = worker.get("/models")
    return orjson.loads(body) if status == 200 else None


def serves(worker: WorkerProcess, version: str) -> Callable[[], bool]:
    def check() -> bool:
        models = serving(worker)
        return models is not None and models["serving"]["version"] == version

    return check


def test_snapshots_reach_two_workers_which_serve_the_same_version_and_resume_it_after_kill_9(
    learning: Settings, processes: Any
) -> None:
    asyncio.run(publish_catalog_and_events(learning, 300, seed=1))
    learner = processes("learner", "learner")
    a, b = processes("worker", "worker-a"), processes("worker", "worker-b")
    snapshot = wait_for(snapshot_with(learning, 300), 120, "a snapshot of all 300", learner, a, b)
    assert snapshot.model == SNAPSHOT_NAME and snapshot.version.startswith("logistic-v")
    assert snapshot.metrics["engagement"]["roc_auc"] is not None
    # Nothing more to learn, so no newer version: both workers must come to this one.
    wait_for(serves(a, snapshot.version), 30, f"worker A to serve {snapshot.version}", a)
    wait_for(serves(b, snapshot.version), 30, f"worker B to serve {snapshot.version}", b)
    assert serving(a)["serving"]["examples_seen"] == 300  # type: ignore[index]

    a.kill()
    a.start()
    wait_for(serves(a, snapshot.version), 60, "the restarted worker to resume the snapshot", a)

    async def a_list_ranked_by_the_model() -> dict[str, Any]:
        event = make_event(user_id="u3", track_id="t3", ts=int(time.time() * 1000))
        async with TopicReader(learning, learning.recommendations_topic) as reader:
            async with EventProducer(learning.bootstrap_servers, learning.events_topic) as p:
                await p.publish(event)

            def triggered() -> list[dict[str, Any]]:
                records = reader.records[learning.recommendations_topic]
                return [
                    r.value for r in records if r.value["trigger_event_id"] == event["event_id"]
                ]

            await reader.until(triggered, 60, "the list of u3's new event")
            return triggered()[-1]

    listed = asyncio.run(a_list_ranked_by_the_model())
    version = snapshot.version
    assert listed["model_version"].startswith(f"taste-{version}+engagement-{version}+")
    sources = [item["source"] for item in listed["items"]]
    assert set(sources[:-1]) <= set(SOURCES) and sources[-1] in ARMS  # the exploration slot
    stats = served_track_stats(snapshot.arrays)  # the examples carried type and time
    assert len(stats) == TRACKS and all(s["popularity"] > 0 for s in stats.values())

    # u3 saves the explored track: the credit reaches the learner's one policy.
    explored = listed["items"][-1]
    answer = make_event(
        user_id="u3",
        track_id=explored["track_id"],
        type="save",
        ts=int(time.time() * 1000),
        recommendation_id=listed["recommendation_id"],
    )
    asyncio.run(publish_events(learning, [answer]))

    def credited() -> Snapshot | None:
        snapshots = asyncio.run(read_snapshots(learning, KEY.encode()))
        arm = snapshots[-1].metrics["exploration"].get(explored["source"]) if snapshots else None
        return snapshots[-1] if arm and (arm["mean_reward"] or 0.0) > 0.0 else None

    wait_for(credited, 60, f"a credit of the {explored['source']} arm", learner, a)


def test_a_tampered_truncated_or_foreign_snapshot_is_refused_and_the_old_model_keeps_serving(
    learning: Settings, processes: Any
) -> None:
    asyncio.run(publish_catalog_and_events(learning, 100, seed=2))
    learner = processes("learner", "learner")
    worker = processes("worker", "worker")
    good = wait_for(snapshot_with(learning, 100), 120, "a snapshot of all 100", learner, worker)
    wait_for(serves(worker, good.version), 30, f"the worker to serve {good.version}", worker)
    learner.stop()

    blob = encode_snapshot(good, KEY.encode())
    later = Snapshot(**{**vars(good), "created_at_ms": good.created_at_ms + 1})
    forged = [
        blob[:-1] + bytes([blob[-1] ^ 1]),  # one bit of the tag flipped
        blob[:100],  # truncated
        encode_snapshot(later, b"not-the-key-" * 4),  # newer, but signed with another key
    ]

    async def publish(blobs: list[bytes]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=learning.bootstrap_servers, max_request_size=64 * 2**20
        )
        await producer.start()
        try:
            for data in blobs:
                await producer.send_and_wait(
                    learning.snapshots_topic, data, key=SNAPSHOT_NAME.encode()
                )
        finally:
            await producer.stop()

    asyncio.run(publish(forged))

    def refused() -> dict[str, int] | None:
        models = serving(worker)
        counts = models["snapshots_refused"] if models else {}
        return counts if sum(counts.values()) == len(forged) else None

    counts = wait_for(refused, 30, "three refusals", worker)
    assert counts == {"bad_signature": 2, "truncated": 1}
    assert serving(worker)["serving"]["version"] == good.version  # type: ignore[index]
    _, metrics = worker.get("/metrics")
    assert b'tunestream_model_snapshots_refused_total{reason="bad_signature"} 2.0' in metrics
    assert worker.log_tail().count("model snapshot refused") == len(forged)


def test_a_sigkilled_learner_resumes_from_its_last_snapshot_and_learns_no_example_twice(
    learning: Settings, processes: Any
) -> None:
    asyncio.run(publish_catalog_and_events(learning, 150, seed=3))
    first = processes("learner", "learner-1")
    worker = processes("worker", "worker")
    s1 = wait_for(snapshot_with(learning, 150), 120, "a snapshot of 150", first, worker)
    first.stop()  # nothing new learned since s1: no last snapshot

    # A learner that never publishes on its own learns 150 more, then is killed.
    slow = learning.replace(snapshot_interval_s=3600.0)
    second = processes("learner", "learner-2", slow)
    asyncio.run(publish_catalog_and_events(learning, 150, seed=4))

    def learned_all() -> bool:
        status, body = second.get("/models")
        return status == 200 and orjson.loads(body)["examples_seen"] == 300

    wait_for(learned_all, 120, "the second learner to learn 300", second, worker)
    second.kill()

    third = processes("learner", "learner-3")
    s2 = wait_for(snapshot_with(learning, 300), 120, "a snapshot of 300", third)
    assert f"resuming from snapshot {s1.version}" in third.log_tail()
    assert int(s2.version.rpartition("v")[2]) > int(s1.version.rpartition("v")[2])
    time.sleep(3)  # any double learning would show as a snapshot of more than 300
    snapshots = asyncio.run(read_snapshots(learning, KEY.encode()))
    assert max(s.examples_seen for s in snapshots) == 300
