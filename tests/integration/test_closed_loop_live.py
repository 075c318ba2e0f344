"""The closed-loop listeners against a real worker: they read the lists it published.

Timeline::

    worker ready ──► catalog published ──► day 0: each tick, the listeners' events
      ──► listening-events ──► worker ──► recommendations ──► the listeners' next tracks
    ──► day 1 the same ──► both topics read from the start, independently of the run
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from streams.contracts.clock import now_ms
from streams.settings import Settings
from streams.tools.closed_loop import ClosedLoopConfig
from streams.tools.closed_loop_live import live_start_ms, run_live_loop
from tests.integration.harness import TopicReader, WorkerProcess
from tests.integration.test_poison_messages import wait_ready

pytestmark = pytest.mark.integration

CONFIG = ClosedLoopConfig(days=2, listeners=4, tracks=200, artists=30, policies=("tunestream",))


async def read_back(settings: Settings, events: int, prefix: str) -> tuple[list[Any], list[Any]]:
    """Every event and list of the run, read from both topics' beginnings."""
    topics = (settings.events_topic, settings.recommendations_topic)
    async with TopicReader(settings, *topics) as reader:

        def ours() -> list[Any]:
            found = []
            for record in reader.records[settings.events_topic]:
                value = record.value
                found.extend(value if isinstance(value, list) else [value])
            return [e for e in found if e["user_id"].startswith(prefix)]

        await reader.until(lambda: len(ours()) >= events, 30, f"{events} events")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the last lists on their way
            await reader.poll()
        lists = [r.value for r in reader.records[settings.recommendations_topic]]
        return ours(), [v for v in lists if v["user_id"].startswith(prefix)]


def test_live_listeners_answer_the_lists_the_worker_published(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.replace(refresh_interval_s=0.05)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_ready(worker)
        config = dataclasses.replace(CONFIG, start_ts_ms=live_start_ms(CONFIG.days, now_ms()))
        run = asyncio.run(run_live_loop(settings, config, tag="live-test", list_wait_s=3.0))
        policy = run.policy
        assert run.events_published > 0 and policy.lists_read > 0
        assert policy.carried_ids, "no listener ever took a track from a list"
        assert set(policy.carried_ids) <= policy.read_ids
        events, lists = asyncio.run(read_back(settings, run.events_published, "live-test-"))
    finally:
        worker.stop()
    assert len(events) == run.events_published
    published = {(v["user_id"], v["recommendation_id"]): v for v in lists}
    answered = [e for e in events if "recommendation_id" in e]
    assert answered
    for event in answered:  # the list the track came from: this user's, made by the worker
        listed = published[(event["user_id"], event["recommendation_id"])]
        assert event["track_id"] in {item["track_id"] for item in listed["items"]}
    event_ids = {e["event_id"] for e in events}
    assert all(v["trigger_event_id"] in event_ids for v in lists)
    figures = run.result["policies"]["tunestream"]
    assert figures["days"] == [0, 1] and run.result["config"]["mode"] == "live"
