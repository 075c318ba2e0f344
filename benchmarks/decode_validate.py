"""Decode + validate cost per event, single events and batches: ``make bench``.

Prints microseconds per event for each stage, measured in this one run, so the
ratios between lines are what to compare on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import orjson

from streams.contracts.events import EventDecoder
from streams.pipeline.ingest import ingest_message
from streams.state.keyed_state import UserState

NOW_MS = 1_767_225_600_000


def sample_events(n: int) -> list[dict]:
    return [
        {
            "event_id": f"bench-{i}",
            "user_id": "u1",
            "track_id": f"t{i % 977}",
            "type": ("play", "skip", "save")[i % 3],
            "ts": NOW_MS - i,
            "ms_played": 1000 * i,
            "session_id": "s1",
            "context": {
                "device": "mobile",
                "context_type": "playlist",
                "playlist_id": "p1",
                "hour": 8,
            },
        }
        for i in range(n)
    ]


def per_event_us(run: Callable[[], object], events_per_run: int, repeat: int) -> float:
    """Median over ``repeat`` timings of one run, in microseconds per event."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) / events_per_run * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per run (20000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (7)")
    parser.add_argument("--batch", type=int, default=50, help="events per batch message (50)")
    args = parser.parse_args()

    events = sample_events(args.events)
    singles = [orjson.dumps(e) for e in events]
    batches = [orjson.dumps(events[i : i + args.batch]) for i in range(0, len(events), args.batch)]
    decoder = EventDecoder(now_ms=lambda: NOW_MS)

    def ingest_batches() -> None:
        state = UserState.empty()
        for offset, raw in enumerate(batches):
            ingest_message(decoder, state, b"u1", raw, offset)

    rows = [
        ("json.loads (stdlib), single events", lambda: [json.loads(b) for b in singles]),
        ("orjson.loads, single events", lambda: [orjson.loads(b) for b in singles]),
        ("decode + validate, single events", lambda: [decoder.decode(b"u1", b) for b in singles]),
        (
            f"decode + validate, batches of {args.batch}",
            lambda: [decoder.decode(b"u1", b) for b in batches],
        ),
        (f"decode + validate + dedupe, batches of {args.batch}", ingest_batches),
    ]
    print(f"{args.events} events per run, median of {args.repeat} runs")
    for label, run in rows:
        us = per_event_us(run, args.events, args.repeat)
        print(f"  {label:<48} {us:7.2f} us/event  {1e6 / us:12,.0f} events/s")


if __name__ == "__main__":
    main()
