"""The Faust application: topics, the user table and the ingest agent, wired to pure logic.

Nothing here decides anything about events: :mod:`streams.ingest` sorts them,
:mod:`online_models.popularity` ranks, :mod:`streams.recommendations` shapes the
output. This module moves bytes between Kafka and those functions and keeps the
per-message framework cost low (raw bytes in, orjson by hand, one table write
and at most one send per topic per message).

``create_app(settings)`` builds a new app; nothing is created at import time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from online_models.popularity import DecayedPopularity
from streams.events import EventDecoder, encode
from streams.ingest import Source, dead_letter, ingest_message
from streams.recommendations import popularity_list
from streams.settings import Settings
from streams.state import UserState

log = logging.getLogger("tunestream.worker")


def tune_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Make Faust's consumer fetch wait configurable.

    faust-streaming hard-codes ``fetch_max_wait_ms=1500`` in its aiokafka driver.
    Tansu answers a waiting fetch by polling, so end-to-end latency follows this
    wait (DESIGN.md, Known traps). aiokafka reads the value when the consumer
    starts, so setting it on the freshly built consumer is enough.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tunestream_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    thread._tunestream_original_create = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


class Worker:
    """The wiring of one tunestream worker: build with :func:`create_app`."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.decoder = EventDecoder(
            max_message_bytes=settings.max_message_bytes,
            max_batch_events=settings.max_batch_events,
            max_future_ms=settings.max_future_ms,
        )
        self.popularity = DecayedPopularity(half_life_s=settings.popularity_half_life_s)
        self._last_list_at: dict[bytes, float] = {}
        self.events_topic = self._raw_topic(settings.events_topic)
        self.clean_topic = self._raw_topic(settings.clean_topic)
        self.dlq_topic = self._raw_topic(settings.dlq_topic)
        self.recommendations_topic = self._raw_topic(settings.recommendations_topic)
        self.users = app.Table(
            "users",
            partitions=settings.partitions,
            key_type=bytes,  # raw: the message key, the user_id
            help="per-user state: recent event ids and tracks",
        )
        app.agent(self.events_topic, name="ingest", concurrency=1)(self.ingest)

    def _raw_topic(self, name: str) -> Any:
        # Bytes in and out: we decode with orjson ourselves (faust.Record costs ~18 us).
        return self.app.topic(name, key_serializer="raw", value_serializer="raw")

    async def ingest(self, stream: Any) -> None:
        """The agent: one message at a time (concurrency 1, faust-streaming #606)."""
        recovery = cast(Any, self.app.tables).recovery  # TableManager, typed as its ABC
        async for event in stream.events():
            if not recovery.completed.is_set():
                # Faust can hand over a message while the table is still being restored
                # (before it seeks back to the committed offsets). Handled now, it would
                # see a half-restored table, so wait; the seek's redelivery is then a
                # duplicate and is dropped.
                await recovery.completed.wait()
            message = event.message
            source = Source(message.topic, message.partition, message.offset)
            try:
                await self.handle(message.key, message.value, source)
            except Exception as exc:  # a bad message must never stop the worker
                log.exception("processing failed at %s", source)
                await self._dead_letter_error(exc, message.key, message.value, source)

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        """Sort one message's events; forward, dead-letter, remember, recommend."""
        stored = self.users.get(key) if key is not None else None
        state = UserState.from_state(stored, self.settings.dedupe_ids_per_user)
        outcome = ingest_message(self.decoder, state, key, value, source.offset)
        log.debug(
            "%s: %d accepted, %d duplicates, %d rejected",
            source,
            len(outcome.accepted),
            len(outcome.duplicates),
            len(outcome.rejections),
        )
        now_ms = time.time_ns() // 1_000_000
        for rejection in outcome.rejections:
            record = dead_letter(rejection, source, key, value, now_ms)
            headers = {"reason": rejection.reason.encode()}
            await self.dlq_topic.send(key=key, value=encode(record), headers=headers)
        if not outcome.accepted:
            return
        assert key is not None  # accepted events match their message key
        self.users[key] = state.to_state()  # one changelog record for the whole batch
        await self.clean_topic.send(key=key, value=encode(outcome.accepted))
        for accepted in outcome.accepted:
            self.popularity.learn_one(accepted)
        await self._maybe_recommend(key, outcome.accepted[-1], state)

    async def _maybe_recommend(self, key: bytes, trigger: dict[str, Any], state: UserState) -> None:
        now = time.monotonic()
        last = self._last_list_at.get(key)
        if last is not None and now - last < self.settings.refresh_interval_s:
            return
        self._last_list_at[key] = now
        record = popularity_list(
            self.popularity,
            trigger,
            exclude=set(state.recent_tracks),
            size=self.settings.list_size,
            now_ms=time.time_ns() // 1_000_000,
        )
        await self.recommendations_topic.send(key=key, value=encode(record))

    async def _dead_letter_error(
        self, exc: Exception, key: bytes | None, value: bytes | None, source: Source
    ) -> None:
        from streams.events import Rejection

        rejection = Rejection("processing_error", f"{type(exc).__name__}: {exc}")
        record = dead_letter(rejection, source, key, value, time.time_ns() // 1_000_000)
        try:
            await self.dlq_topic.send(key=key, value=encode(record), headers={"reason": b"error"})
        except Exception as dlq_exc:
            # Neither processed nor dead-lettered: stop before the offset is acknowledged.
            log.critical("cannot dead-letter message at %s; stopping the worker", source)
            await self.app.crash(dlq_exc)
            raise


def create_app(settings: Settings) -> faust.App:
    """A new Faust app for ``settings`` (whose broker must be a real address)."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    tune_fetch_wait(settings.fetch_max_wait_ms)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store=settings.store,
        datadir=f"{settings.data_dir}/{{conf.name}}",
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        producer_linger_ms=settings.producer_linger_ms,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        autodiscover=False,
        table_cleanup_interval=30.0,
    )
    app.tunestream = Worker(app, settings)  # type: ignore[attr-defined]
    return app
