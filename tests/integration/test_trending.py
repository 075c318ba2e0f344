"""Trending is one truth: two workers publish the same ranking, and a restart keeps it.

Timeline::

    two workers share the partitions ─► 300 events over 30 tracks (skewed)
    probe: one fresh user per partition (so both workers answer) ─► their lists agree
    stop both; start one fresh worker ─► its first list ranks the same tracks
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.kafka.producer import EventProducer
from streams.pipeline.by_track import partition_of
from streams.settings import Settings
from tests.factories import make_event
from tests.integration.harness import TopicReader, WorkerProcess
from tests.integration.test_poison_messages import wait_ready

pytestmark = pytest.mark.integration

PROBE_TRACK = "t-probe"  # heard by every probe user: no list excludes a ranked track


def probe_users(partitions: int, round_: int) -> list[str]:
    """One user id per partition of the input topic."""
    users: dict[int, str] = {}
    i = 0
    while len(users) < partitions:
        user = f"probe{round_}-{i}"
        users.setdefault(partition_of(user.encode(), partitions), user)
        i += 1
    return [users[p] for p in sorted(users)]


async def probe(settings: Settings, reader: TopicReader, users: list[str]) -> dict[str, list[str]]:
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        for user in users:
            now = int(time.time() * 1000)
            await producer.publish(make_event(user_id=user, track_id=PROBE_TRACK, ts=now))
        await producer.flush()
    topic = settings.recommendations_topic

    def lists() -> dict[str, list[str]]:
        got = {r.key.decode(): r.value for r in reader.records[topic] if r.key}
        return {u: [i["track_id"] for i in got[u]["items"]] for u in users if u in got}

    await reader.until(lambda: len(lists()) == len(users), 60, "the probe lists")
    return lists()


def list_counts(workers: list[WorkerProcess]) -> list[float]:
    counts = []
    for worker in workers:
        _, body = worker.get("/metrics")
        lines = [
            line
            for line in body.decode().splitlines()
            if line.startswith("tunestream_recommendation_lists_total{")
        ]
        counts.append(sum(float(line.rsplit(" ", 1)[1]) for line in lines))
    return counts


def test_two_workers_publish_the_same_trending_list_and_a_restart_keeps_it(
    settings: Settings, tmp_path: Path
) -> None:
    workers = [WorkerProcess(settings, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            wait_ready(worker, timeout_s=90)

        async def first_phase() -> dict[str, list[str]]:
            async with (
                TopicReader(settings, settings.recommendations_topic) as reader,
                EventProducer(settings.bootstrap_servers, settings.events_topic) as producer,
            ):
                now = int(time.time() * 1000)
                for i in range(300):  # track k is heard about 1/(k+1) as often: a clear order
                    track = f"t{min(int(30 / (1 + i % 30)), 29)}"
                    await producer.publish(make_event(user_id=f"u{i % 40}", track_id=track, ts=now))
                await producer.flush()
                await asyncio.sleep(4 * settings.trending_publish_interval_s + 2)
                before = list_counts(workers)
                lists = await probe(settings, reader, probe_users(settings.partitions, 0))
                after = list_counts(workers)
                assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
                return lists

        lists = asyncio.run(first_phase())
        rankings = {tuple(items) for items in lists.values()}
        assert len(rankings) == 1, lists  # every worker ranks the same tracks, in one order
        [ranking] = rankings
        assert len(ranking) == settings.list_size and PROBE_TRACK not in ranking
    finally:
        for worker in workers:
            worker.stop()

    fresh = WorkerProcess(settings, tmp_path / "fresh.log")
    try:
        fresh.start()
        wait_ready(fresh, timeout_s=90)

        async def after_restart() -> dict[str, list[str]]:
            async with TopicReader(settings, settings.recommendations_topic) as reader:
                return await probe(settings, reader, probe_users(settings.partitions, 1)[:1])

        [restored] = asyncio.run(after_restart()).values()
        assert tuple(restored) == ranking  # the compacted topic kept the ranking
    finally:
        fresh.stop()
