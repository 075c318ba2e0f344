"""Workarounds for faust-streaming behaviour, each named after the trap it avoids.

They patch Faust's aiokafka driver classes in place and are idempotent, so
:func:`streams.worker.app.create_app` can apply them every time it builds an app.
DESIGN.md (Known traps) explains why each one exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import recovery as faust_recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

_EPOCHS = "_tunestream_seek_epochs"
_ARRIVED = "_tunestream_epochs_at_arrival"


def tune_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Make Faust's consumer fetch wait configurable.

    faust-streaming hard-codes ``fetch_max_wait_ms=1500`` in its aiokafka driver.
    Tansu answers a waiting fetch by polling, so end-to-end latency follows this
    wait. aiokafka reads the value when the consumer starts, so setting it on the
    freshly built consumer is enough.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tunestream_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    thread._tunestream_original_create = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def seek_epochs(consumer: Any) -> dict[Any, int]:
    """How many times each partition was sought since the consumer was built."""
    epochs: dict[Any, int] | None = getattr(consumer, _EPOCHS, None)
    if epochs is None:
        epochs = {}
        setattr(consumer, _EPOCHS, epochs)
    return epochs


def _bump(consumer: Any, tps: Iterable[Any]) -> None:
    epochs = seek_epochs(consumer)
    for tp in tps:
        epochs[tp] = epochs.get(tp, 0) + 1


def drop_records_fetched_before_a_seek(consumer_cls: Any = faust_aiokafka.Consumer) -> None:
    """Never hand over a record that arrived before its partition was sought.

    Faust hands a fetched batch over record by record, awaiting between them;
    a seek can happen meanwhile (recovery ends with one). The rest of that batch
    was still handed over after the seek, each record moving Faust's read offset
    forward, so the records the seek fetched again were dropped as already read:
    a run of messages was lost. Kafka's rule is that a seek discards what was
    fetched before it; this restores it for Faust's batches. Every seek bumps a
    per-partition epoch, the epochs are noted when a batch arrives, and the
    batch yields only records of partitions whose epoch has not moved since.
    Skipped records are fetched again from the sought position.

    The epochs are noted on arrival, not on request: a seek to the position a
    fetch already started from does not make aiokafka discard that fetch, so
    its records are the sought ones and must be kept.
    """
    if consumer_cls.__dict__.get("_tunestream_seek_guard", False):
        return
    getmany = consumer_cls.getmany
    wait_next_records = consumer_cls._wait_next_records
    perform_seek = consumer_cls.perform_seek
    seek = consumer_cls.seek
    seek_wait = consumer_cls.seek_wait

    async def noted_wait_next_records(self: Any, timeout: float) -> Any:
        batch = await wait_next_records(self, timeout)
        setattr(self, _ARRIVED, dict(seek_epochs(self)))
        return batch

    async def guarded_getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        epochs = seek_epochs(self)
        async for tp, message in getmany(self, timeout):
            if epochs.get(tp, 0) == getattr(self, _ARRIVED, {}).get(tp, 0):
                yield tp, message

    async def guarded_perform_seek(self: Any) -> None:
        _bump(self, self.assignment())
        await perform_seek(self)

    async def guarded_seek(self: Any, partition: Any, offset: int) -> None:
        _bump(self, [partition])
        await seek(self, partition, offset)

    async def guarded_seek_wait(self: Any, partitions: Mapping[Any, int]) -> None:
        _bump(self, partitions)
        await seek_wait(self, partitions)

    consumer_cls._wait_next_records = noted_wait_next_records
    consumer_cls.getmany = guarded_getmany
    consumer_cls.perform_seek = guarded_perform_seek
    consumer_cls.seek = guarded_seek
    consumer_cls.seek_wait = guarded_seek_wait
    consumer_cls._tunestream_seek_guard = True


def seek_again_after_recovery(recovery_cls: Any = faust_recovery.Recovery) -> None:
    """Seek the stream partitions once more when table recovery has finished.

    Faust ends recovery by seeking the stream partitions to their committed
    offsets and *then* resuming flow control, which clears the agents' queues.
    Records fetched in between (the fetcher runs while the seek is awaited)
    are cleared from the queue although Faust counts them as read, so a killed
    worker's successor skipped a run of messages (seen as partition 3 offset 16
    processed, then 44). Seeking again after the clear re-fetches them; what an
    agent already handled in that window comes again as a replay, which dedupe
    recognises by its offset. Costs one seek per rebalance.
    """
    if recovery_cls.__dict__.get("_tunestream_seek_again", False):
        return
    on_recovery_completed = recovery_cls.on_recovery_completed

    async def completed_then_seek(self: Any, generation_id: int = 0) -> None:
        await on_recovery_completed(self, generation_id)
        if self.app.consumer_generation_id == generation_id and self.app.consumer.assignment():
            await self.app.consumer.perform_seek()

    recovery_cls.on_recovery_completed = completed_then_seek
    recovery_cls._tunestream_seek_again = True


def probe_end_offsets_by_fetching(consumer_options: Mapping[str, Any]) -> None:
    """Check the end offsets table recovery stops at by fetching the last batch.

    Faust restores a table by reading its changelog up to the end offsets that
    ListOffsets reports. Tansu reports the last record batch's *base* offset + 1,
    so recovery stopped one batch short: a worker killed right after a few
    table writes came back without them (seen: a track's statistics missing the
    last two events applied before a SIGKILL, whose input offsets had been
    committed). A fetch from the reported end - 1 returns that last batch, and
    its response carries the true high water mark; the larger of the two is
    used. On Apache Kafka both agree, and the probe costs one fetch per recovery.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tunestream_original_highwaters", thread._highwaters)

    async def highwaters(self: Any, partitions: Any) -> Mapping[Any, int]:
        reported = dict(await original(self, partitions))
        return await fetched_end_offsets(consumer_options, reported)

    thread._tunestream_original_highwaters = original  # type: ignore[attr-defined]
    thread._highwaters = highwaters  # type: ignore[method-assign]


async def fetched_end_offsets(
    consumer_options: Mapping[str, Any], reported: dict[Any, int], timeout_s: float = 5.0
) -> dict[Any, int]:
    """``reported`` end offsets, raised to the high water marks a fetch returns."""
    probe = {tp: offset for tp, offset in reported.items() if offset > 0}
    if not probe:
        return reported
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **consumer_options)
    await consumer.start()
    try:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in probe}
        consumer.assign(list(tps))
        for kafka_tp, tp in tps.items():
            consumer.seek(kafka_tp, probe[tp] - 1)
        deadline = asyncio.get_running_loop().time() + timeout_s
        pending = set(tps)
        while pending and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(timeout_ms=200)
            pending = {tp for tp in pending if consumer.highwater(tp) is None}
        corrected = dict(reported)
        for kafka_tp, tp in tps.items():
            corrected[tp] = max(reported[tp], consumer.highwater(kafka_tp) or 0)
        return corrected
    finally:
        await consumer.stop()


def stop_when_the_broker_lost_our_data(stop: Any) -> None:
    """Turn Faust's ``ConsistencyError`` in table recovery into one line and an exit.

    The error means a changelog now ends before offsets this worker had
    already applied: the broker lost data (an embedded broker restarted empty,
    a cluster rebuilt without its volumes). Faust would log a traceback and
    leave a crashed worker behind; ``stop(reason)`` ends the process instead.
    """
    from faust.exceptions import ConsistencyError

    recovery_cls = faust_recovery.Recovery
    original = getattr(recovery_cls, "_tunestream_original_crash", recovery_cls.crash)

    async def crash(self: Any, reason: BaseException) -> None:
        if isinstance(reason, ConsistencyError):
            stop(
                "the broker no longer holds data this worker had applied "
                f"({str(reason).splitlines()[0][:300]}); an embedded broker keeps nothing "
                "across a restart: start the worker again with a fresh state directory"
            )
        await original(self, reason)

    recovery_cls._tunestream_original_crash = original  # type: ignore[attr-defined]
    recovery_cls.crash = crash  # type: ignore[method-assign]
