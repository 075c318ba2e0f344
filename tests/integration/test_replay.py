"""``tunestream replay --score``: the lists read back from a real broker score as the
worker's planner run in process scores them, on the same re-based events.

Fixture: ``tests/fixtures/replay/`` holds 400 events of the seeded simulator
(``PopulationConfig(seed=11, n_users=24, n_tracks=150, n_artists=30,
events_per_second=0.5)``: 20 listeners over 13.6 minutes of event time) and its
150-track catalog. No real data. Timeline::

    catalog ──► worker ready ──► replay paced at speed 50 (13.6 min in ~16 s of wall clock)
      ──► lists read back until every event is accepted ──► both paths scored

Tolerance, and why. Both paths run the same planner code on the same events with
the same settings (untrained models: no learner runs, so no snapshot timing to
differ). What differs live: the refresh debounce reads the worker's wall clock,
not the events' (paced sending keeps them within a few ms, but an event near the
debounce edge can fall on either side), and the trending board reaches the lists
through the track agent (0.1 s batches), the worker's 1 s publishing timer and a
topic read, instead of the in-process timer on the events' clock. Both shift
which list a positive event is judged against, a few of ~300. So: the number of
lists within 15%, hit-rate@10 and NDCG@10 within 0.05 absolute, the diversity
means within 10%, discovery share within 0.05. Measured on the development
machine: see the README's "Replay a real log".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from streams.tools.console import Reporter
from streams.tools.loaders import load
from streams.tools.publish import publish_catalog
from streams.tools.replay import ReplayOptions, replay_through
from tests.integration.harness import WorkerProcess

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "replay"
SPEED = 50.0


def wait_ready(worker: WorkerProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, f"worker not ready\n{worker.log_tail()}"
        time.sleep(0.2)


def close(live: float, offline: float, *, absolute: float = 0.0, relative: float = 0.0) -> bool:
    return abs(live - offline) <= max(absolute, relative * abs(offline))


@pytest.mark.timeout(120)
def test_replayed_lists_read_from_the_topic_score_as_the_in_process_planner_within_tolerance(
    settings: Settings, worker: WorkerProcess
) -> None:
    log = load(FIXTURE / "listens.jsonl", "jsonl", catalog=FIXTURE / "tracks.jsonl")
    asyncio.run(publish_catalog(settings, log.catalog))
    wait_ready(worker.start())
    options = ReplayOptions(
        log=(str(FIXTURE / "listens.jsonl"),),
        speed=SPEED,
        score=True,
        compare=True,
        timeout_s=40.0,
    )
    report = asyncio.run(
        replay_through(settings, options, log, Reporter(enabled=False), publish_catalog_first=False)
    )
    live, offline = report["live"], report["in_process"]
    print({"live": live, "in_process": offline, "send_s": report["send_s"]})  # -s shows them
    assert report["complete"], (report, worker.log_tail())
    assert report["forwarded"] == report["sent"] == len(log.events)
    assert live["positives"] == offline["positives"] > 200
    assert live["foreign_lists"] == 0 and live["lists_read"] > 50
    assert close(live["lists_read"], offline["lists_read"], relative=0.15)
    assert close(live["judged"], offline["judged"], relative=0.05)
    a: dict[str, Any] = live["figures"]
    b: dict[str, Any] = offline["figures"]
    for key in ("hit_rate_at_10", "ndcg_at_10", "discovery_share", "hit_rate_at_10_not_recent"):
        assert close(a[key], b[key], absolute=0.05), (key, a[key], b[key])
    for key in ("distinct_artists", "distinct_genres", "coverage", "artist_gini"):
        assert close(a[key], b[key], relative=0.10), (key, a[key], b[key])
