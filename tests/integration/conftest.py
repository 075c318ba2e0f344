"""Fixtures for tests against a real Kafka-protocol broker on loopback.

The session starts one embedded Tansu broker (or uses ``TUNESTREAM_TEST_BROKER``
when set, e.g. an Apache Kafka); each test gets its own app id and topic names,
so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import ensure_topics
from streams.settings import Settings
from tests.integration.harness import WorkerProcess


@pytest.fixture(scope="session")
def bootstrap_servers() -> Iterator[str]:
    external = os.environ.get("TUNESTREAM_TEST_BROKER")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def settings(bootstrap_servers: str, tmp_path: Path) -> Settings:
    name = f"ts-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({}, broker=bootstrap_servers).namespaced(
        name,
        data_dir=str(tmp_path / "data"),
        partitions=4,
        refresh_interval_s=0.5,
        log_level=os.environ.get("TEST_WORKER_LOG_LEVEL", "WARNING"),
    )
    asyncio.run(ensure_topics(settings))
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        yield process
    finally:
        process.stop()
