"""Messages a hostile user sent that stopped, hung or double-counted the worker.

Each case is published between two canary events on the same partition; the
second canary reaching the clean topic proves the worker went on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.ops.fatal import EXIT_FATAL
from streams.settings import Settings
from tests.factories import make_event
from tests.integration.harness import TopicReader, WorkerProcess, forwarded_ids

pytestmark = pytest.mark.integration

README_EXAMPLE_TS = 1_767_225_599_000  # far older than 60 days today: it overflowed popularity


def wait_ready(worker: WorkerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.get("/readyz")[0] != 200:
        assert worker.process is not None and worker.process.poll() is None, worker.log_tail()
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.2)


async def publish(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for key, value in messages:  # one partition per key: canaries bracket the poison
            await (await producer.send(settings.events_topic, key=key, value=value))
    finally:
        await producer.stop()


def canary(event_id: str, **fields: object) -> tuple[bytes, bytes]:
    event = make_event(event_id=event_id, ts=int(time.time() * 1000))
    event.update(fields)
    return event["user_id"].encode(), orjson.dumps(event)


def deep_event(levels: int) -> bytes:
    event = orjson.dumps(make_event(event_id="deep", ts=int(time.time() * 1000)))
    return event[:-1] + b',"x":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


def test_large_bad_messages_are_dead_lettered_and_the_worker_goes_on(
    settings: Settings, worker: WorkerProcess
) -> None:
    worker.start()
    wait_ready(worker)
    padding = "é" * 450_000  # valid, 900 KB of UTF-8; re-encoded it still fits a request
    poison = [
        (b"u1", b"\x01" * 430_000),  # not JSON; escaped in a dead letter it was ~1 MB
        (b"u1", b"[" + b" " * 1_100_000 + b"]"),  # over the input limit
        (b"u1", deep_event(300)),  # orjson reads it, cannot write it back
    ]
    messages = [
        canary("before"),
        *poison,
        canary("big", padding=padding),
        canary("old", ts=README_EXAMPLE_TS, user_id="u-old"),  # its own user: not too_late
        canary("after"),
    ]
    asyncio.run(publish(settings, messages))

    async def check() -> None:
        topics = (settings.clean_topic, settings.dlq_topic, settings.recommendations_topic)
        async with TopicReader(settings, *topics) as reader:
            await reader.until(
                lambda: (
                    {"after", "old"} <= set(forwarded_ids(reader, settings.clean_topic))
                    and len(reader.records[settings.dlq_topic]) >= 3
                ),
                60,
                "the canary after the poison",
                worker,
            )
            await asyncio.sleep(1.0)
            await reader.poll()
            forwarded = forwarded_ids(reader, settings.clean_topic)
            assert sorted(forwarded) == ["after", "before", "big", "old"]
            assert [i for i in forwarded if i != "old"] == ["before", "big", "after"]
            dead = [r.value for r in reader.records[settings.dlq_topic]]
            assert [d["reason"] for d in dead] == ["not_json", "oversize", "too_deep"]
            assert all(d["event_id"] != "old" for d in dead)  # accepted, never both
            assert dead[0]["original_bytes"] == 430_000 and dead[0]["original_truncated"]
            lists = reader.records[settings.recommendations_topic]
            assert any(r.value["trigger_event_id"] == "old" for r in lists)

    asyncio.run(check())
    assert worker.process is not None and worker.process.poll() is None
    assert worker.get("/readyz")[0] == 200


def test_a_worker_that_cannot_dead_letter_exits_at_once_with_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    entry = (str(Path(__file__).with_name("dlq_refusing_worker.py")),)
    refusing = WorkerProcess(settings, tmp_path / "refusing.log", entry)
    try:
        refusing.start()
        wait_ready(refusing)
        asyncio.run(publish(settings, [(b"u1", b"not json at all")]))
        assert refusing.process is not None
        code = refusing.process.wait(30)
        assert code == EXIT_FATAL
        critical = [
            line for line in refusing.log_tail().splitlines() if '"level":"CRITICAL"' in line
        ]
        assert len(critical) == 1 and "cannot publish" in critical[0], refusing.log_tail()
    finally:
        refusing.stop()


def test_faust_internal_pages_are_not_served_and_errors_are_json(
    settings: Settings, worker: WorkerProcess
) -> None:
    worker.start()
    wait_ready(worker)
    for path in ("/", "/router/", "/table/users/", "/graph/", "/no-such-page"):
        status, body = worker.get(path)
        assert status == 404, (path, status, body[:200])
        assert "error" in orjson.loads(body), path
    status, body = worker.get("/users/nobody/features")
    assert status == 404 and "error" in orjson.loads(body)
