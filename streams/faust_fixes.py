"""Workarounds for faust-streaming behaviour, each named after the trap it avoids.

They patch Faust's aiokafka driver classes in place and are idempotent, so
:func:`streams.app.create_app` can apply them every time it builds an app.
DESIGN.md (Known traps) explains why each one exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_EPOCHS = "_tunestream_seek_epochs"


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
    """Never hand over a record that was fetched before its partition was sought.

    After a restart Faust resumes the stream partitions, a fetch starts, and only
    then does recovery seek them to the committed offsets. Records of that
    earlier fetch were still being handed over after the seek; each one moved
    Faust's read offset forward, so the records the seek fetched again were
    then dropped as already read: a run of messages was lost (seen as offset 56
    processed, then 135). Kafka's own rule is that a seek discards what was
    fetched before it; this restores that rule for Faust's batches: every seek
    bumps a per-partition epoch, and a batch yields only records of partitions
    whose epoch did not change since the batch was requested. Skipped records
    are fetched again from the sought position, so nothing is lost.
    """
    if consumer_cls.__dict__.get("_tunestream_seek_guard", False):
        return
    getmany = consumer_cls.getmany
    perform_seek = consumer_cls.perform_seek
    seek = consumer_cls.seek
    seek_wait = consumer_cls.seek_wait

    async def guarded_getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        requested = dict(seek_epochs(self))
        epochs = seek_epochs(self)
        async for tp, message in getmany(self, timeout):
            if epochs.get(tp, 0) == requested.get(tp, 0):
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

    consumer_cls.getmany = guarded_getmany
    consumer_cls.perform_seek = guarded_perform_seek
    consumer_cls.seek = guarded_seek
    consumer_cls.seek_wait = guarded_seek_wait
    consumer_cls._tunestream_seek_guard = True
