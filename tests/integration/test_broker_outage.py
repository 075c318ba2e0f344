"""A broker that goes away, then comes back empty (issue: nothing stops a worker unseen).

While no broker answers the worker is live but not ready, and the client
libraries' connection errors are rate-limited. An embedded broker keeps nothing
across a restart: the worker then stops with one clear line and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.topics import ensure_topics
from streams.ops.fatal import EXIT_FATAL
from streams.settings import Settings
from tests.integration.harness import TopicReader, WorkerProcess
from tests.integration.test_poison_messages import canary, publish, wait_ready

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port())
    try:
        yield broker.start()
    finally:
        broker.stop()


def wait_for(condition: object, timeout_s: float, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{worker.log_tail()}"
        time.sleep(0.5)


def test_outage_turns_readiness_false_quietly_and_an_empty_broker_stops_the_worker(
    own_broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    name = f"outage-{uuid.uuid4().hex[:6]}"
    ours = settings.replace(broker=own_broker.bootstrap_servers, app_id=name)
    asyncio.run(ensure_topics(ours))
    worker = WorkerProcess(ours, tmp_path / "worker.log")
    try:
        worker.start()
        wait_ready(worker)
        asyncio.run(publish(ours, [canary(f"c{i}", user_id=f"u{i}") for i in range(8)]))

        async def applied() -> None:
            async with TopicReader(ours, ours.clean_topic) as reader:
                await reader.until(
                    lambda: len(reader.records[ours.clean_topic]) >= 8, 60, "canaries", worker
                )

        asyncio.run(applied())
        time.sleep(2)  # a commit interval: the changelog and offsets are written

        own_broker.stop()
        wait_for(lambda: worker.get("/readyz")[0] == 503, 30, "/readyz 503", worker)
        assert worker.get("/livez")[0] == 200
        lines_before = worker.log_path.read_bytes().count(b"\n")
        time.sleep(10)
        outage_lines = worker.log_path.read_bytes().count(b"\n") - lines_before
        assert outage_lines <= 12, worker.log_tail()  # was ~100 ERROR lines per second

        own_broker.start()  # same port, nothing in it
        assert worker.process is not None
        code = worker.process.wait(120)
        assert code == EXIT_FATAL, worker.log_tail()
        log = worker.log_path.read_text()
        assert "Traceback" not in log and "\x1b[" not in log
        critical = [line for line in log.splitlines() if "CRITICAL" in line]
        assert len(critical) == 1 and "stopping the worker" in critical[0], log[-3000:]
    finally:
        worker.stop()
