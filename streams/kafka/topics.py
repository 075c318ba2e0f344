"""The topics tunestream reads and writes, and their creation on a broker.

Topics are created explicitly, before any worker or producer touches them:
a broker that auto-creates a topic on first use picks its own partition count,
and a table's changelog must have as many partitions as its source topic.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from streams.kafka.security import security_options
from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name, partitions and the config it is created with."""

    name: str
    partitions: int
    compacted: bool = False

    def new_topic(self) -> NewTopic:
        configs = {"cleanup.policy": "compact"} if self.compacted else {}
        return NewTopic(self.name, self.partitions, 1, topic_configs=configs)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker needs, with the partitioning DESIGN.md gives them."""
    n = settings.partitions
    return [
        TopicSpec(settings.events_topic, n),
        TopicSpec(settings.clean_topic, n),
        TopicSpec(settings.dlq_topic, n),
        TopicSpec(settings.recommendations_topic, n, compacted=True),
        TopicSpec(settings.catalog_topic, n, compacted=True),
        TopicSpec(settings.editorial_topic, n, compacted=True),
        TopicSpec(settings.track_events_topic, n),
        TopicSpec(settings.trending_topic, n, compacted=True),
        TopicSpec(settings.training_examples_topic, n),
        # One partition: snapshots are few and large, and their order is the point.
        TopicSpec(settings.snapshots_topic, 1, compacted=True),
    ]


async def wait_for_broker(settings: Settings, timeout_s: float = 30.0) -> None:
    """Return once the broker answers; raise ``TimeoutError`` naming it otherwise."""
    deadline = time.monotonic() + timeout_s
    bootstrap_servers = settings.bootstrap_servers
    while True:
        admin = _admin(settings, request_timeout_ms=5000)
        try:
            await admin.start()
            return
        except KafkaConnectionError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Kafka broker answers at {bootstrap_servers}") from None
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


def _admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **security_options(settings), **options
    )


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create the missing topics; return the names created."""
    await wait_for_broker(settings, timeout_s)
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        created = []
        for spec in missing:
            try:
                await admin.create_topics([spec.new_topic()])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another worker won the race
        return created
    finally:
        await admin.close()


async def missing_topics(settings: Settings, names: list[str]) -> list[str]:
    """Those of ``names`` the cluster does not have (in order)."""
    admin = _admin(settings, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        return [name for name in names if name not in existing]
    finally:
        await admin.close()
