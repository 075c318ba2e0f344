"""``tunestream bench`` end to end, small: every figure present and plausible, nothing left behind.

No figure is compared with a speed: the machine is shared. The bench starts its
own embedded broker, so these tests do not use the session's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.tools.bench import REQUIRED_KEYS, STAGE_ORDER, py_spy_binary

pytestmark = pytest.mark.integration


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streams", "bench", *args],
        capture_output=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def children_of(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_quick_bench_reports_every_figure_as_json() -> None:
    result = bench("--json", "--events", "2000", "--skip-latency")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    figures = json.loads(result.stdout)
    for key in REQUIRED_KEYS:
        assert key in figures, key
    assert figures["events"] == 2000
    for key in (
        "events_per_s_single",
        "events_per_s_single_learning_off",
        "events_per_s_single_exploration_off",
        "events_per_s_batched",
        "faust_noop_messages_per_s",
        "learner_examples_per_s",
    ):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["learning_cost_share"] < 1
    # A worker does more per message than a loop that does nothing; 2 allows for noise.
    assert 0 < figures["single_vs_noop_ratio"] < 2
    assert figures["latency_p50_ms"] is None and figures["latency_p99_ms"] is None
    assert 1_000 < figures["bytes_per_user"] < 1_000_000
    # single, single with learning off, single with exploration off, batched
    assert figures["ready_s"] > 0 and len(figures["ready_s_each"]) == 4
    assert figures["cpu_count"] == os.cpu_count()
    assert figures["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert "profile" not in figures
    stderr = result.stderr.decode()
    assert "bench: single-event drain" in stderr and "\x1b[" not in stderr  # piped: plain


def test_the_latency_phase_reads_the_lists_the_worker_published() -> None:
    result = bench("--json", "--events", "500", "--rate", "200", "--duration", "4")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    figures = json.loads(result.stdout)
    assert figures["latency_lists"] > 0
    assert figures["latency_events"] > 0
    assert 0 <= figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    # single, single with learning off, single with exploration off, batched, latency
    assert len(figures["ready_s_each"]) == 5


@pytest.mark.skipif(py_spy_binary() is None, reason="needs py-spy (the 'profile' extra)")
def test_profile_breaks_the_worker_cpu_down_by_stage() -> None:
    result = bench("--json", "--events", "1000", "--skip-latency", "--profile")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    profile = json.loads(result.stdout)["profile"]
    assert list(profile["stages"]) == list(STAGE_ORDER)
    assert profile["samples"] > 0 and profile["events"] > 0
    assert sum(profile["stages"].values()) == pytest.approx(1.0, abs=1e-3)  # shares are rounded
    # The ingest agent's own work was sampled, not only the framework around it.
    assert profile["stages"]["decode + validate"] + profile["stages"]["dedupe + features"] > 0


def test_ctrl_c_stops_the_broker_and_the_worker_it_started() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "bench", "--events", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 120
        started: set[int] = set()
        while time.monotonic() < deadline and len(started) < 2:  # the broker and a worker
            started |= children_of(process.pid)
            time.sleep(0.2)
        assert len(started) >= 2, "the bench started no worker"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()[-2000:]
    assert not [pid for pid in started if alive(pid)]
    assert b"Traceback" not in err
