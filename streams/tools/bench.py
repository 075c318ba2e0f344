"""``tunestream bench``: the system's figures, measured in one run on this machine.

Everything runs in one process tree: an embedded Tansu broker on a free loopback
port, and one worker subprocess at a time (``python -m streams worker``, or the
Faust no-op app of :mod:`streams.tools.bench_worker`), each stopped by its PID
when its phase ends, on an error and on Ctrl-C. Each phase has its own app id
and topic names, so no phase sees another's data. The figures (the keys of
``--json``):

``events_per_s_single``
    One worker drains a backlog of ``events`` events, published one event per
    message before the worker starts. Drained means all the events counted in the
    worker's ``tunestream_events_total``; the rate is the events processed after
    the first message divided by the time from the first to the last processed
    message, both read from the worker's own timestamps on its clean-topic
    records (so start-up, group join and polling granularity are not in it).
``events_per_s_single_learning_off``, ``learning_cost_share``
    The single-event drain again with ``TUNESTREAM_LEARNING=off`` (no training
    examples, no taste vectors, popularity lists), and ``1 - single / off``: what
    learning costs the worker (the budget is 30%).
``events_per_s_single_exploration_off``, ``exploration_cost_share``
    The same with learning on and ``TUNESTREAM_EXPLORATION=off`` (lists by taste
    only: no slot drawn, no offer remembered, no feedback sent), and ``1 - single /
    off``: exploration's part of the learning cost. The learning-on drains start
    from a signed snapshot with a vector for every track, so lists are ranked by
    taste as in use; no learner runs during them.
``learner_examples_per_s``
    A learner process (``tunestream learner``) drains the single-event drain's
    examples: examples learned per second of learning time (its ``/metrics``),
    the rate of the stream one learner can keep up with.
``events_per_s_batched``
    The same with ``batch_events`` (50) events of one user per message.
``faust_noop_messages_per_s``
    A tiny ``faust.App`` in its own worker subprocess, whose agent only iterates
    the stream (same raw topic, same consumer fetch wait), drains a backlog of
    ``events`` one-event messages: Faust's per-message ceiling on this machine.
``single_vs_noop_ratio``
    ``events_per_s_single / faust_noop_messages_per_s``: the share of the
    framework's ceiling a real worker keeps with one event per message.
``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``
    Event time to recommendation list published (the lists' ``latency_ms``,
    read back from the recommendations topic) while the seeded simulator
    publishes ``latency_rate`` events/s to a worker that was ready before the
    load started: ``latency_warmup_s`` of load, then ``latency_duration_s``
    measured. Event times follow the wall clock from the first event sent.
    Includes the producer's 20 ms per-user linger, the broker, the fetch wait and
    queueing. ``latency_lists`` lists are measured; the ``latency_lists_warmup``
    whose trigger event came in the warm-up (every listener's first lists, one
    burst) are left out. ``None`` with ``--skip-latency``.
``latency_histogram_ms`` (with the latency phase)
    The measured lists' latencies counted in fixed buckets (:func:`latency_histogram`:
    1 ms wide up to 50 ms, wider beyond), for ``tunestream report``'s histogram.
``lists_per_s``, ``list_stage_us``, ``list_stage_cpu_share`` (with the latency phase)
    Lists published per second under that load; per stage of building a list
    (retrieval, ranking, re-ranking, :mod:`online_models.recommender`), the
    mean µs per list and the share of the worker process's CPU time over the
    phase, from the worker's ``tunestream_list_stage_seconds``.
``bytes_per_user``
    Bytes the changelog stores (deflated JSON: dedupe ids, the last message
    applied, rolling features) for a typical active user after 1,000 events
    (:mod:`streams.tools.state_size`: a simulated heavy listener whose events lie
    as far apart as their listening).
``bytes_per_user_squeezed``
    The same for a user whose 1,000 events come within minutes: the dedupe
    memory full (its bound), not the typical case.
``ready_s``
    Worker process start to its ``/readyz`` answering 200 (imports, topics,
    group join, table recovery, catalog loaded): the median over the
    tunestream workers this run started (``ready_s_each``).
``profile`` (``--profile``)
    An extra single-event drain (fresh topics, so the figures above carry no
    sampling cost) with ``py-spy --gil`` attached to the worker: the share of the
    samples of whichever thread holds the GIL (Python running, never a thread
    idling) in each stage (:data:`STAGE_ORDER`, told apart by :func:`classify`),
    and the worker's CPU time per event from ``/proc``.

Figures depend on the machine and on what else runs on it: compare runs from
one machine only.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from features.errors import TunestreamError
from online_models.learner import SNAPSHOT_NAME, Learner
from online_models.recommender import STAGES as LIST_STAGES
from online_models.snapshot import encode_snapshot
from streams.contracts.clock import now_ms
from streams.contracts.events import Event, encode
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.faust_fixes import fetched_end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.security import security_options
from streams.kafka.topics import ensure_topics
from streams.settings import Settings, env_name
from streams.tools.console import Reporter, write_tables
from streams.tools.processes import Child, die_with_parent, http_get
from streams.tools.publish import publish_catalog, simulated_events
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import ARTISTS, STATE_EVENTS, TRACKS, stored_bytes, typical_user

#: Events per message in the batched drain.
BATCH_EVENTS: Final = 50
#: Fewest events a drain can be timed with.
MIN_EVENTS: Final = 100
#: The simulated world of every phase: users, tracks, artists.
USERS: Final = 500
#: A drain (or a worker start) that makes no progress for this long has failed.
STALL_S: Final = 120.0
#: py-spy samples per second in the profiled drain.
PROFILE_RATE_HZ: Final = 250


class BenchError(TunestreamError, RuntimeError):
    """A phase of the bench failed; the message says which and why, in one line."""


# --- pure helpers ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (``q`` in [0, 100]) of ``values``.

    >>> percentile([5, 1, 4, 2, 3], 50)
    3
    >>> percentile(range(1, 101), 99), percentile(range(1, 101), 100), percentile([7], 0)
    (99, 100, 7)
    """
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


#: The latency histogram's fixed buckets, ms: (up to, width), from 0: 1 ms wide up
#: to 50 ms, 2 ms to 100 ms, ... 1 s wide up to 60 s.
LATENCY_BUCKETS_MS: Final = (
    (50, 1),
    (100, 2),
    (200, 5),
    (500, 10),
    (1_000, 25),
    (2_000, 50),
    (5_000, 100),
    (10_000, 250),
    (60_000, 1_000),
)


def _latency_edges() -> tuple[int, ...]:
    edges, start = [0], 0
    for stop, width in LATENCY_BUCKETS_MS:
        edges += range(start + width, stop + 1, width)
        start = stop
    return tuple(edges)


#: Every bucket's edges, ms: 0, 1, 2, ... 50, 52, ... 59,000, 60,000.
LATENCY_EDGES_MS: Final = _latency_edges()


def latency_histogram(latencies_ms: Iterable[float]) -> dict[str, Any]:
    """Counts of ``latencies_ms`` in the fixed buckets of :data:`LATENCY_BUCKETS_MS`,
    kept from the first bucket that holds one to the last: ``edges_ms`` (one more
    than ``counts``; a bucket holds ``edges_ms[i] <= x < edges_ms[i + 1]``) and
    ``counts``; ``under`` and ``over`` count those below 0 and at or above 60 s.

    >>> latency_histogram([20, 21.5, 21, 23])
    {'edges_ms': [20, 21, 22, 23, 24], 'counts': [1, 2, 0, 1], 'under': 0, 'over': 0}
    >>> latency_histogram([98, 150, 70_000])["edges_ms"][:3], LATENCY_EDGES_MS[-1]
    ([98, 100, 105], 60000)
    """
    edges = LATENCY_EDGES_MS
    counts = [0] * (len(edges) - 1)
    under = over = 0
    for value in latencies_ms:
        if value < 0:
            under += 1
        elif value >= edges[-1]:
            over += 1
        else:
            counts[bisect.bisect_right(edges, value) - 1] += 1
    held = [i for i, count in enumerate(counts) if count]
    first, last = (held[0], held[-1] + 1) if held else (0, 0)
    return {
        "edges_ms": list(edges[first : last + 1]) if held else [],
        "counts": counts[first:last],
        "under": under,
        "over": over,
    }


def drain_rate(spans: Iterable[tuple[float, int]]) -> float:
    """Events per second from ``(processed_at_s, events)`` per message.

    The first message's events are not counted: the clock starts when it was
    processed. 0.0 when every message was processed at the same instant.

    >>> drain_rate([(10.0, 1), (10.5, 1), (11.0, 1)])
    2.0
    >>> drain_rate([(0.0, 50), (1.0, 50), (2.0, 100)])
    75.0
    >>> drain_rate([(1.0, 3)])
    0.0
    """
    points = sorted(spans)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return 0.0
    after_first = sum(events for _, events in points[1:])
    return after_first / (points[-1][0] - points[0][0])


def messages_of(events: Iterable[Event], per_message: int) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` messages of up to ``per_message`` events of one user, in order.

    A single event is sent as a JSON object, more as an array. A user's batch goes
    out when full, and the remainders at the end, so each user's events keep
    their order.

    >>> events = [{"user_id": u, "n": i} for i, u in enumerate("abab")]
    >>> messages_of(events, 1)[0]
    (b'a', b'{"user_id":"a","n":0}')
    >>> [(key, value.count(b"user_id")) for key, value in messages_of(events + events[:1], 2)]
    [(b'a', 2), (b'b', 2), (b'a', 1)]
    """
    if per_message < 1:
        raise ValueError(f"per_message must be >= 1, got {per_message}")
    messages: list[tuple[bytes, bytes]] = []
    buffers: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        user = event["user_id"]
        if per_message == 1:
            messages.append((user.encode(), encode(event)))
            continue
        buffer = buffers[user]
        buffer.append(event)
        if len(buffer) == per_message:
            messages.append((user.encode(), encode(buffer)))
            buffers[user] = []
    messages.extend((user.encode(), encode(rest)) for user, rest in buffers.items() if rest)
    return messages


def backlog_population(n_events: int, seed: int = 4) -> Population:
    """A population whose first ``n_events`` span the last ~50 minutes of event time."""
    return Population(
        PopulationConfig(
            seed=seed,
            n_users=USERS,
            n_tracks=TRACKS,
            n_artists=ARTISTS,
            start_ts_ms=now_ms() - 3_600_000,
            events_per_second=n_events / 3000,
        )
    )


def events_counted(metrics_text: str, outcomes: Iterable[str] | None = None) -> float:
    """The sum of ``tunestream_events_total`` in a ``/metrics`` body (all outcomes, or some).

    >>> body = '''# TYPE tunestream_events_total counter
    ... tunestream_events_total{type="play",outcome="ok"} 3.0
    ... tunestream_events_total{type="skip",outcome="ok"} 2.0
    ... tunestream_events_total{type="play",outcome="invalid"} 1.0
    ... '''
    >>> events_counted(body), events_counted(body, ["ok"])
    (6.0, 5.0)
    """
    wanted = None if outcomes is None else set(outcomes)
    return sample_sum(
        metrics_text,
        "tunestream_events_total",
        lambda labels: wanted is None or labels.get("outcome") in wanted,
    )


def sample_sum(
    metrics_text: str, name: str, where: Callable[[dict[str, str]], bool] = lambda _: True
) -> float:
    """The sum of the samples called ``name`` (whose labels pass ``where``) in a
    ``/metrics`` body; 0 if there are none."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name and where(sample.labels)
    )


def metrics_text(web_port: int) -> str:
    """The ``/metrics`` body of a worker on a loopback port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def ok_events(web_port: int) -> float:
    """Events a worker on ``web_port`` accepted (``outcome="ok"``), from its ``/metrics``."""
    return events_counted(metrics_text(web_port), ["ok"])


def accepted_events(web_port: int) -> float:
    """Like :func:`ok_events`, but :class:`BenchError` once any event was not accepted.

    The bench's events are all valid and new: a rejection means the worker is broken.
    """
    body = metrics_text(web_port)
    refused = events_counted(body) - events_counted(body, ["ok"])
    if refused:
        raise BenchError(f"the worker did not accept {refused:,.0f} events (dead-lettered)")
    return events_counted(body, ["ok"])


# --- the profile: which stage a sampled stack is in -------------------------------------------


@dataclass(frozen=True)
class Stage:
    """A stage of the worker, told by a function of a source file on a sampled stack.

    ``path`` is the end of a source path (``streams/contracts/events.py``) or, ending
    in ``/``, a package (``prometheus_client/``); no ``functions`` means any function.
    """

    name: str
    path: str
    functions: frozenset[str] = frozenset()

    def matches(self, function: str, file: str) -> bool:
        """True for a frame (short function name, file) of this stage.

        >>> Stage("x", "prometheus_client/").matches("inc", "prometheus_client/metrics.py")
        True
        >>> Stage("x", "streams/worker/app.py", frozenset({"_send"})).matches("_send", "app.py")
        False
        """
        if self.functions and function not in self.functions:
            return False
        if self.path.endswith("/"):
            return file.startswith(self.path) or any(
                f"{root}/{self.path}" in file for root in _ROOTS
            )
        return file == self.path or file.endswith(f"/{self.path}")


#: Where an absolute path's package part starts (py-spy mostly shortens them already).
_ROOTS: Final = (
    "site-packages",
    "dist-packages",
    f"/python{sys.version_info[0]}.{sys.version_info[1]}",
)


def _stage(name: str, path: str, *functions: str) -> Stage:
    return Stage(name, path, frozenset(functions))


DECODE: Final = "decode + validate"
FEATURES: Final = "dedupe + features"
STATE: Final = "state: table read, load, encode"
TABLE: Final = "table write (changelog send)"
OUTPUTS: Final = "output records: build + encode"
SENDS: Final = "sends (topic.send)"
LISTS: Final = "popularity + lists"
METRICS: Final = "metrics + observer"
INGEST_OTHER: Final = "other ingest code"
INGEST_FAUST: Final = "Faust stream (ingest agent)"
TRACK_AGENT: Final = "track-stats agent (all of it)"
FAUST_PRODUCER: Final = "Faust/aiokafka producer (buffer, batches, acks)"
FAUST: Final = "Faust/aiokafka consumer, commits, event loop"
TASKS: Final = "tunestream tasks, web, /metrics"
OTHER: Final = "other"

#: The stages of the ingest agent. On a stack below ``Worker.ingest`` the innermost
#: frame that one of these matches decides: decode inside ``ingest_message`` is
#: decode, the changelog send inside a table write is the table write.
STAGES: Final = (
    _stage(DECODE, "streams/contracts/events.py", "decode", "check", "_parse", "_explain"),
    _stage(FEATURES, "streams/pipeline/ingest.py", "ingest_message"),
    _stage(STATE, "streams/state/keyed_state.py", "from_state", "to_state"),
    _stage(STATE, "streams/state/live.py"),
    _stage(STATE, "streams/pipeline/message.py", "load"),
    _stage(STATE, "mode/utils/collections.py", "get", "__getitem__"),
    _stage(TABLE, "streams/kafka/direct.py", "put"),
    _stage(OUTPUTS, "streams/pipeline/message.py", "_forwards", "dead_letters", "_refuse_oversize"),
    _stage(SENDS, "streams/worker/app.py", "_send"),
    _stage(LISTS, "streams/pipeline/message.py", "_recommend", "applied"),
    _stage(METRICS, "streams/worker/app.py", "_count"),
    _stage(METRICS, "streams/ops/observability.py"),
    _stage(METRICS, "prometheus_client/"),
)
_INGEST: Final = _stage("ingest agent", "streams/worker/app.py", "ingest")
_TRACK: Final = _stage("track-stats agent", "streams/worker/app.py", "track_stats")
#: Packages whose frames are the framework (the bench's own faust_fixes patches too).
_FRAMEWORK: Final = tuple(
    _stage(FAUST, path)
    for path in ("faust/", "aiokafka/", "mode/", "asyncio/", "concurrent/", "aiohttp/", "yarl/",
                 "streams/kafka/faust_fixes.py", "selectors.py", "threading.py")
)  # fmt: skip
_PRODUCER: Final = (
    _stage(FAUST_PRODUCER, "aiokafka/producer/"),
    _stage(FAUST_PRODUCER, "faust/transport/producer.py"),
    _stage(FAUST_PRODUCER, "faust/topics.py", "publish_message", "_on_published"),
)
#: Our code outside the agents (entry points excluded: they are on every stack).
_OURS: Final = tuple(_stage(TASKS, path) for path in ("streams/", "features/", "online_models/"))
_ENTRY: Final = ("streams/__main__.py", "streams/tools/", "streams/worker/run.py")
#: Stage order in a breakdown.
STAGE_ORDER: Final = (
    DECODE, FEATURES, STATE, TABLE, OUTPUTS, SENDS, LISTS, METRICS, INGEST_OTHER, INGEST_FAUST,
    TRACK_AGENT, FAUST_PRODUCER, FAUST, TASKS, OTHER,
)  # fmt: skip


def parse_frame(frame: str) -> tuple[str, str]:
    """``(short function name, file)`` of a py-spy raw frame ``"Class.function (file:line)"``.

    >>> parse_frame("EventDecoder.decode (streams/contracts/events.py:120)")
    ('decode', 'streams/contracts/events.py')
    >>> parse_frame("plan.<locals>.<lambda> (streams/pipeline/message.py:9)")
    ('<lambda>', 'streams/pipeline/message.py')
    >>> parse_frame("<module> (<frozen runpy>:88)")
    ('<module>', '<frozen runpy>')
    >>> parse_frame("process 42")
    ('process 42', '')
    """
    function, sep, where = frame.strip().rpartition(" (")
    if not sep or not where.endswith(")"):
        return frame.strip(), ""
    file, colon, _line = where[:-1].rpartition(":")
    if function.endswith(">") and "<" in function:  # <module>, <lambda>, <listcomp>
        short = function[function.rfind("<") :]
    else:
        short = function.rpartition(".")[2]
    return short, file if colon else where[:-1]


def _any(stages: Iterable[Stage], function: str, file: str) -> bool:
    return any(stage.matches(function, file) for stage in stages)


def classify(frames: Sequence[str]) -> str:
    """The stage of one sampled stack (outermost frame first), one of :data:`STAGE_ORDER`.

    >>> base = ["BaseEventLoop._run_once (asyncio/base_events.py:1)",
    ...         "Agent._execute_actor (faust/agents/agent.py:698)",
    ...         "Worker.ingest (streams/worker/app.py:174)"]
    >>> classify(base + ["Worker.handle (streams/worker/app.py:201)",
    ...                  "ingest_message (streams/pipeline/ingest.py:90)",
    ...                  "EventDecoder.decode (streams/contracts/events.py:120)"])
    'decode + validate'
    >>> classify(base + ["Stream.events (faust/streams.py:900)"])
    'Faust stream (ingest agent)'
    >>> classify(base + ["Worker.handle (streams/worker/app.py:201)"])
    'other ingest code'
    >>> classify(["BaseEventLoop._run_once (asyncio/base_events.py:1)",
    ...           "Fetcher._fetch (aiokafka/consumer/fetcher.py:3)"])
    'Faust/aiokafka consumer, commits, event loop'
    >>> classify(["main (streams/tools/cli.py:299)", "Handle._run (asyncio/events.py:80)",
    ...           "ReplicatedTopic.run (streams/kafka/replicated.py:50)"])
    'tunestream tasks, web, /metrics'
    """
    parsed = [parse_frame(frame) for frame in frames]
    if any(_TRACK.matches(function, file) for function, file in parsed):
        return TRACK_AGENT
    ingest_at = next((i for i, (f, p) in enumerate(parsed) if _INGEST.matches(f, p)), None)
    if ingest_at is not None:
        below = parsed[ingest_at + 1 :]
        for function, file in reversed(below):
            for stage in STAGES:
                if stage.matches(function, file):
                    return stage.name
        if not below or _any(_FRAMEWORK, *below[0]):
            return INGEST_FAUST  # awaiting the next message: Faust's stream machinery
        return INGEST_OTHER
    ours = [
        (function, file)
        for function, file in parsed
        if not any(file.startswith(entry) for entry in _ENTRY)
    ]
    if any(_any(_OURS, function, file) and not _any(_FRAMEWORK, function, file)
           for function, file in ours):  # fmt: skip
        return TASKS
    if any(_any(_PRODUCER, function, file) for function, file in parsed):
        return FAUST_PRODUCER
    if any(_any(_FRAMEWORK, function, file) for function, file in parsed):
        return FAUST
    return OTHER


def stage_shares(raw_profile: str) -> tuple[dict[str, float], int]:
    """Share of samples per stage (in :data:`STAGE_ORDER`, all present) and the sample count.

    ``raw_profile`` is py-spy's ``--format raw``: one ``frame;frame;... count`` line
    per distinct stack, outermost frame first.

    >>> ingest = "Worker.ingest (streams/worker/app.py:1)"
    >>> text = f"{ingest};Worker._send (streams/worker/app.py:2) 3\\n"
    >>> text += "run (x.py:1) 1\\n"
    >>> shares, samples = stage_shares(text)
    >>> shares["sends (topic.send)"], shares["other"], samples
    (0.75, 0.25, 4)
    """
    counts: Counter[str] = Counter()
    for line in raw_profile.splitlines():
        stack, _, count = line.strip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[classify(stack.split(";"))] += int(count)
    total = sum(counts.values())
    shares = {name: (counts[name] / total if total else 0.0) for name in STAGE_ORDER}
    return shares, total


# --- presenting the figures ---------------------------------------------------------------------


def _number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "skipped"
    return f"{value:,.{digits}f}{unit}"


def figure_rows(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(figure, value, how it was measured)`` rows for the table.

    >>> rows = figure_rows({"events": 2000, "batch_events": 50, "events_per_s_single": 3000.4,
    ...     "events_per_s_single_learning_off": 3500, "learning_cost_share": 0.143,
    ...     "events_per_s_single_exploration_off": 3100, "exploration_cost_share": 0.032,
    ...     "learner_examples_per_s": 8000,
    ...     "events_per_s_batched": 9000, "faust_noop_messages_per_s": 6000,
    ...     "single_vs_noop_ratio": 0.5, "latency_p50_ms": None, "latency_p99_ms": None,
    ...     "bytes_per_user": 1900, "bytes_per_user_squeezed": 4900,
    ...     "ready_s": 4.25, "ready_s_each": [4.2, 4.3],
    ...     "cpu_count": 2, "python_version": "3.11.7", "platform": "Linux x86_64"})
    >>> rows[0]
    ('events/s, 1 event per message', '3,000', 'one worker draining a backlog of 2,000 events')
    >>> rows[2][:2], rows[4][:2], rows[9][:2]
    (('throughput learning costs', '14%'), ('throughput exploration costs', '3%'), \
('end-to-end latency p50 / p99', 'skipped'))
    """
    events = f"{result['events']:,}"
    if result.get("latency_p50_ms") is None:
        latency, how = "skipped", "--skip-latency"
    else:
        latency = f"{result['latency_p50_ms']:,.0f} / {result['latency_p99_ms']:,.0f} ms"
        how = (
            f"event time to list published, {result['latency_rate']:,.0f} events/s for "
            f"{result['latency_duration_s']:g} s ({result['latency_lists']:,} lists; "
            f"{result.get('latency_lists_warmup', 0):,} of the "
            f"{result.get('latency_warmup_s', 0):g} s warm-up left out)"
        )
    return [
        (
            "events/s, 1 event per message",
            _number(result["events_per_s_single"]),
            f"one worker draining a backlog of {events} events",
        ),
        (
            "events/s, 1 event per message, learning off",
            _number(result["events_per_s_single_learning_off"]),
            "the same drain without training examples, taste vectors or taste ranking",
        ),
        (
            "throughput learning costs",
            f"{result['learning_cost_share']:.0%}",
            "1 - learning on / learning off, single-event drains (budget: 30%)",
        ),
        (
            "events/s, 1 event per message, exploration off",
            _number(result["events_per_s_single_exploration_off"]),
            "the same drain, learning on, lists by taste only (no slot drawn or remembered)",
        ),
        (
            "throughput exploration costs",
            f"{result['exploration_cost_share']:.0%}",
            "1 - exploration on / off, single-event drains (part of the learning cost)",
        ),
        (
            f"events/s, {result['batch_events']} events per message",
            _number(result["events_per_s_batched"]),
            f"the same backlog in messages of {result['batch_events']} events of one user",
        ),
        (
            "Faust no-op agent, messages/s",
            _number(result["faust_noop_messages_per_s"]),
            f"an agent that only iterates the stream, backlog of {events} messages",
        ),
        (
            "learner, examples/s",
            _number(result["learner_examples_per_s"]),
            "per second of learning, one learner draining the single drain's examples",
        ),
        (
            "single-event worker / no-op",
            _number(result["single_vs_noop_ratio"], 2),
            "share of the framework's per-message ceiling the worker keeps",
        ),
        ("end-to-end latency p50 / p99", latency, how),
        *list_rows(result),
        (
            "stored state per active user",
            _number(result["bytes_per_user"], unit=" bytes"),
            f"deflated JSON, a heavy listener after {STATE_EVENTS:,} events over weeks",
        ),
        (
            "stored state, dedupe memory full",
            _number(result["bytes_per_user_squeezed"], unit=" bytes"),
            f"the same {STATE_EVENTS:,} events within minutes (every id within the lateness)",
        ),
        (
            "worker start to /readyz 200",
            _number(result["ready_s"], 1, " s"),
            f"median of {len(result['ready_s_each'])} workers (group join, catalog load)",
        ),
        (
            "machine",
            f"{result['cpu_count']} CPUs",
            f"Python {result['python_version']}, {result['platform']}, Tansu broker on loopback",
        ),
    ]


def list_rows(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Lists/s, the p95 latency and each stage's µs per list and share of worker CPU."""
    if result.get("latency_p50_ms") is None or "lists_per_s" not in result:
        return []
    rows = [
        (
            "lists/s at the latency load",
            _number(result["lists_per_s"], 1),
            f"against {result['latency_rate']:,.0f} events/s (saves, skip streaks and context "
            "changes at once, others at most one per user per refresh interval)",
        ),
        ("end-to-end latency p95", _number(result["latency_p95_ms"], unit=" ms"), "same load"),
    ]
    for stage, micros in result["list_stage_us"].items():
        share = result["list_stage_cpu_share"][stage]
        rows.append(
            (
                f"list {stage}, µs per list",
                _number(micros, 1),
                f"{'?' if share is None else f'{100 * share:.1f}%'} of the worker's CPU",
            )
        )
    return rows


def profile_rows(profile: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(stage, share of CPU samples, µs of worker CPU per event)`` rows.

    >>> profile_rows({"stages": {"decode + validate": 0.25, "other": 0.0},
    ...               "worker_cpu_us_per_event": 200.0})
    [('decode + validate', '25.0%', '50.0'), ('other', '0.0%', '0.0')]
    """
    per_event = profile.get("worker_cpu_us_per_event")
    return [
        (
            name,
            f"{share * 100:.1f}%",
            "-" if per_event is None else f"{share * per_event:.1f}",
        )
        for name, share in profile["stages"].items()
    ]


def print_tables(result: Mapping[str, Any], out: TextIO) -> None:
    """The figures (and the profile, if measured) as tables: rich on a terminal, else plain."""
    tables = [("tunestream bench", ("figure", "value", "how"), figure_rows(result))]
    profile = result.get("profile")
    if profile:
        title = (
            f"where the worker's CPU goes, 1 event per message ({profile['samples']:,} "
            f"py-spy samples, {_number(profile['worker_cpu_us_per_event'])} µs CPU per event)"
        )
        tables.append((title, ("stage", "share of CPU", "µs / event"), profile_rows(profile)))
    write_tables(tables, out, text_columns=("figure", "how", "stage"))


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy_binary() -> str | None:
    """The ``py-spy`` executable beside this interpreter, or on ``PATH``."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class BenchOptions:
    """What to measure; the CLI's flags."""

    events: int = 20_000
    batch_events: int = BATCH_EVENTS
    latency: bool = True
    rate: float = 1_000.0
    duration_s: float = 20.0
    warmup_s: float = 3.0
    profile: bool = False

    def __post_init__(self) -> None:
        if self.events < MIN_EVENTS:
            raise ValueError(f"events must be >= {MIN_EVENTS}, got {self.events}")
        if self.batch_events < 1:
            raise ValueError(f"batch_events must be >= 1, got {self.batch_events}")
        if not self.rate > 0 or not self.duration_s > 0:
            raise ValueError("rate and duration must be > 0")
        if not self.warmup_s >= 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup_s}")


@dataclass
class _Run:
    """One bench run: the broker's address, a work directory, what was started."""

    base: Settings
    workdir: Path
    reporter: Reporter
    stack: contextlib.ExitStack
    ready_s: list[float] = field(default_factory=list)

    snapshot_key: str = field(default_factory=lambda: secrets.token_hex(32))
    settings_of: dict[str, Settings] = field(default_factory=dict)

    def phase_settings(
        self, phase: str, learning: bool = True, exploration: bool = True
    ) -> Settings:
        name = f"bench-{phase}-{uuid.uuid4().hex[:6]}"
        settings = self.base.namespaced(
            name,
            data_dir=str(self.workdir / name),
            web_port=free_port(),
            learner_web_port=free_port(),
            learning="on" if learning else "off",
            exploration="on" if learning and exploration else "off",
            snapshot_key=self.snapshot_key,
        )
        asyncio.run(ensure_topics(settings))
        self.settings_of[phase] = settings
        return settings

    def spawn(self, name: str, argv: Sequence[str], settings: Settings) -> Child:
        child = spawn(name, argv, settings, self.workdir / f"{settings.app_id}.log")
        self.stack.callback(child.stop)
        return child

    def start_worker(self, settings: Settings) -> Child:
        """A tunestream worker; returns once its ``/readyz`` answers 200."""
        log = self.workdir / f"{settings.app_id}.log"
        worker, ready_s = start_worker(settings, log, self.reporter)
        self.stack.callback(worker.stop)
        self.ready_s.append(ready_s)
        return worker


def spawn(name: str, argv: Sequence[str], settings: Settings, log: Path) -> Child:
    """Start ``argv`` with ``settings`` as ``TUNESTREAM_*`` variables, its output in ``log``."""
    env = dict(os.environ)
    env.update({env_name(k): str(v) for k, v in vars(settings).items()})
    return Child(name, argv, env, log, error=BenchError).start()


def start_worker(
    settings: Settings, log: Path, reporter: Reporter | None = None
) -> tuple[Child, float]:
    """``python -m streams worker`` with ``settings``, once its ``/readyz`` answers 200.

    Returns the worker and the seconds from its start to ready; the caller stops it.
    """
    worker = spawn("worker", [sys.executable, "-m", "streams", "worker"], settings, log)
    try:
        deadline = worker.started_at + STALL_S
        while http_get(settings.web_port, "/readyz", timeout_s=2)[0] != 200:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the worker was not ready after {STALL_S:.0f} s; its log: {worker.log_tail()}"
                )
            if reporter is not None:
                waited = time.monotonic() - worker.started_at
                reporter.progress(f"waiting for the worker's /readyz ({waited:.1f} s)")
            time.sleep(0.05)
    except BaseException:
        worker.stop()
        raise
    return worker, time.monotonic() - worker.started_at


def _wait_for(
    child: Child, count: Callable[[], float], total: int, what: str, reporter: Reporter
) -> None:
    """Poll ``count()`` until it reaches ``total``; fail if it stalls or the child dies."""
    last, last_change = -1.0, time.monotonic()
    while True:
        child.check_alive()
        try:
            done = count()
        except BenchError as exc:
            raise BenchError(f"{what}: {exc}; {child.name} log: {child.log_tail()}") from None
        except OSError:  # its web server did not answer this time
            done = max(last, 0.0)
        if done >= total:
            return
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        elif now - last_change > STALL_S:
            raise BenchError(
                f"{what}: stuck at {done:,.0f} of {total:,} for {STALL_S:.0f} s; "
                f"{child.name} log: {child.log_tail()}"
            )
        reporter.progress(f"{what}: {done:,.0f} / {total:,}")
        time.sleep(0.25)


async def _publish_messages(settings: Settings, messages: Sequence[tuple[bytes, bytes]]) -> None:
    async with EventProducer(
        settings.bootstrap_servers, settings.events_topic, **security_options(settings)
    ) as producer:
        for key, value in messages:
            await producer.publish_raw(value, key)


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now, all partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_options(settings),
    )
    records: list[Any] = []
    try:
        await consumer.start()
        if topic not in await consumer.topics():  # also refreshes the metadata
            raise BenchError(f"topic {topic} does not exist")
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        # Tansu's ListOffsets answers the last batch's base offset + 1: ask a fetch.
        options = {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}
        ends = await fetched_end_offsets(options, await consumer.end_offsets(partitions))
        await consumer.seek_to_beginning(*partitions)
        left = {tp for tp in partitions if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for tp, part in batch.items():
                records.extend(r for r in part if r.offset < ends[tp])
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return records


def _drain(
    run: _Run,
    phase: str,
    per_message: int,
    n_events: int,
    *,
    profile: bool = False,
    learning: bool = True,
    exploration: bool = True,
) -> tuple[float, dict[str, Any] | None]:
    """One worker drains ``n_events`` pre-published events: (events/s, profile or None).

    With ``learning``, the worker starts from a snapshot of the catalog's tracks
    (so lists are ranked by taste) and sends a training example per event; no
    learner runs during the drain (:func:`_learner_rate` times one afterwards).
    """
    settings = run.phase_settings(phase, learning, exploration)
    population = backlog_population(n_events)
    messages = messages_of(population.take(n_events), per_message)
    asyncio.run(publish_catalog(settings, (t.to_dict() for t in population.tracks)))
    if learning:
        asyncio.run(publish_starting_snapshot(settings, population))
    if not profile:  # a backlog: the worker drains it at its own pace
        asyncio.run(_publish_messages(settings, messages))
    worker = run.start_worker(settings)
    sampler: subprocess.Popen[bytes] | None = None
    profile_path = run.workdir / f"{settings.app_id}.pyspy.txt"
    if profile:
        # Published only once the sampler is attached: a small backlog could
        # otherwise be drained before the first sample.
        sampler = _start_py_spy(worker.pid, profile_path, run.workdir / "py-spy.log")
        run.stack.callback(_stop_py_spy, sampler)
        profiled_from = ok_events(settings.web_port), cpu_seconds(worker.pid)
        asyncio.run(_publish_messages(settings, messages))
    _wait_for(
        worker,
        lambda: accepted_events(settings.web_port),
        n_events,
        f"{phase} drain",
        run.reporter,
    )
    profiled: dict[str, Any] | None = None
    if sampler is not None:
        events_to, cpu_to = ok_events(settings.web_port), cpu_seconds(worker.pid)
        _stop_py_spy(sampler)
        shares, samples = stage_shares(_read_profile(profile_path))
        events_from, cpu_from = profiled_from
        cpu_us = (
            (cpu_to - cpu_from) / (events_to - events_from) * 1e6
            if cpu_to is not None and cpu_from is not None and events_to > events_from
            else None
        )
        profiled = {
            "sampler": "py-spy",
            "samples": samples,
            "events": int(events_to - events_from),
            "worker_cpu_us_per_event": None if cpu_us is None else round(cpu_us, 1),
            "stages": {name: round(share, 4) for name, share in shares.items()},
        }
    points = _forwarded(settings, n_events, worker)
    worker.stop()
    rate = drain_rate(points)
    if rate <= 0:
        raise BenchError(f"{phase} drain: too quick to time; use more --events")
    if profiled is not None:
        profiled["events_per_s"] = round(rate, 1)  # under the sampler: not a figure to quote
    return rate, profiled


def starting_snapshot(population: Population, taste_factors: int, key: bytes, at_ms: int) -> bytes:
    """A snapshot signed with ``key``, holding a vector and statistics for every track of
    ``population``'s catalog (:mod:`benchmarks.pipeline` serves it too)."""
    learner = Learner(taste_factors=taste_factors)
    learner.set_catalog({t.track_id: (t.artist_id, t.genres) for t in population.tracks})
    for track in population.tracks:  # a row and statistics for each: costs as in use
        learner.taste.track_vector(track.track_id)
        learner.track_stats.update(track.track_id, "play", at_ms)
    return encode_snapshot(learner.snapshot(at_ms), key)


async def publish_starting_snapshot(settings: Settings, population: Population) -> None:
    """:func:`starting_snapshot`, signed with the settings' key, on the snapshots topic."""
    key = settings.snapshot_key.encode()
    blob = starting_snapshot(population, settings.taste_factors, key, now_ms())
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        max_request_size=settings.snapshot_max_bytes,
        **security_options(settings),
    )
    await producer.start()
    try:
        await producer.send_and_wait(settings.snapshots_topic, blob, key=SNAPSHOT_NAME.encode())
    finally:
        await producer.stop()


def _learner_rate(run: _Run, phase: str, n_events: int) -> float:
    """A learner drains the ``n_events`` examples the ``phase`` drain left: examples
    learned per second of learning (its ``/metrics``: what one learner can keep up with)."""
    settings = run.settings_of[phase]
    learner = run.spawn("learner", [sys.executable, "-m", "streams", "learner"], settings)

    port = settings.learner_web_port

    def learned() -> float:
        return sample_sum(metrics_text(port), "tunestream_learner_examples_total")

    _wait_for(learner, learned, n_events, "learner", run.reporter)
    text = metrics_text(port)
    learner.stop()
    seconds = sample_sum(text, "tunestream_learner_learning_seconds_total")
    return sample_sum(text, "tunestream_learner_examples_total") / seconds if seconds else 0.0


def _forwarded(settings: Settings, n_events: int, worker: Child) -> list[tuple[float, int]]:
    """``(sent_at_s, events)`` of each clean-topic record, once all ``n_events`` are there.

    The worker counts an event once its records are handed to its producer; they
    reach the broker a linger later.
    """
    deadline = time.monotonic() + 30.0
    while True:
        clean = asyncio.run(read_topic(settings, settings.clean_topic))
        points = [(r.timestamp / 1000.0, len(orjson.loads(r.value))) for r in clean]
        forwarded = sum(events for _, events in points)
        if forwarded >= n_events:
            return points
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"only {forwarded:,} of {n_events:,} events reached {settings.clean_topic}"
            )
        time.sleep(0.5)


def _start_py_spy(pid: int, output: Path, log: Path) -> subprocess.Popen[bytes]:
    binary = py_spy_binary()
    if binary is None:
        raise BenchError(
            "--profile needs py-spy: pip install 'tunestream[profile]' (or pip install py-spy)"
        )
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(PROFILE_RATE_HZ),
        "--gil",  # only the thread holding the GIL: Python on the CPU, never a thread idling
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    with open(log, "ab") as out:
        sampler = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    time.sleep(0.5)
    if sampler.poll() is not None:
        raise BenchError(
            f"py-spy could not attach to the worker (pid {pid}): "
            f"{log.read_text(errors='replace')[-500:].strip()} "
            "(in a container it needs the SYS_PTRACE capability)"
        )
    return sampler


def _stop_py_spy(sampler: subprocess.Popen[bytes]) -> None:
    """SIGINT: py-spy stops sampling and writes its output."""
    if sampler.poll() is None:
        os.kill(sampler.pid, signal.SIGINT)
        try:
            sampler.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(sampler.pid, signal.SIGKILL)
            sampler.wait()


def _read_profile(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise BenchError(f"py-spy wrote no profile ({exc.strerror})") from None


def _noop(run: _Run, n_messages: int) -> float:
    """The Faust no-op app drains ``n_messages`` one-event messages: messages/s."""
    settings = run.phase_settings("noop")
    population = backlog_population(n_messages)
    asyncio.run(_publish_messages(settings, messages_of(population.take(n_messages), 1)))
    argv = [sys.executable, "-m", "streams.tools.bench_worker", "noop"]
    app = run.spawn("Faust no-op worker", argv, settings)

    def seen() -> float:
        status, body = http_get(settings.web_port, "/count", timeout_s=2)
        return float(orjson.loads(body)["messages"]) if status == 200 else 0.0

    _wait_for(app, seen, n_messages, "no-op drain", run.reporter)
    _, body = http_get(settings.web_port, "/count")
    app.stop()
    count = orjson.loads(body)
    if count["last_s"] <= count["first_s"]:
        raise BenchError("no-op drain: too quick to time; use more --events")
    return (count["messages"] - 1) / (count["last_s"] - count["first_s"])


async def _paced_load(
    settings: Settings, population: Population, duration_s: float, reporter: Reporter
) -> int:
    started = time.monotonic()
    sent = 0
    async with EventProducer(
        settings.bootstrap_servers, settings.events_topic, **security_options(settings)
    ) as producer:
        async for event in simulated_events(
            population, paced=True, events=None, duration_s=duration_s
        ):
            await producer.publish(event)
            sent += 1
            if sent % 500 == 0:
                elapsed = time.monotonic() - started
                reporter.progress(
                    f"latency load: {elapsed:4.1f} / {duration_s:g} s, {sent:,} events"
                )
    return sent


def latency_population(rate: float, start_ms: int) -> Population:
    """The seeded listeners of the latency phase, publishing ``rate`` events/s from
    ``start_ms`` (:mod:`benchmarks.pipeline` plans the same stream in process)."""
    return Population(
        PopulationConfig(
            seed=7,
            n_users=USERS,
            n_tracks=TRACKS,
            n_artists=ARTISTS,
            start_ts_ms=start_ms,
            events_per_second=rate,
        )
    )


def _latency(run: _Run, rate: float, duration_s: float, warmup_s: float) -> dict[str, Any]:
    """Lists' latency while the simulator publishes ``rate`` events/s to a ready worker:
    ``warmup_s`` of load, then ``duration_s`` measured (lists whose trigger event came
    in the warm-up are counted apart)."""
    settings = run.phase_settings("latency")
    asyncio.run(
        publish_catalog(settings, (t.to_dict() for t in latency_population(rate, now_ms()).tracks))
    )
    worker = run.start_worker(settings)
    run.reporter.phase(
        f"latency: {rate:,.0f} events/s for {warmup_s:g} s of warm-up, then {duration_s:g} s"
    )
    cpu_before, started, load_ms = cpu_seconds(worker.pid), time.monotonic(), now_ms()
    sent = asyncio.run(
        _paced_load(
            settings, latency_population(rate, now_ms()), warmup_s + duration_s, run.reporter
        )
    )
    _wait_for(
        worker, lambda: accepted_events(settings.web_port), sent, "latency tail", run.reporter
    )
    time.sleep(0.5)  # the last lists are on their way to the broker
    cpu_after, elapsed = cpu_seconds(worker.pid), time.monotonic() - started
    stages = list_stage_seconds(metrics_text(settings.web_port))
    worker.stop()
    records = asyncio.run(read_topic(settings, settings.recommendations_topic))
    lists = [orjson.loads(record.value) for record in records]
    latencies, warm = measured_latencies(lists, load_ms + warmup_s * 1000)
    if not latencies:
        raise BenchError(
            f"latency: no recommendation list arrived; worker log: {worker.log_tail()}"
        )
    if clock_ran_back(latencies):
        raise BenchError(
            "latency: most lists were published at or before their event's time: the "
            "event times ran ahead of the worker's clock (was the wall clock stepped "
            "back during the load?); run again"
        )
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "latency_p50_ms": float(percentile(latencies, 50)),
        "latency_p95_ms": float(percentile(latencies, 95)),
        "latency_p99_ms": float(percentile(latencies, 99)),
        "latency_histogram_ms": latency_histogram(latencies),
        "latency_lists": len(latencies),
        "latency_warmup_s": warmup_s,
        "latency_lists_warmup": warm,
        "latency_events": sent,
        "lists_per_s": round(len(lists) / elapsed, 1),
        "list_stage_us": {
            stage: round(1e6 * total / max(1, len(lists)), 1) for stage, total in stages.items()
        },
        "list_stage_cpu_share": {
            stage: None if not cpu else round(total / cpu, 4) for stage, total in stages.items()
        },
    }


def measured_latencies(lists: Iterable[Mapping[str, Any]], from_ms: float) -> tuple[list[int], int]:
    """The ``latency_ms`` of lists whose trigger event came at or after ``from_ms`` (the
    event time is ``generated_at - latency_ms``), and how many came before.

    >>> measured_latencies([{"generated_at": 1_050, "latency_ms": 30},
    ...                     {"generated_at": 990, "latency_ms": 40}], from_ms=1_000)
    ([30], 1)
    """
    measured, warm = [], 0
    for record in lists:
        if record["generated_at"] - record["latency_ms"] >= from_ms:
            measured.append(record["latency_ms"])
        else:
            warm += 1
    return measured, warm


def clock_ran_back(latencies_ms: Sequence[float]) -> bool:
    """Whether most latencies are 0: a list cannot be published the moment its event
    happens, so the event times ran ahead of the clock that stamped the lists (the
    worker clamps a negative latency to 0).

    >>> clock_ran_back([0, 0, 0, 21]), clock_ran_back([0, 18, 25, 30])
    (True, False)
    """
    return sum(1 for value in latencies_ms if value <= 0) > len(latencies_ms) / 2


def list_stage_seconds(metrics_body: str) -> dict[str, float]:
    """Seconds the worker spent in each stage of building lists, from its ``/metrics``."""

    def of(stage: str) -> Callable[[dict[str, str]], bool]:
        return lambda labels: labels.get("stage") == stage

    name = "tunestream_list_stage_seconds_sum"
    return {stage: sample_sum(metrics_body, name, of(stage)) for stage in LIST_STAGES}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from streams.ops.metrics import build_versions

    versions = build_versions()
    return {
        "cpu_count": os.cpu_count(),
        "python_version": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "faust_version": versions["faust"],
    }


def run_bench(
    settings: Settings, options: BenchOptions, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Measure every figure in one run; see the module docstring for each key."""
    reporter = reporter or Reporter()
    result: dict[str, Any] = {"events": options.events, "batch_events": options.batch_events}
    reporter.phase(f"state bytes of a user after {STATE_EVENTS:,} events")
    result["bytes_per_user"] = stored_bytes(typical_user())
    result["bytes_per_user_squeezed"] = stored_bytes(typical_user(clock="stream"))
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tunestream-bench-")))
        broker = stack.enter_context(EmbeddedBroker())
        run = _Run(settings.replace(broker=broker.bootstrap_servers), workdir, reporter, stack)
        n = options.events
        reporter.phase(
            f"single-event drain: {n:,} events, 1 per message (broker {broker.bootstrap_servers})"
        )
        single, _ = _drain(run, "single", 1, n)
        reporter.phase(f"single-event drain with learning off: {n:,} events")
        single_off, _ = _drain(run, "single-off", 1, n, learning=False)
        reporter.phase(f"single-event drain with exploration off: {n:,} events")
        single_plain, _ = _drain(run, "single-no-exploration", 1, n, exploration=False)
        reporter.phase(f"batched drain: {n:,} events, {options.batch_events} per message")
        batched, _ = _drain(run, "batched", options.batch_events, n)
        reporter.phase(f"Faust no-op agent: {n:,} messages")
        noop = _noop(run, n)
        reporter.phase(f"learner: the {n:,} examples of the single-event drain")
        learner = _learner_rate(run, "single", n)
        result.update(
            events_per_s_single=round(single, 1),
            events_per_s_single_learning_off=round(single_off, 1),
            learning_cost_share=round(1.0 - single / single_off, 3),
            events_per_s_single_exploration_off=round(single_plain, 1),
            exploration_cost_share=round(1.0 - single / single_plain, 3),
            events_per_s_batched=round(batched, 1),
            faust_noop_messages_per_s=round(noop, 1),
            single_vs_noop_ratio=round(single / noop, 3),
            learner_examples_per_s=round(learner, 1),
        )
        result.update(latency_rate=options.rate, latency_duration_s=options.duration_s)
        if options.latency:
            result.update(_latency(run, options.rate, options.duration_s, options.warmup_s))
        else:
            result.update(
                latency_p50_ms=None,
                latency_p95_ms=None,
                latency_p99_ms=None,
                latency_lists=0,
                latency_events=0,
            )
        if options.profile:
            reporter.phase(f"profiled single-event drain: {n:,} events, py-spy attached")
            _, result["profile"] = _drain(run, "profile", 1, n, profile=True)
        result["ready_s"] = round(statistics.median(run.ready_s), 2)
        result["ready_s_each"] = [round(s, 2) for s in run.ready_s]
    reporter.phase("done")
    result.update(machine())
    return result


#: The keys every ``--json`` answer holds.
REQUIRED_KEYS: Final = (
    "events",
    "events_per_s_single",
    "events_per_s_single_learning_off",
    "learning_cost_share",
    "events_per_s_single_exploration_off",
    "exploration_cost_share",
    "events_per_s_batched",
    "faust_noop_messages_per_s",
    "learner_examples_per_s",
    "single_vs_noop_ratio",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "bytes_per_user",
    "bytes_per_user_squeezed",
    "ready_s",
    "cpu_count",
    "python_version",
)
