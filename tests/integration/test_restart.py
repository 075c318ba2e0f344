"""A worker killed with SIGKILL mid-stream loses nothing and still drops duplicates.

Timeline::

    phase A: 600 events ──► all forwarded and their offsets committed
    phase B: 600 events, published while ──► SIGKILL the worker part-way
    restart: a new worker restores the user table from its changelog
    phase C: re-send every phase-A event (all duplicates) ──► none forwarded again

Faust flushes the producer (changelog included) before it commits offsets, so
whatever lies below a committed offset is remembered after a restart. Events of
phase B past the last commit are replayed: at-least-once delivery may forward
one of those twice, and the test reports how many it did.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools.verify import end_offsets
from tests.factories import make_event
from tests.integration.harness import TopicReader, WorkerProcess, forwarded_ids

pytestmark = pytest.mark.integration


async def committed_total(settings: Settings) -> int:
    """The worker group's committed offsets, read without joining the group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(settings.events_topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        return sum([await consumer.committed(tp) or 0 for tp in tps])
    finally:
        await consumer.stop()


async def end_total(settings: Settings) -> int:
    """The events topic's true end, summed: Tansu's ListOffsets reports the last record
    batch's *base* offset + 1, so under load (more records per batch) it said phase A had
    ended, and was committed, while most of it had not been: the kill then replayed
    phase A, and its replays were taken for forwarded duplicates."""
    return sum((await end_offsets(settings, settings.events_topic)).values())


def events(prefix: str, n: int, users: int = 15) -> list[dict]:
    now = int(time.time() * 1000)
    return [
        make_event(event_id=f"{prefix}{i}", user_id=f"u{i % users}", track_id=f"t{i % 50}", ts=now)
        for i in range(n)
    ]


def test_worker_killed_mid_stream_loses_nothing_and_still_drops_duplicates(
    settings: Settings, worker: WorkerProcess
) -> None:
    phase_a, phase_b = events("a", 600), events("b", 600)
    worker.start()

    async def scenario() -> tuple[TopicReader, int]:
        async with (
            TopicReader(settings, settings.clean_topic) as reader,
            EventProducer(
                settings.bootstrap_servers, settings.events_topic, max_batch_events=5
            ) as producer,
        ):
            clean = settings.clean_topic
            await producer.publish_many(phase_a)
            await producer.flush()
            await reader.until(
                lambda: len(forwarded_ids(reader, clean)) >= 600, 90, "phase A forwarded", worker
            )
            end_a = await end_total(settings)
            deadline = time.monotonic() + 60
            while await committed_total(settings) < end_a:
                assert time.monotonic() < deadline, "phase A offsets never committed"
                await asyncio.sleep(0.2)

            for i, event in enumerate(phase_b):  # publish B while the worker runs ...
                await producer.publish(event)
                if i == 300:
                    await producer.flush()
                    await reader.until(
                        lambda: len(forwarded_ids(reader, clean)) > 650,
                        60,
                        "some of phase B forwarded",
                        worker,
                    )
                    worker.kill()  # ... and kill it in the middle
            await producer.flush()
            before_restart = len(forwarded_ids(reader, clean))

            worker.start()
            await producer.publish_many(dict(e) for e in phase_a)  # all duplicates
            await producer.flush()
            await reader.until(
                lambda: (
                    {e["event_id"] for e in phase_a + phase_b} <= set(forwarded_ids(reader, clean))
                ),
                120,
                "every event forwarded",
                worker,
            )
            # The re-sent phase-A events sit behind phase B in their partitions; wait until the
            # worker has committed past all of them, then read once more.
            end_c = await end_total(settings)
            deadline = time.monotonic() + 60
            while await committed_total(settings) < end_c:
                assert time.monotonic() < deadline, "phase C offsets never committed"
                await asyncio.sleep(0.2)
            await reader.poll()
            await reader.poll()
            return reader, before_restart

    reader, before_restart = asyncio.run(scenario())
    counts = Counter(forwarded_ids(reader, settings.clean_topic))
    assert set(counts) == {e["event_id"] for e in phase_a + phase_b}  # nothing lost, nothing new
    again = sorted({e["user_id"] for e in phase_a if counts[e["event_id"]] != 1})
    assert not again, f"re-sent events of users {again} were forwarded again:\n{worker.log_tail()}"
    # Outputs are at least once: phase-B events processed after the last commit before
    # the kill go out again, once per rebalance that hands their partition back before
    # a commit (under load the dead member's expiry can add a second one: 665 re-sends
    # of 600 events were seen). Reported, not bounded; duplicates of phase A never pass.
    replayed = sum(n - 1 for n in counts.values())
    print(
        f"\nforwarded before the kill: {before_restart}; "
        f"phase-B events forwarded twice across the crash: {replayed}"
    )
