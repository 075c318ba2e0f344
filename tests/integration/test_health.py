"""``/readyz`` and ``/livez`` of a real worker on the embedded broker, and its ``/metrics``.

Readiness timeline (a changelog of 150,000 records written straight to Kafka)::

    start ──► 503 "waiting for the group" ──► 503 "restoring tables" ──► 200 ready
                                              (recovery_in_progress 1)

Liveness timeline (stall_after_s = 2)::

    200 caught up ──► message "hang-here" ──► agent stuck ──► > 2 s ──► 503
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.state.keyed_state import UserState
from tests.factories import make_event
from tests.integration.harness import WorkerProcess

pytestmark = pytest.mark.integration

CHANGELOG_RECORDS = 150_000


def samples(body: bytes) -> dict[str, float]:
    """Unlabelled samples of a /metrics page, by name."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.labels
    }


async def fill_changelog(settings: Settings, records: int) -> None:
    """Write user-table records straight into the changelog, as a big restored state."""
    # A version-2 state (no features yet; still readable) keeps 150k records small.
    empty = UserState.empty().to_state()
    value = orjson.dumps({"v": 2, "seen": empty["seen"], "recent": []})
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        topic = f"{settings.app_id}-users-changelog"
        batch = [
            producer.send(topic, key=f"u{i}".encode(), value=value, partition=i % 4)
            for i in range(records)
        ]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


def test_readyz_is_false_while_tables_restore_and_true_after(
    settings: Settings, worker: WorkerProcess
) -> None:
    worker.start()  # a first run creates the changelog topic, then leaves the group
    deadline = time.monotonic() + 60
    while worker.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.2)
    worker.stop()
    asyncio.run(fill_changelog(settings, CHANGELOG_RECORDS))

    worker.start()
    seen: list[tuple[int, str]] = []
    restoring_scrape: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while True:
        status, body = worker.get("/readyz")
        if status:
            reason = orjson.loads(body)["reason"]
            if not seen or seen[-1] != (status, reason):
                seen.append((status, reason))
            if "restoring" in reason and not restoring_scrape:
                restoring_scrape = samples(worker.get("/metrics")[1])
            if status == 200:
                break
        assert time.monotonic() < deadline, f"never ready: {seen}\n{worker.log_tail()}"
        time.sleep(0.05)

    assert (503, "restoring tables from changelogs") in seen, seen
    assert seen[-1][0] == 200 and all(status == 503 for status, _ in seen[:-1]), seen
    assert restoring_scrape.get("tunestream_recovery_in_progress") == 1.0, restoring_scrape
    after = samples(worker.get("/metrics")[1])
    assert after["tunestream_worker_ready"] == 1.0
    assert after["tunestream_recovery_in_progress"] == 0.0


def test_livez_fails_when_the_agent_hangs_on_a_message(settings: Settings, tmp_path: Path) -> None:
    entry = (str(Path(__file__).with_name("hanging_worker.py")),)
    hanging = WorkerProcess(settings.replace(stall_after_s=2.0), tmp_path / "hang.log", entry)
    try:
        hanging.start()
        deadline = time.monotonic() + 60
        while hanging.get("/readyz")[0] != 200:
            assert time.monotonic() < deadline, hanging.log_tail()
            time.sleep(0.2)

        async def publish(event_id: str) -> None:
            async with EventProducer(settings.bootstrap_servers, settings.events_topic) as p:
                await p.publish(make_event(event_id=event_id, ts=int(time.time() * 1000)))

        asyncio.run(publish("fine-1"))
        time.sleep(1.0)
        status, body = hanging.get("/livez")
        assert status == 200, body

        asyncio.run(publish("hang-here"))
        deadline = time.monotonic() + 30
        while (answer := hanging.get("/livez"))[0] != 503:
            assert time.monotonic() < deadline, f"still live: {answer}\n{hanging.log_tail()}"
            time.sleep(0.2)
        assert "in processing" in orjson.loads(answer[1])["reason"]
    finally:
        hanging.stop()
