"""Records straight to the app's aiokafka producer, and table values with their changelog.

Faust sends a record through its topic, channel, future-message and producer
buffer objects before aiokafka sees it; on the worker's path that was some
60-100 µs a record, two to three records a message (the profile of
``tunestream bench``). The records the worker writes are bytes already, keyed and
partitioned by the pipeline, so :class:`DirectSender` hands them to aiokafka's
producer itself. Nothing is lost by the shortcut:

* Faust flushes that same producer before it commits offsets, so no committed
  offset runs ahead of the records of the messages before it;
* records go to aiokafka in the order they are sent (a table's changelog record
  first, then the message's outputs), one accumulator for all of them;
* a record the broker refuses after it was accepted for sending stops the worker
  (``on_failure``): its message cannot be dead-lettered any more, and going on
  would commit past it.

:class:`ChangelogWriter` writes one table value the way Faust's ``table[key] =
value`` does (the store, then the changelog record in the message's partition,
and the persisted offset a RocksDB store keeps), through the sender.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from streams.pipeline.output import Output


class DirectSender:
    """Sends :class:`Output` records with the app's aiokafka producer."""

    def __init__(self, app: Any, on_failure: Callable[[str], None]) -> None:
        self.app = app
        self.on_failure = on_failure

    async def send(self, output: Output) -> asyncio.Future[Any]:
        """Queue ``output`` in the producer; the future is its delivery."""
        headers = list(output.headers.items()) if output.headers else None
        producer = self.app.producer._ensure_producer()  # aiokafka.AIOKafkaProducer
        delivery: asyncio.Future[Any] = await producer.send(
            output.topic, output.value, key=output.key, partition=output.partition, headers=headers
        )
        delivery.add_done_callback(self._delivered)
        return delivery

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            return
        exc = delivery.exception()
        if exc is not None:
            self.on_failure(f"the broker refused a record: {type(exc).__name__}: {exc}")


class ChangelogWriter:
    """``table[key] = value`` for a bytes table, its changelog record sent directly."""

    def __init__(self, table: Any, sender: DirectSender) -> None:
        self.table = table
        self.sender = sender
        self.topic: str = table.changelog_topic.get_topic_name()

    async def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Store ``value`` and send its changelog record to ``partition`` (the partition
        of the message that changed it: table partitions follow the stream's)."""
        self.table.data[key] = value
        delivery = await self.sender.send(Output(self.topic, key, value, partition=partition))
        delivery.add_done_callback(self._persisted)

    def _persisted(self, delivery: asyncio.Future[Any]) -> None:
        # What a RocksDB store keeps so a restart reads the changelog from there on
        # (Faust's Collection._on_changelog_sent); a memory store ignores it.
        if delivery.cancelled() or delivery.exception() is not None:
            return
        metadata = delivery.result()
        self.table.data.set_persisted_offset(metadata.topic_partition, metadata.offset)
