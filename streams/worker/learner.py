"""The learner process: training examples in, signed model snapshots out.

``tunestream learner`` runs one :class:`LearnerRole`. It

1. resumes from the newest snapshot on ``model-snapshots`` whose signature
   verifies (a tampered or foreign one is refused and logged; the one before it
   is used), or starts fresh;
2. reads the whole track catalog (the taste model needs each track's artist and
   genres), then follows it;
3. reads ``training-examples`` from every partition, from the offsets its
   snapshot recorded (no consumer group: the snapshot is where it stands), and
   learns each example once (:class:`online_models.learner.Learner`);
4. every ``snapshot_interval_s``, if it learned anything, signs and publishes a
   snapshot and waits for the broker's ack; SIGTERM publishes a last one.

A learner killed between two snapshots loses only what it learned since the
last one, and learns it again from the recorded offsets: no example is learned
twice into a published model, and none is skipped.

Run exactly one learner per application: two would publish competing versions.
Its HTTP server answers ``/metrics``, ``/models`` and ``/livez``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from features import TrackInfo
from online_models.learner import SNAPSHOT_NAME, Learner, read_record
from online_models.snapshot import (
    Snapshot,
    SnapshotRefused,
    decode_snapshot,
    encode_snapshot,
)
from streams.contracts.clock import now_ms
from streams.kafka.replicated import ReplicatedTopic
from streams.kafka.security import security_options
from streams.ops.metrics import LearnerMetrics
from streams.settings import Settings

log = logging.getLogger("tunestream.learner")

#: Examples records read per fetch: learning them takes ~0.1 ms each, so the loop
#: comes back often enough to publish on time.
RECORDS_PER_FETCH = 200


class LearnerRole:
    """One learner: resume, follow the examples, publish snapshots."""

    def __init__(self, settings: Settings, key: bytes, metrics: LearnerMetrics | None = None):
        self.settings = settings
        self.key = key
        self.metrics = metrics or LearnerMetrics()
        self.learner = Learner(
            taste_factors=settings.taste_factors,
            track_half_life_s=settings.popularity_half_life_s,
        )
        self.last_published: Snapshot | None = None
        self.learned_since_snapshot = 0
        self.max_snapshot_bytes = settings.snapshot_max_bytes

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; then one last snapshot, if anything new was learned."""
        await self._resume()
        catalog = ReplicatedTopic(self.settings, self.settings.catalog_topic, self._apply_track)
        catalog_task = asyncio.create_task(catalog.run())
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            max_request_size=self.settings.snapshot_max_bytes,
            acks="all",
            **security_options(self.settings),
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=max(self.settings.fetch_max_wait_ms, 100),
            **security_options(self.settings),
        )
        await producer.start()
        try:
            await consumer.start()
            await _first_of(catalog.caught_up.wait(), stop.wait(), catalog_task)
            await self._assign(consumer)
            await self._learn_until(stop, consumer, producer)
            if self.learned_since_snapshot:
                await self._publish(producer)
        finally:
            catalog_task.cancel()
            await asyncio.gather(catalog_task, return_exceptions=True)
            await consumer.stop()
            await producer.stop()

    async def _resume(self) -> None:
        """Start from the newest verified snapshot on the topic (there may be none)."""
        newest: list[Snapshot] = []

        def consider(key: bytes, value: bytes | None) -> None:
            if value is None:
                return
            try:
                snapshot = decode_snapshot(value, self.key, max_bytes=self.max_snapshot_bytes)
            except SnapshotRefused as refused:
                self.metrics.snapshots_refused_total.labels(reason=refused.reason).inc()
                log.warning("ignoring a model snapshot on the topic: %s", refused)
                return
            if not newest or snapshot.created_at_ms > newest[-1].created_at_ms:
                newest[:] = [snapshot]

        reader = ReplicatedTopic(
            self.settings,
            self.settings.snapshots_topic,
            consider,
            max_record_bytes=self.settings.snapshot_max_bytes,
        )
        task = asyncio.create_task(reader.run())
        try:
            await _first_of(reader.caught_up.wait(), task)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if newest:
            self.learner = Learner.resume(
                newest[0], self.settings.taste_factors, self.settings.popularity_half_life_s
            )
            self.last_published = newest[0]
            log.warning(
                "resuming from snapshot %s (%d examples learned)",
                newest[0].version,
                newest[0].examples_seen,
            )
        else:
            log.warning("no snapshot to resume from: learning from the first example")

    def _apply_track(self, key: bytes, value: bytes | None) -> None:
        if value is not None:
            track = TrackInfo.from_record(orjson.loads(value))
            self.learner.set_catalog({key.decode(): (track.artist_id, track.genres)})

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.settings.training_examples_topic
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            raise RuntimeError(f"topic {topic} does not exist; create it first")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self.learner.next_offsets.get(tp.partition, 0))

    async def _learn_until(
        self, stop: asyncio.Event, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        next_snapshot = time.monotonic() + self.settings.snapshot_interval_s
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=RECORDS_PER_FETCH)
            for records in batches.values():
                for record in records:
                    self._learn_record(record.value, record.partition, record.offset)
            if time.monotonic() >= next_snapshot:
                next_snapshot = time.monotonic() + self.settings.snapshot_interval_s
                if self.learned_since_snapshot:
                    await self._publish(producer)

    def _learn_record(self, value: bytes | None, partition: int, offset: int) -> None:
        try:
            examples, feedback = read_record(value)
        except ValueError as exc:
            self.metrics.bad_records_total.inc()
            log.warning(
                "skipping a bad training-examples record: %s",
                exc,
                extra={"partition": partition, "offset": offset},
            )
            examples, feedback = [], []  # its position still counts: it is not read again
        started = time.perf_counter()
        learned = self.learner.learn_many(examples, partition, offset, feedback)
        self.metrics.learning_seconds_total.inc(time.perf_counter() - started)
        self.learned_since_snapshot += learned
        self.metrics.examples_total.inc(learned)

    async def _publish(self, producer: AIOKafkaProducer) -> None:
        snapshot = self.learner.snapshot(created_at_ms=now_ms())
        blob = encode_snapshot(snapshot, self.key)
        topic = self.settings.snapshots_topic
        await producer.send_and_wait(topic, blob, key=SNAPSHOT_NAME.encode())
        self.last_published = snapshot
        self.learned_since_snapshot = 0
        self.metrics.snapshots_published_total.inc()
        self.metrics.snapshot_bytes.set(len(blob))
        log.info(
            "published snapshot %s: %d examples, %d bytes",
            snapshot.version,
            snapshot.examples_seen,
            len(blob),
        )

    def describe(self) -> dict[str, Any]:
        """``/models`` of the learner: what it learns now and what it last published."""
        last = self.last_published
        return {
            "learning": self.learner.version,
            "examples_seen": self.learner.examples_seen,
            "next_offsets": {str(p): o for p, o in sorted(self.learner.next_offsets.items())},
            "quality": self.learner.quality.to_dict(),
            "last_published": None
            if last is None
            else {
                "version": last.version,
                "created_at_ms": last.created_at_ms,
                "examples_seen": last.examples_seen,
                "metrics": last.metrics,
            },
        }


async def _first_of(*waits: Any) -> None:
    """Return when the first of ``waits`` finishes; re-raise its error if it failed."""
    tasks = [w if isinstance(w, asyncio.Task) else asyncio.ensure_future(w) for w in waits]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        if task not in waits:  # our own wrappers, not a task the caller owns
            task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def serve_http(role: LearnerRole, host: str, port: int) -> web.AppRunner:
    """The learner's ``/metrics``, ``/models`` and ``/livez``."""

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(role.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def models(request: web.Request) -> web.Response:
        return web.json_response(role.describe(), dumps=lambda v: orjson.dumps(v).decode())

    async def livez(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/models", models)
    app.router.add_get("/livez", livez)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_learner(settings: Settings, key: bytes) -> None:
    """Run one learner with its HTTP server until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    role = LearnerRole(settings, key)
    runner = await serve_http(role, settings.web_host, settings.learner_web_port)
    try:
        await role.run(stop)
    finally:
        await runner.cleanup()


__all__ = ["LearnerRole", "run_learner", "serve_http"]
