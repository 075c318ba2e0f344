"""Publishing listening events: a small producer that batches per user.

Each Kafka message carries a JSON array of one user's events, keyed by
``user_id``. A user's batch goes out when it holds ``max_batch_events`` or when
its oldest event has waited ``linger_ms`` (a timer per waiting batch, so the wait
is ``linger_ms``, not a polling loop's tick more); :meth:`EventProducer.flush` and
leaving the ``async with`` block send the rest and wait for the broker's acks,
so an event is either acknowledged or an exception says it was not.

Usage::

    async with EventProducer("127.0.0.1:9092") as producer:
        await producer.publish({"event_id": "e1", "user_id": "u1", ...})
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from features.errors import TunestreamError
from streams.contracts.events import Event, EventDecoder, Rejection, encode


class InvalidEvent(TunestreamError, ValueError):
    """An event failed validation before it was sent (``validate=True``)."""

    def __init__(self, rejection: Rejection) -> None:
        where = f" ({rejection.field})" if rejection.field else ""
        super().__init__(f"{rejection.reason}{where}: {rejection.detail}")
        self.rejection = rejection


class EventProducer:
    """Batches events per user and publishes them to the events topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "listening-events",
        *,
        max_batch_events: int = 100,
        linger_ms: float = 20.0,
        validate: bool = False,
        **producer_options: Any,
    ) -> None:
        if max_batch_events <= 0:
            raise ValueError(f"max_batch_events must be > 0, got {max_batch_events}")
        self.topic = topic
        self.max_batch_events = max_batch_events
        self.linger_s = linger_ms / 1000.0
        self._decoder = EventDecoder() if validate else None
        options = {"linger_ms": 5, "max_batch_size": 256 * 1024, **producer_options}
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **options)
        self._buffers: dict[str, list[Event]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: set[asyncio.Future[Any]] = set()
        #: batches whose linger ended, on their way to the producer
        self._lingered: set[asyncio.Task[None]] = set()
        self._failed: list[BaseException] = []
        self.events_sent = 0
        self.messages_sent = 0

    async def start(self) -> None:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise

    async def stop(self) -> None:
        """Send what is buffered, wait for acks, close."""
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def problem(self, event: Event) -> Rejection | None:
        """The first problem local validation finds in ``event`` (None without ``validate``)."""
        if self._decoder is None:
            return None
        return self._decoder.check(event, event.get("user_id"), _far_future())

    async def publish(self, event: Event) -> None:
        """Buffer one event for its user; may send that user's batch."""
        problem = self.problem(event)
        if problem is not None:
            raise InvalidEvent(problem)
        user = event["user_id"]
        buffer = self._buffers.setdefault(user, [])
        if not buffer:
            loop = asyncio.get_running_loop()
            self._timers[user] = loop.call_later(self.linger_s, self._linger_ended, user)
        buffer.append(event)
        if len(buffer) >= self.max_batch_events:
            await self._send_user(user)

    async def publish_many(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.publish(event)

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (e.g. a line that is not JSON: the worker dead-letters it)."""
        await self._track(self._producer.send(self.topic, key=key, value=value))
        self.messages_sent += 1

    async def flush(self) -> None:
        """Send every buffered batch and wait until the broker acknowledged all sends."""
        for user in list(self._buffers):
            await self._send_user(user)
        if self._lingered:
            await asyncio.gather(*self._lingered, return_exceptions=True)
        if self._failed:
            raise self._failed[0]
        if self._in_flight:
            pending, self._in_flight = self._in_flight, set()
            await asyncio.gather(*pending)

    async def _send_user(self, user: str) -> None:
        timer = self._timers.pop(user, None)
        if timer is not None:
            timer.cancel()
        batch = self._buffers.pop(user, None)
        if not batch:
            return
        await self._track(self._producer.send(self.topic, key=user.encode(), value=encode(batch)))
        self.events_sent += len(batch)
        self.messages_sent += 1

    async def _track(self, sending: Any) -> None:
        future = await sending
        self._in_flight.add(future)
        future.add_done_callback(self._forget_if_ok)

    def _forget_if_ok(self, future: asyncio.Future[Any]) -> None:
        # Failed sends stay in flight so that flush() raises their error.
        if not future.cancelled() and future.exception() is None:
            self._in_flight.discard(future)

    def _linger_ended(self, user: str) -> None:
        self._timers.pop(user, None)
        task = asyncio.ensure_future(self._send_user(user))
        self._lingered.add(task)
        task.add_done_callback(self._sent_after_linger)

    def _sent_after_linger(self, task: asyncio.Task[None]) -> None:
        self._lingered.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failed.append(task.exception())  # type: ignore[arg-type]  # flush() raises it


def _far_future() -> int:
    # Local validation checks the event's shape; the clock is the worker's to judge.
    return 2**62
