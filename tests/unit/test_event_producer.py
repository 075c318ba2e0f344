"""The events producer's per-user batches (:class:`streams.kafka.producer.EventProducer`),
on a fake aiokafka producer: what goes out, and when.

Timeline of one user with a 50 ms linger::

    0 ms  e1 buffered (the user's linger starts)    30 ms  e2 buffered
    50 ms the batch [e1, e2] goes out: e1 waited the linger, e2 less
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from streams.kafka.producer import EventProducer


class FakeKafka:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[bytes, list[str], float]] = []
        self.refuse = refuse

    async def send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        if self.refuse:
            raise RuntimeError("the broker is gone")
        ids = [event["event_id"] for event in orjson.loads(value)]
        self.sent.append((key, ids, time.monotonic()))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def producer(fake: FakeKafka, **options: Any) -> EventProducer:
    made = EventProducer("127.0.0.1:9", **options)
    made._producer = fake  # type: ignore[assignment]
    return made


def event(event_id: str, user: str = "u1") -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user}


def test_a_user_s_batch_goes_out_one_linger_after_its_first_event() -> None:
    fake = FakeKafka()

    async def scenario() -> float:
        events = producer(fake, linger_ms=50)
        started = time.monotonic()
        await events.publish(event("e1"))
        await asyncio.sleep(0.03)
        await events.publish(event("e2"))
        await asyncio.sleep(0.1)
        return started

    started = asyncio.run(scenario())
    [(key, ids, at)] = fake.sent
    assert (key, ids) == (b"u1", ["e1", "e2"])
    assert 0.045 <= at - started < 0.09  # the linger, not a polling loop's tick more


def test_a_full_batch_goes_out_at_once_and_users_are_batched_apart() -> None:
    fake = FakeKafka()

    async def scenario() -> None:
        events = producer(fake, linger_ms=10_000, max_batch_events=2)
        for item in (event("e1"), event("x1", "u2"), event("e2")):
            await events.publish(item)
        assert [ids for _, ids, _ in fake.sent] == [["e1", "e2"]]
        await events.flush()

    asyncio.run(scenario())
    assert [(key, ids) for key, ids, _ in fake.sent] == [
        (b"u1", ["e1", "e2"]),
        (b"u2", ["x1"]),
    ]


def test_a_send_that_failed_after_its_linger_is_raised_by_flush() -> None:
    async def scenario() -> None:
        events = producer(FakeKafka(refuse=True), linger_ms=1)
        await events.publish(event("e1"))
        await asyncio.sleep(0.02)
        await events.flush()

    with pytest.raises(RuntimeError, match="the broker is gone"):
        asyncio.run(scenario())
