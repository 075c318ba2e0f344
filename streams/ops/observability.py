"""What a worker knows about itself, served as ``/metrics``, ``/livez`` and ``/readyz``.

The agent reports each message it starts and finishes; everything else (lag,
recovery, table sizes, readiness) is read from Faust when a probe or a scrape
asks, so an idle worker does no bookkeeping and a scrape always sees the
present. The decisions live in :mod:`streams.ops.health`, the metric declarations
in :mod:`streams.ops.metrics`; this module only connects them to Faust.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, cast

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.ops.broker_watch import BrokerWatch
from streams.ops.health import Progress, Verdict, readiness
from streams.ops.metrics import Metrics
from streams.settings import Settings


class MetricsSensor(faust.Sensor):
    """Faust's hooks for commits and rebalances, turned into metrics."""

    def __init__(self, observer: Observer) -> None:
        super().__init__()
        self.observer = observer

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.observer.metrics.last_commit_timestamp_seconds.set(time.time())

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.observer.metrics.rebalances_total.inc()
        return {}


class Observer:
    """Progress of one worker's input partitions, and the HTTP views that report it."""

    def __init__(
        self, app: faust.App, settings: Settings, metrics: Metrics, tables: Iterable[Any] = ()
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.tables = list(tables)
        self.progress = Progress(settings.stall_after_s, now_s=time.monotonic())
        # partition -> (last processed offset, its Kafka timestamp in seconds)
        self.positions: dict[int, tuple[int, float]] = {}
        self.assigned_at: dict[int, float] = {}
        self.joined = False
        self.newest_event_ms: int | None = None
        #: what else must be in place before serving: a reason -> the event that ends it
        self.prerequisites: dict[str, asyncio.Event] = {}
        self.broker: BrokerWatch | None = None

    # --- reported by the agent ------------------------------------------------------
    def message_started(self) -> None:
        self.progress.started(time.monotonic())

    def message_finished(self, partition: int, offset: int, timestamp_s: float | None) -> None:
        self.progress.finished(time.monotonic())
        self.positions[partition] = (offset, timestamp_s or time.time())
        self.metrics.last_processed_timestamp_seconds.set(time.time())

    def event_time_seen(self, ts_ms: int) -> None:
        if self.newest_event_ms is None or ts_ms > self.newest_event_ms:
            self.newest_event_ms = ts_ms

    # --- consumer group -------------------------------------------------------------
    async def on_assigned(self, sender: Any, assigned: Iterable[Any], **_: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == self.settings.events_topic}
        for partition in set(self.assigned_at) - mine:
            self.forget(partition)
        now = time.time()
        for partition in mine - set(self.assigned_at):
            self.assigned_at[partition] = now
        self.joined = True
        self.progress.idle(time.monotonic())

    def forget(self, partition: int) -> None:
        self.positions.pop(partition, None)
        self.assigned_at.pop(partition, None)
        self.metrics.forget_partition(self.settings.events_topic, partition)

    # --- read on demand ---------------------------------------------------------------
    def refresh(self) -> int:
        """Bring every gauge up to date; return the messages waiting on this worker."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        now = time.time()
        waiting = 0
        for tp in consumer.assignment():
            if tp.topic != self.settings.events_topic:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = self.positions.get(tp.partition)
            next_offset = position[0] + 1 if position else committed.get(tp) or 0
            lag = max(highwater - next_offset, 0)
            since = position[1] if position else self.assigned_at.get(tp.partition, now)
            self.metrics.set_partition_lag(tp.topic, tp.partition, lag, now - since if lag else 0)
            waiting += lag
        self.metrics.assigned_partitions.set(len(self.assigned_at))
        recovery = self._recovery()
        restoring = recovery is not None and not recovery.completed.is_set()
        self.metrics.recovery_in_progress.set(1 if restoring else 0)
        self.metrics.recovery_remaining_records.set(
            recovery.active_remaining_total() if restoring else 0
        )
        self.metrics.ready.set(1 if self.readiness().ok else 0)
        if self.settings.store.startswith("memory"):  # a RocksDB count would scan the store
            for table in self.tables:
                self.metrics.table_keys.labels(table=table.name).set(len(table))
        if self.newest_event_ms is not None:
            self.metrics.feature_freshness_seconds.set(now - self.newest_event_ms / 1000.0)
        return waiting

    def _recovery(self) -> Any:
        return getattr(cast(Any, self.app.tables), "recovery", None)

    def readiness(self) -> Verdict:
        if self.broker is not None and not self.broker.reachable:
            return self.broker.verdict(time.monotonic())
        recovery = self._recovery()
        verdict = readiness(
            joined=self.joined,
            recovered=recovery is not None and recovery.completed.is_set(),
            rebalancing=bool(getattr(self.app, "rebalancing", False)),
            partitions=len(self.assigned_at),
        )
        waiting = [reason for reason, done in self.prerequisites.items() if not done.is_set()]
        return Verdict(False, waiting[0]) if verdict.ok and waiting else verdict

    def liveness(self) -> Verdict:
        return self.progress.liveness(time.monotonic(), waiting_messages=self.refresh())

    # --- HTTP -----------------------------------------------------------------------
    def install(self) -> None:
        """Register the sensor, the assignment hook and the three HTTP views."""
        app = self.app
        app.sensors.add(MetricsSensor(self))
        app.on_partitions_assigned.connect(self.on_assigned)  # type: ignore[arg-type]
        observer = self

        @app.page("/metrics")
        async def metrics(view: Any, request: Any) -> Any:
            observer.refresh()
            body = generate_latest(observer.metrics.registry)
            return view.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

        @app.page("/livez")
        async def livez(view: Any, request: Any) -> Any:
            return _answer(view, observer.liveness())

        @app.page("/readyz")
        async def readyz(view: Any, request: Any) -> Any:
            return _answer(view, observer.readiness())


def _answer(view: Any, verdict: Verdict) -> Any:
    status = 200 if verdict.ok else 503
    return view.json({"ok": verdict.ok, "reason": verdict.reason}, status=status)
