"""``tunestream simulate --closed-loop --live``: the closed-loop listeners against the real
pipeline, through Kafka.

The listeners of :mod:`streams.tools.closed_loop` publish their events to the events topic
and read their lists from the ``recommendations`` topic (the newest per user): they read
what the worker published, and every event of a track taken from a list carries that
list's ``recommendation_id``. With the embedded broker (no ``--broker``), a broker, a
learner and a worker are started here, as ``tunestream demo`` does; with ``--broker``, a
worker (and a learner) must already run against it.

Event time is the simulated clock: the run's days end two days before today (midnight
UTC), so every event is in the past for the worker. The simulation advances in ticks of
:data:`TICK_MS` of event time: every track started in the tick is listened to, the tick's
events are published (one message per listener), then the listeners wait, at most
``list_wait_s``, for the list each of their messages triggers. A list that has not come by
then is read at the next tick. Simulated time runs some thousand times faster than the
wall clock, so the worker started here refreshes lists every
:data:`LIVE_REFRESH_INTERVAL_S` (``TUNESTREAM_REFRESH_INTERVAL_S``) rather than every 2 s.

Users and events are named after a tag of the run (the wall clock), so a second run on the
same broker meets none of the first's state. Not deterministic: the worker's timing decides
which list a listener reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from features.errors import TunestreamError
from streams.contracts.clock import now_ms
from streams.kafka.producer import EventProducer
from streams.kafka.security import security_options
from streams.settings import Settings
from streams.tools.closed_loop import (
    ClosedLoop,
    ClosedLoopConfig,
    Progress,
    make_listeners,
    make_world,
    run_policy,
)
from streams.tools.editorial_demo import demo_editorial_sets
from streams.tools.listeners import Context
from streams.tools.local_pipeline import local_pipeline
from streams.tools.loop_policies import TUNESTREAM, Event
from streams.tools.publish import publish_catalog, publish_editorial

#: Event time one tick of the live loop covers.
TICK_MS: Final = 5 * 60 * 1000
#: The refresh interval of the worker a live run starts.
LIVE_REFRESH_INTERVAL_S: Final = 0.05
_DAY_MS: Final = 86_400_000


class LiveLoopError(TunestreamError):
    """The live loop could not run (a child died, the worker never became ready)."""


@dataclass
class LivePolicy:
    """The tunestream policy through Kafka: events buffered for the tick, lists as read."""

    name: str = TUNESTREAM
    outbox: list[Event] = field(default_factory=list)
    #: each user's newest list read from the topic: (recommendation_id, track ids)
    latest: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: every recommendation_id read from the topic, and the ids the events carried
    read_ids: set[str] = field(default_factory=set)
    carried_ids: list[str] = field(default_factory=list)
    lists_read: int = 0
    waits_timed_out: int = 0

    def lists_for(
        self, user_id: str, context: Context, now_ms: int
    ) -> tuple[str | None, list[str]]:
        latest = self.latest.get(user_id)
        return (None, []) if latest is None else (latest[0], list(latest[1]))

    def observe(self, events: Sequence[Event]) -> None:
        self.outbox.extend(events)
        self.carried_ids.extend(
            str(e["recommendation_id"]) for e in events if "recommendation_id" in e
        )

    def take(self, record: dict[str, Any]) -> None:
        """A list read from the topic."""
        list_id = str(record["recommendation_id"])
        items = [str(item["track_id"]) for item in record["items"]]
        self.latest[str(record["user_id"])] = (list_id, items)
        self.read_ids.add(list_id)
        self.lists_read += 1


@dataclass
class LiveRun:
    """The result (as :func:`~streams.tools.closed_loop.run_closed_loop`'s) and what the
    live policy saw."""

    result: dict[str, Any]
    policy: LivePolicy
    events_published: int


def live_start_ms(days: int, wall_ms: int) -> int:
    """Midnight UTC ``days + 2`` days before ``wall_ms``'s day: the run ends in the past.

    >>> live_start_ms(1, 3 * 86_400_000 + 5) == 0
    True
    """
    return (wall_ms // _DAY_MS - days - 2) * _DAY_MS


class _Lists:
    """Reads the recommendations topic from its end, keeping the lists of this run's users."""

    def __init__(self, settings: Settings, prefix: str, policy: LivePolicy) -> None:
        self.settings = settings
        self.prefix = prefix.encode()
        self.policy = policy
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=20,
            **security_options(settings),
        )
        self.triggers: dict[str, set[str]] = {}

    async def start(self) -> None:
        await self.consumer.start()
        topic = self.settings.recommendations_topic
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            await self.consumer.topics()  # refresh metadata
            partitions = self.consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise LiveLoopError(f"topic {topic} has no partitions (is it created?)")
        self.consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await self.consumer.seek_to_end()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> None:
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                if record.key is None or not record.key.startswith(self.prefix):
                    continue
                value = orjson.loads(record.value)
                self.policy.take(value)
                waiting = self.triggers.get(str(value["user_id"]))
                if waiting is not None and str(value["trigger_event_id"]) in waiting:
                    del self.triggers[str(value["user_id"])]

    async def wait(self, sent: Sequence[Event], timeout_s: float) -> None:
        """Until a list triggered by one of ``sent`` has come for each of their users."""
        self.triggers = {}
        for event in sent:
            self.triggers.setdefault(str(event["user_id"]), set()).add(str(event["event_id"]))
        deadline = time.monotonic() + timeout_s
        while self.triggers:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                self.policy.waits_timed_out += 1
                return
            await self.poll(min(left_ms, 100))


async def run_live_loop(
    settings: Settings,
    config: ClosedLoopConfig,
    *,
    tag: str | None = None,
    list_wait_s: float = 2.0,
    on_day: Progress | None = None,
) -> LiveRun:
    """The tunestream policy through ``settings``' broker (a worker must run); the other
    policies of ``config`` in process, on the same world and clock."""
    tag = tag or f"cl{config.seed}-{now_ms():x}"
    prefix = f"{tag}-"
    population, catalog = make_world(config)
    records = catalog.records()
    await publish_catalog(settings, records)
    await publish_editorial(settings, demo_editorial_sets(records))
    policy = LivePolicy()
    listeners = make_listeners(config, population, catalog, user_prefix=prefix)
    loop = ClosedLoop(config, catalog, policy, listeners)
    lists = _Lists(settings, prefix, policy)
    published = 0
    await lists.start()
    try:
        async with EventProducer(
            settings.bootstrap_servers,
            settings.events_topic,
            linger_ms=2.0,
            **security_options(settings),
        ) as producer:
            for day in range(config.days):
                loop.start_day(day)
                while (at_ms := loop.next_ms) is not None:
                    loop.step_until(at_ms + TICK_MS)
                    sent, policy.outbox = policy.outbox, []
                    await producer.publish_many(sent)
                    await producer.flush()
                    published += len(sent)
                    await lists.wait(sent, list_wait_s)
                loop.end_day(day)
                if on_day is not None:
                    on_day(TUNESTREAM, day + 1, config.days)
    finally:
        await lists.stop()
    policies: dict[str, Any] = {}
    for name in config.policies:
        if name == TUNESTREAM:
            policies[name] = loop.figures()
        else:
            policies[name] = run_policy(name, config, population, catalog, on_day)
    result = {
        "config": {**config.to_dict(), "mode": "live", "broker": settings.broker},
        "policies": policies,
    }
    return LiveRun(result, policy, published)


def run_live(
    settings: Settings, config: ClosedLoopConfig, on_day: Progress | None = None
) -> LiveRun:
    """:func:`run_live_loop` on ``settings``' broker, or on an embedded broker with a
    learner and a worker started here (stopped on the way out)."""
    config = dataclasses.replace(config, start_ts_ms=live_start_ms(config.days, now_ms()))
    if not settings.embedded:
        return asyncio.run(run_live_loop(settings, config, on_day=on_day))
    settings = settings.replace(refresh_interval_s=LIVE_REFRESH_INTERVAL_S)
    with local_pipeline(settings, error=LiveLoopError) as pipeline:
        return asyncio.run(run_live_loop(pipeline.settings, config, on_day=on_day))


__all__ = [
    "LIVE_REFRESH_INTERVAL_S",
    "TICK_MS",
    "LiveLoopError",
    "LivePolicy",
    "LiveRun",
    "live_start_ms",
    "run_live",
    "run_live_loop",
]
