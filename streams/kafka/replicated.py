"""A compacted topic replicated into every worker: read from the start, then followed.

What every worker must be able to read (the track catalog, the trending lists,
model snapshots) is small and keyed, so each worker keeps all of it in memory instead of
partitioning it. A :class:`ReplicatedTopic` uses a plain aiokafka consumer with
no group: it is assigned every partition, starts at the beginning, and hands
each record to ``apply``. ``caught_up`` is set once it has read up to the high
water mark it saw after its first fetches, which is what readiness waits for.

Offsets come from fetch responses' high water marks rather than ListOffsets:
Tansu answers "latest" with the last batch's base offset + 1 (DESIGN.md, Known
traps), which would declare a catalog loaded one batch early.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.security import security_options
from streams.settings import Settings

log = logging.getLogger("tunestream.replicated")

Apply = Callable[[bytes, bytes | None], None]


class ReplicatedTopic:
    """Follow ``topic`` from its first record, calling ``apply(key, value)`` for each."""

    def __init__(
        self, settings: Settings, topic: str, apply: Apply, max_record_bytes: int = 1_048_576
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.apply = apply
        self.max_record_bytes = max_record_bytes
        self.caught_up = asyncio.Event()
        self.records = 0

    async def run(self) -> None:
        """Read until cancelled; the consumer is always closed."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=max(self.settings.fetch_max_wait_ms, 100),
            # a record larger than one partition's fetch could never be read
            max_partition_fetch_bytes=max(self.max_record_bytes, 1_048_576),
            fetch_max_bytes=max(self.max_record_bytes, 52_428_800),
            **security_options(self.settings),
        )
        await consumer.start()
        try:
            await consumer.topics()  # loads the metadata of every topic, ours included
            partitions = consumer.partitions_for_topic(self.topic) or set()
            if not partitions:
                raise RuntimeError(f"topic {self.topic} does not exist; create it first")
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._apply(record.key, record.value, record.offset, record.partition)
                if not self.caught_up.is_set() and await self._at_end(consumer, tps):
                    log.info("%s: %d records loaded", self.topic, self.records)
                    self.caught_up.set()
        finally:
            await consumer.stop()

    def _apply(self, key: bytes | None, value: bytes | None, offset: int, partition: int) -> None:
        if key is None:
            return  # a compacted topic's records all have keys; skip strays
        try:
            self.apply(key, value)
            self.records += 1
        except Exception:  # one bad record must not stop the catalog for every track
            log.exception(
                "skipping a bad record",
                extra={"topic": self.topic, "partition": partition, "offset": offset},
            )

    async def _at_end(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        for tp in tps:
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < highwater:
                return False
        return True
