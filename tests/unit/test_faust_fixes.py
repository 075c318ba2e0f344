"""The seek guard: a record fetched before its partition was sought is never handed over.

Timeline of the trap (one partition, committed offset 56)::

    fetch ──► batch 56..60 ──► handing over 56 ──► seek(56) ──► 57..60 must NOT follow
                                                              (the seek fetches them again)

and of the case that must still work::

    fetch from 56 requested ──► seek(56) ──► batch 56..60 arrives ──► all handed over
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.kafka.faust_fixes import (
    contiguous_commits,
    drop_records_fetched_before_a_seek,
    hand_over_without_tasks,
    seek_again_after_recovery,
    seek_epochs,
)


class FakeConsumer:
    """Stands in for Faust's consumer: a getmany over a fixed batch, seeks that record calls."""

    def __init__(self, batch: list[tuple[str, int]]) -> None:
        self.batch = batch
        self.sought: list[Any] = []
        self.seek_while_fetching: Any = None

    async def _wait_next_records(self, timeout: float) -> list[tuple[str, int]]:
        if self.seek_while_fetching is not None:
            await self.seek_while_fetching()
        return self.batch

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[str, int]]:
        for tp, offset in await self._wait_next_records(timeout):
            yield tp, offset

    async def perform_seek(self) -> None:
        self.sought.append("committed")

    async def seek(self, partition: Any, offset: int) -> None:
        self.sought.append((partition, offset))

    async def seek_wait(self, partitions: Any) -> None:
        self.sought.append(dict(partitions))

    def assignment(self) -> set[str]:
        return {"p0", "p1"}


def guarded(batch: list[tuple[str, int]]) -> Any:
    """A FakeConsumer whose class went through the same patch as Faust's consumer."""

    class Guarded(FakeConsumer):
        pass

    drop_records_fetched_before_a_seek(Guarded)
    return Guarded(batch)


async def drain(consumer: Any, seek_after: int | None = None, seek: Any = None) -> list[Any]:
    out = []
    async for record in consumer.getmany(timeout=1.0):
        out.append(record)
        if len(out) == seek_after:
            await seek()
    return out


def test_records_of_a_batch_after_a_seek_to_committed_are_dropped() -> None:
    consumer = guarded([("p0", 56), ("p0", 57), ("p1", 10), ("p0", 58)])
    handed = asyncio.run(drain(consumer, seek_after=1, seek=consumer.perform_seek))
    assert handed == [("p0", 56)]
    assert consumer.sought == ["committed"]


def test_a_seek_of_one_partition_keeps_the_other_partitions_records() -> None:
    consumer = guarded([("p0", 56), ("p0", 57), ("p1", 10), ("p0", 58), ("p1", 11)])
    handed = asyncio.run(drain(consumer, seek_after=1, seek=lambda: consumer.seek("p0", 56)))
    assert handed == [("p0", 56), ("p1", 10), ("p1", 11)]


def test_seek_wait_counts_as_a_seek_of_its_partitions() -> None:
    consumer = guarded([("p0", 1), ("p1", 1), ("p1", 2)])
    handed = asyncio.run(drain(consumer, seek_after=1, seek=lambda: consumer.seek_wait({"p1": 0})))
    assert handed == [("p0", 1)]
    assert seek_epochs(consumer) == {"p1": 1}


def test_a_batch_fetched_after_the_seek_is_handed_over_whole() -> None:
    consumer = guarded([("p0", 56), ("p0", 57)])
    asyncio.run(consumer.perform_seek())
    assert asyncio.run(drain(consumer)) == [("p0", 56), ("p0", 57)]


def test_a_batch_arriving_after_a_seek_to_its_own_position_is_kept() -> None:
    consumer = guarded([("p0", 56), ("p0", 57)])
    consumer.seek_while_fetching = consumer.perform_seek
    assert asyncio.run(drain(consumer)) == [("p0", 56), ("p0", 57)]


def test_the_patch_is_applied_once() -> None:
    class Guarded(FakeConsumer):
        pass

    drop_records_fetched_before_a_seek(Guarded)
    getmany = Guarded.getmany
    drop_records_fetched_before_a_seek(Guarded)
    assert Guarded.getmany is getmany


def test_the_worker_patches_faust_s_own_consumer() -> None:
    drop_records_fetched_before_a_seek()
    assert faust_aiokafka.Consumer.__dict__["_tunestream_seek_guard"] is True


class FakeRecovery:
    """Stands in for Faust's Recovery: completing recovery seeks once, like Faust does."""

    def __init__(self, generation_id: int, assigned: bool = True) -> None:
        consumer = FakeConsumer([])
        consumer.assignment = (lambda: {"p0"}) if assigned else (lambda: set())  # type: ignore[method-assign]
        self.app = type(
            "App", (), {"consumer": consumer, "consumer_generation_id": generation_id}
        )()

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        await self.app.consumer.perform_seek()


def test_recovery_is_followed_by_a_second_seek_after_faust_clears_its_queues() -> None:
    class Patched(FakeRecovery):
        pass

    seek_again_after_recovery(Patched)
    recovery = Patched(generation_id=3)
    asyncio.run(recovery.on_recovery_completed(3))
    assert recovery.app.consumer.sought == ["committed", "committed"]


def test_no_second_seek_when_a_new_rebalance_has_started() -> None:
    class Patched(FakeRecovery):
        pass

    seek_again_after_recovery(Patched)
    recovery = Patched(generation_id=4)
    asyncio.run(recovery.on_recovery_completed(3))
    assert recovery.app.consumer.sought == ["committed"]


def test_recovery_seeks_each_stream_partition_to_where_its_agent_goes_on() -> None:
    class Patched(FakeRecovery):
        pass

    seek_again_after_recovery(Patched)
    recovery = Patched(generation_id=3)
    consumer = recovery.app.consumer
    consumer.app = type(
        "App", (), {"topics": type("T", (), {"acks_enabled_for": staticmethod(bool)})()}
    )()
    commits = contiguous_commits(consumer)
    commits.sought(TP("events", 0), 40)
    commits.arrived(TP("events", 0), 40, 0.0)  # handled: 41 comes next
    consumer.assignment = lambda: {TP("events", 0)}  # type: ignore[method-assign]
    asyncio.run(recovery.on_recovery_completed(3))
    assert consumer.sought == ["committed", {TP("events", 0): 41}]


class FakeService:
    """Faust's consumer as the hand-over sees it: a flow event, a stop flag, wait_first."""

    def __init__(self, suspended: bool = False, stopping: bool = False) -> None:
        self.suspend_flow = asyncio.Event()
        if suspended:
            self.suspend_flow.set()
        self.should_stop = stopping
        self.waited_first = 0

    async def wait_first(self, first: Any, *others: Any, timeout: Any = None) -> str:
        self.waited_first += 1
        await first
        for other in others:
            other.close()
        return "faust's"


def handing_over(**state: bool) -> Any:
    class Patched(FakeService):
        pass

    hand_over_without_tasks(Patched)
    return Patched(**state)


async def delivered(into: list[str]) -> None:
    into.append("delivered")


def test_a_record_is_handed_over_directly_while_the_flow_runs() -> None:
    consumer, seen = handing_over(), []
    flow = consumer.suspend_flow.wait()
    assert asyncio.run(consumer.wait_first(delivered(seen), flow)) is None
    assert (seen, consumer.waited_first) == (["delivered"], 0)
    assert flow.cr_frame is None  # closed, never left pending


def test_a_suspended_or_stopping_consumer_hands_over_as_faust_does() -> None:
    for state in ({"suspended": True}, {"stopping": True}):
        consumer, seen = handing_over(**state), []
        flow = consumer.suspend_flow.wait()
        assert asyncio.run(consumer.wait_first(delivered(seen), flow)) == "faust's"
        assert consumer.waited_first == 1
