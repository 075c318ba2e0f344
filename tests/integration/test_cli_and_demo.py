"""The command line against a real broker: produce, tail, the demo, the broker's lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.kafka.broker import EmbeddedBroker, kafka_answers
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
    assert b"\x1b[" not in result.stdout + result.stderr  # piped: no terminal escape codes
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


def test_produce_keys_a_json_array_line_by_its_user_and_tail_max_prints_exactly_n(
    settings: Settings,
) -> None:
    batch = [make_event(user_id="u-array") for _ in range(3)]
    singles = [make_event(user_id=f"u{i}") for i in range(9)]
    lines = orjson.dumps(batch) + b"\n" + b"\n".join(orjson.dumps(e) for e in singles) + b"\n"
    broker = ["--broker", settings.bootstrap_servers]
    sent = cli("produce", "-", *broker, "--events-topic", settings.events_topic, stdin=lines)
    assert sent.returncode == 0, sent.stderr
    assert b"sent 12 events" in sent.stderr

    tail = cli("tail", settings.events_topic, *broker, "--from-beginning", "--max", "4")
    assert tail.returncode == 0, tail.stderr
    records = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert len(records) == 4
    array = cli("tail", settings.events_topic, *broker, "--from-beginning", "--max", "10")
    keyed = [orjson.loads(line) for line in array.stdout.splitlines()]
    [message] = [r for r in keyed if r["key"] == "u-array"]
    assert message["value"] == batch  # one message, keyed by its user, nothing dead-lettered


def test_tail_of_a_topic_that_does_not_exist_says_so_at_once(settings: Settings) -> None:
    result = cli("tail", "no-such-topic-here", "--broker", settings.bootstrap_servers, timeout=30)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "tunestream tail: error: topic 'no-such-topic-here' does not exist on "
        f"{settings.bootstrap_servers}"
    )


def test_produce_to_an_unreachable_broker_leaves_no_unclosed_producer_noise(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(make_event()) + b"\n")
    result = cli("produce", str(events), "--broker", "127.0.0.1:1", timeout=60)
    assert result.returncode == 1
    assert b"Unclosed" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
