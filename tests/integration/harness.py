"""Helpers for integration tests: a worker in its own process, and topic readers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streams.kafka.broker import free_port
from streams.settings import Settings, env_name


class WorkerProcess:
    """``python -m streams worker`` with the test's settings; stopped by the test."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        entry: tuple[str, ...] = ("-m", "streams"),
        role: str = "worker",
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.entry = entry  # what follows the interpreter: a module, or a test's wrapper script
        self.role = role  # the CLI command: worker or learner
        self.process: subprocess.Popen[bytes] | None = None
        self.web_port = 0

    @property
    def port_setting(self) -> str:
        return env_name("learner_web_port" if self.role == "learner" else "web_port")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in vars(self.settings).items():
            env[env_name(name)] = str(value)
        env[self.port_setting] = str(free_port())
        return env

    def start(self) -> WorkerProcess:
        env = self.env()
        self.web_port = int(env[self.port_setting])
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.entry, self.role],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no commit, no goodbye to the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str) -> tuple[int, bytes]:
        """HTTP GET on the worker's web server: (status, body); (0, b"") while it is not up."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


@dataclass
class Record:
    topic: str
    key: bytes | None
    value: Any
    headers: dict[str, bytes]


class TopicReader:
    """Reads topics from the beginning into memory, in the background of a test."""

    def __init__(self, settings: Settings, *topics: str) -> None:
        self.settings = settings
        self.topics = topics
        self.records: dict[str, list[Record]] = {t: [] for t in topics}
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        for records in (await self._consumer.getmany(timeout_ms=200)).values():
            for r in records:
                self.records[r.topic].append(
                    Record(r.topic, r.key, orjson.loads(r.value), dict(r.headers or ()))
                )

    async def until(
        self,
        done: Callable[[], bool],
        timeout_s: float,
        what: str,
        worker: WorkerProcess | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                counts = {t: len(v) for t, v in self.records.items()}
                tail = worker.log_tail() if worker else ""
                raise AssertionError(f"timed out waiting for {what}; read {counts}\n{tail}")
            await self.poll()
        await asyncio.sleep(0)


def forwarded_ids(reader: TopicReader, topic: str) -> list[str]:
    return [event["event_id"] for record in reader.records[topic] for event in record.value]


async def until_a_list_has_items(
    settings: Settings,
    reader: TopicReader,
    timeout_s: float = 60,
    worker: WorkerProcess | None = None,
) -> None:
    """Publish one event a second for a fresh user until their list has items.

    Trending lists are merged from what the workers publish every
    ``TUNESTREAM_TRENDING_PUBLISH_INTERVAL_S``, so the very first lists of a new
    stream can be empty; this waits until the ranking has reached the worker.
    """
    from streams.kafka.producer import EventProducer
    from tests.factories import make_event

    topic = settings.recommendations_topic
    deadline = time.monotonic() + timeout_s
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        while not any(r.value["items"] for r in reader.records[topic] if r.key == b"u-probe"):
            if time.monotonic() > deadline:
                tail = worker.log_tail() if worker else ""
                raise AssertionError(f"no list with items within {timeout_s} s\n{tail}")
            await producer.publish(make_event(user_id="u-probe", ts=int(time.time() * 1000)))
            await producer.flush()
            poll_until = time.monotonic() + 1.0
            while time.monotonic() < poll_until:
                await reader.poll()
