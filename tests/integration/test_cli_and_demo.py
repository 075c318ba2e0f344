"""The command line against a real broker: produce, tail, the demo, the broker's lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.broker import EmbeddedBroker, kafka_answers
from streams.settings import Settings
from tests.factories import make_event
from tests.integration.harness import WorkerProcess

pytestmark = pytest.mark.integration


def cli(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def test_produce_sends_events_and_lines_that_are_not_events_reach_the_dlq(
    settings: Settings, worker: WorkerProcess
) -> None:
    good = [make_event(user_id=f"u{i % 3}") for i in range(20)]
    lines = b"\n".join(orjson.dumps(e) for e in good) + b"\nthis is not json\n"
    worker.start()
    broker = ["--broker", settings.bootstrap_servers]
    sent = cli("produce", "-", *broker, "--events-topic", settings.events_topic, stdin=lines)
    assert sent.returncode == 0, sent.stderr
    assert b"sent 20 events" in sent.stderr

    clean = cli(
        "tail", settings.clean_topic, *broker, "--from-beginning", "--timeout", "60", "--max", "3"
    )  # 20 events of 3 users: at least 3 messages
    assert clean.returncode == 0, clean.stderr + worker.log_tail().encode()
    assert len(clean.stdout.splitlines()) == 3
    dlq = cli(
        "tail", settings.dlq_topic, *broker, "--from-beginning", "--max", "1", "--timeout", "60"
    )
    record = orjson.loads(dlq.stdout.splitlines()[0])
    assert record["value"]["reason"] == "not_json"
    assert record["value"]["original"] == "this is not json"


def test_strict_produce_refuses_invalid_lines_locally_with_their_line_number(
    settings: Settings,
) -> None:
    lines = orjson.dumps(make_event()) + b"\n" + orjson.dumps(make_event(type="pause")) + b"\n"
    result = cli(
        "produce",
        "--strict",
        "--broker",
        settings.bootstrap_servers,
        "--events-topic",
        settings.events_topic,
        stdin=lines,
    )
    assert result.returncode == 1
    assert b"line 2: unknown_event_type (type)" in result.stderr


def test_demo_shows_recommendation_lists_within_a_minute(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams", "demo", "--duration", "25", "--rate", "200"],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "TUNESTREAM_BROKER"},
    )
    assert result.returncode == 0, result.stdout[-2000:]
    summary = result.stdout.decode().split("lists")[-1]
    assert int(summary.split()[0]) > 0


def test_embedded_broker_is_stopped_when_its_block_fails() -> None:
    with pytest.raises(RuntimeError), EmbeddedBroker() as broker:
        pid, port = broker.pid, broker.port
        assert kafka_answers("127.0.0.1", port)
        raise RuntimeError("a failing test")
    assert not kafka_answers("127.0.0.1", port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # type: ignore[arg-type]
