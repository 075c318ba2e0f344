"""``tunestream replay``: a real listening log published through the running pipeline.

The log is read whole by :func:`streams.tools.loaders.load` (any of its
formats), its catalog records (if the format yields some, or ``--catalog``)
published first (:func:`~streams.tools.publish.publish_catalog`), then its
events in event-time order, one event per message, keyed by user, with a
progress line.

**Time.** Event times are re-based (:func:`rebase`): the first event lies at
``start_ms`` (now, by default) and every gap is divided by ``speed``; paced
(the default), each event is sent when the wall clock reaches its new time, so
the worker's refresh debounce and trending timer see the log's own rhythm,
``speed`` times faster. With ``as_fast_as_possible`` the events go out as fast
as the producer sends them, their times still spaced by ``speed``, and the
*last* event lies at now (a worker refuses events stamped more than
``TUNESTREAM_MAX_FUTURE_MS`` ahead, and a log of days sent in seconds would be).
The debounce runs on the worker's wall clock, so unpaced replays get fewer lists.

**Reruns.** Event ids come from the log (``jsonl``) or from its content (the
other formats: :mod:`streams.tools.loaders`), so they are the same at every run.
The worker drops a repeated id while it lies within the allowed lateness of the
user's newest event; pass the first run's ``--start-ms`` (printed) to give a
rerun the same times, and then it changes no feature: repeats within the
lateness are duplicates, older ones are refused as too late.

**Scoring** (``score``). A reader, started before the first event goes out,
takes from the ``recommendations`` topic every list whose trigger is one of the
replay's events, and from the clean and dead-letter topics which events the
worker accepted or refused. It stops when every event is accounted for (then
one more ``SETTLE_S`` for the last lists), after ``quiet_s`` with nothing new,
or after ``timeout_s``. :func:`online_models.published_lists.score_published`
then judges every positive event against the list the user had just before it,
by the offline evaluation's definitions. ``compare`` also runs the worker's own
planner in process on the same re-based events
(:func:`streams.tools.in_process.planned_lists`: the events' clock, untrained
models, no editorial sets) and scores its lists the same way: the parity check.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from features import TrackInfo
from features.errors import TunestreamError
from online_models.published_lists import score_published
from streams.contracts.clock import now_ms
from streams.contracts.events import Event
from streams.kafka.faust_fixes import fetched_end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.security import security_options
from streams.settings import Settings
from streams.tools.console import Reporter, Table, write_tables
from streams.tools.evaluate import PUBLISHED_HEADERS, published_row
from streams.tools.in_process import score_planned
from streams.tools.loaders import LoadedLog, load
from streams.tools.local_pipeline import local_pipeline
from streams.tools.publish import publish_catalog

#: After every event is accounted for, how long the last lists may still take.
SETTLE_S: Final = 1.0
#: A running pipeline's workers read the catalog topic on their own: time to let them.
CATALOG_SETTLE_S: Final = 2.0
#: Events between two progress updates.
_PROGRESS_EVERY: Final = 50


class ReplayError(TunestreamError, RuntimeError):
    """The replay could not run; the message says why, in one line."""


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay, how fast, and what to do with the lists."""

    log: Sequence[str]
    fmt: str = "jsonl"
    catalog: str | None = None
    speed: float = 1.0
    as_fast_as_possible: bool = False
    #: event time of the first event (paced) or of the last (as fast as possible); None: now
    start_ms: int | None = None
    score: bool = False
    compare: bool = False
    timeout_s: float = 120.0
    quiet_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed!r}")
        if not self.log:
            raise ValueError("no log file given")


def rebase(events: Sequence[Event], speed: float, start_ms: int) -> list[Event]:
    """Copies of ``events`` (in event-time order) whose first lies at ``start_ms`` and
    whose gaps are divided by ``speed`` (rounded to whole ms: order kept).

    >>> events = [{"event_id": "a", "ts": 1_000_000}, {"event_id": "b", "ts": 1_060_000}]
    >>> [e["ts"] for e in rebase(events, speed=60, start_ms=5_000)]
    [5000, 6000]
    >>> events[1]["ts"]  # the originals are left as they were
    1060000
    """
    if not events:
        return []
    first = int(events[0]["ts"])
    return [
        {**event, "ts": start_ms + round((int(event["ts"]) - first) / speed)} for event in events
    ]


def start_of(events: Sequence[Event], speed: float, paced: bool, now: int) -> int:
    """Where the first event goes: ``now`` paced; as fast as possible, so that the
    last event lies at ``now``.

    >>> events = [{"ts": 0}, {"ts": 600_000}]
    >>> start_of(events, 10, True, 1_000_000), start_of(events, 10, False, 1_000_000)
    (1000000, 940000)
    """
    if paced or not events:
        return now
    return now - round((int(events[-1]["ts"]) - int(events[0]["ts"])) / speed)


def catalog_of(loaded: LoadedLog) -> dict[str, TrackInfo]:
    """The log's catalog, by track id."""
    return {str(r["track_id"]): TrackInfo.from_record(r) for r in loaded.catalog}


@dataclass
class ListReader:
    """The replay's lists, accepted and refused events, read from the end offsets of
    the ``recommendations``, clean and dead-letter topics at :meth:`start`."""

    settings: Settings
    wanted: frozenset[str]
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    forwarded: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)
    last_new: float = field(default_factory=time.monotonic)
    _consumer: AIOKafkaConsumer | None = None
    _refused_ids: set[str] = field(default_factory=set)

    @property
    def accounted(self) -> int:
        """Events the worker accepted or refused so far."""
        return len(self.forwarded | self._refused_ids)

    async def start(self) -> None:
        settings = self.settings
        options = {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}
        consumer = self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
        await consumer.start()
        topics = (settings.recommendations_topic, settings.clean_topic, settings.dlq_topic)
        known = await consumer.topics()
        missing = [topic for topic in topics if topic not in known]
        if missing:
            raise ReplayError(f"topic {missing[0]!r} does not exist on {settings.broker}")
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        # Tansu's ListOffsets answers the last batch's base offset + 1: ask a fetch.
        ends = await fetched_end_offsets(options, await consumer.end_offsets(partitions))
        for tp in partitions:
            consumer.seek(tp, ends[tp])

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> None:
        assert self._consumer is not None
        settings = self.settings
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        for tp, records in batch.items():
            for record in records:
                if record.value is None:
                    continue
                try:
                    value = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    continue
                if tp.topic == settings.recommendations_topic:
                    self._list(value)
                elif tp.topic == settings.clean_topic:
                    self._forwarded(value)
                else:
                    self._dead_letter(value)

    def _list(self, value: Any) -> None:
        trigger = value.get("trigger_event_id") if isinstance(value, dict) else None
        if trigger in self.wanted:
            self.lists[trigger] = value
            self.last_new = time.monotonic()

    def _forwarded(self, value: Any) -> None:
        for event in value if isinstance(value, list) else ():
            event_id = event.get("event_id") if isinstance(event, dict) else None
            if event_id in self.wanted and event_id not in self.forwarded:
                self.forwarded.add(event_id)
                self.last_new = time.monotonic()

    def _dead_letter(self, value: Any) -> None:
        event_id = value.get("event_id") if isinstance(value, dict) else None
        if event_id in self.wanted and event_id not in self._refused_ids:
            self._refused_ids.add(event_id)
            self.refused[str(value.get("reason"))] += 1
            self.last_new = time.monotonic()

    async def drain(
        self, sent: int, timeout_s: float, quiet_s: float, reporter: Reporter, stop: asyncio.Event
    ) -> bool:
        """Read until all ``sent`` events are accounted for (True), or quiet, timeout or
        ``stop``."""
        deadline = time.monotonic() + timeout_s
        self.last_new = time.monotonic()
        while self.accounted < sent:
            now = time.monotonic()
            if now > deadline or now - self.last_new > quiet_s or stop.is_set():
                return False
            await self.poll()
            reporter.progress(
                f"read back: {self.accounted:,} / {sent:,} events handled, "
                f"{len(self.lists):,} lists"
            )
        settle = time.monotonic() + SETTLE_S
        while time.monotonic() < settle:
            await self.poll()
        return True


async def publish_events(
    settings: Settings,
    events: Sequence[Event],
    paced: bool,
    reporter: Reporter,
    stop: asyncio.Event,
) -> int:
    """Send ``events`` one per message (paced to their times, or as fast as possible);
    the number sent and acknowledged. ``stop`` ends it early."""
    sent = 0
    started = time.monotonic()
    async with EventProducer(
        settings.bootstrap_servers,
        settings.events_topic,
        max_batch_events=1,  # one event per message, as the in-process planner is fed
        **security_options(settings),
    ) as producer:
        first = int(events[0]["ts"]) if events else 0
        for event in events:
            if paced:
                ahead_s = (int(event["ts"]) - first) / 1000 - (time.monotonic() - started)
                if ahead_s > 0.002:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), ahead_s)
            elif sent % 1000 == 0:
                await asyncio.sleep(0)  # let the producer's batches go out
            if stop.is_set():
                break
            await producer.publish(event)
            sent += 1
            if sent % _PROGRESS_EVERY == 0 or sent == len(events):
                elapsed = max(time.monotonic() - started, 1e-9)
                reporter.progress(
                    f"replay: {_bar(sent, len(events))} {sent:,} / {len(events):,} events, "
                    f"{sent / elapsed:,.0f} ev/s"
                )
    return sent


def _bar(done: int, total: int, width: int = 24) -> str:
    """A text progress bar.

    >>> _bar(1, 4, width=8)
    '[##......]'
    """
    filled = width * done // max(1, total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` while the replay runs; the previous handlers after."""
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


async def replay_through(
    settings: Settings,
    options: ReplayOptions,
    loaded: LoadedLog,
    reporter: Reporter,
    *,
    publish_catalog_first: bool = True,
) -> dict[str, Any]:
    """Publish the log through the pipeline at ``settings``; the report (scored if asked)."""
    catalog = catalog_of(loaded)
    if loaded.catalog and publish_catalog_first:
        sent_tracks = await publish_catalog(settings, loaded.catalog)
        reporter.phase(f"published {sent_tracks:,} catalog tracks to {settings.catalog_topic}")
        await asyncio.sleep(CATALOG_SETTLE_S)
    paced = not options.as_fast_as_possible
    start_ms = options.start_ms
    if start_ms is None:
        start_ms = start_of(loaded.events, options.speed, paced, now_ms())
    events = rebase(loaded.events, options.speed, start_ms)
    reader = ListReader(settings, frozenset(str(e["event_id"]) for e in events))
    if options.score:
        await reader.start()
    stop = asyncio.Event()
    began = time.monotonic()
    try:
        with _stop_on_signals(stop):
            span_s = (events[-1]["ts"] - events[0]["ts"]) / 1000 if events else 0.0
            reporter.phase(
                f"sending {len(events):,} events ({'paced, ' if paced else 'unpaced, '}"
                f"{span_s:,.1f} s of re-based event time) from start_ms {start_ms}"
            )
            task = asyncio.create_task(publish_events(settings, events, paced, reporter, stop))
            while not task.done():
                if options.score:
                    await reader.poll(timeout_ms=100)  # keep up while sending
                else:
                    await asyncio.wait({task}, timeout=0.2)
            sent = task.result()
            reporter.done()
            report: dict[str, Any] = {
                "source": f"{options.fmt} log {', '.join(options.log)}",
                "events": len(events),
                "sent": sent,
                "interrupted": stop.is_set(),
                "speed": options.speed,
                "paced": paced,
                "start_ms": start_ms,
                "send_s": round(time.monotonic() - began, 3),
                "catalogue_tracks": len(catalog),
                "skipped_lines": loaded.skipped,
            }
            if not options.score or stop.is_set():
                return report
            reporter.phase("reading the lists back")
            complete = await reader.drain(sent, options.timeout_s, options.quiet_s, reporter, stop)
            reporter.done()
            report["interrupted"] = stop.is_set()
    finally:
        await reader.stop()
    report.update(
        {
            "complete": complete,
            "forwarded": len(reader.forwarded),
            "refused": dict(reader.refused),
            "lists_read": len(reader.lists),
        }
    )
    scored = events[:sent]
    report["live"] = score_published(scored, reader.lists.values(), catalog)
    if options.compare:
        reporter.phase("planning the same events in process (the worker's planner)")
        report["in_process"] = score_planned(scored, catalog, settings)
    return report


def run_replay(
    settings: Settings, options: ReplayOptions, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Load the log, then replay it: through the broker ``settings`` names (its workers
    running), or, when embedded, through a broker, a learner and a worker started here."""
    from streams.tools.loaders import LoaderError

    reporter = reporter or Reporter(prefix="replay")
    try:
        loaded = load(options.log, options.fmt, catalog=options.catalog)
    except LoaderError as exc:
        raise ReplayError(str(exc)) from None
    if not loaded.events:
        raise ReplayError(f"{', '.join(options.log)}: no events in the log")
    reporter.phase(
        f"loaded {len(loaded.events):,} events and {len(loaded.catalog):,} catalog tracks "
        f"({loaded.lines_skipped:,} lines skipped)"
    )
    if options.score and not loaded.catalog:
        reporter.phase("no catalog: no event is a positive one to score (give --catalog)")
    if not settings.embedded:
        return asyncio.run(replay_through(settings, options, loaded, reporter))

    def publish_catalog_first(settings: Settings) -> None:
        if loaded.catalog:  # before the worker starts: it waits for the catalog to be read
            asyncio.run(publish_catalog(settings, loaded.catalog))

    reporter.phase("starting an embedded broker, a learner and a worker")
    with local_pipeline(
        settings,
        error=ReplayError,
        before_start=publish_catalog_first,
        on_wait=lambda s: reporter.progress(f"waiting for the worker ({s:.1f} s)"),
    ) as pipeline:
        reporter.done()
        return asyncio.run(
            replay_through(
                pipeline.settings, options, loaded, reporter, publish_catalog_first=False
            )
        )


# --- printing -------------------------------------------------------------------------------


def score_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """:data:`~streams.tools.evaluate.PUBLISHED_HEADERS` rows: live, then in process."""
    paths = (("live (topic)", "live"), ("in process", "in_process"))
    return [published_row(name, report[key]) for name, key in paths if report.get(key)]


def report_tables(report: Mapping[str, Any]) -> list[Table]:
    """The score table (live, and in process when compared)."""
    live = report["live"]
    refused = ", ".join(f"{n} {reason}" for reason, n in sorted(report["refused"].items()))
    title = (
        f"lists read back from the topic: {report['lists_read']:,} for {report['sent']:,} "
        f"events sent ({report['forwarded']:,} accepted"
        + (f"; refused: {refused}" if refused else "")
        + f"); {live['positives']:,} positive events, each judged against the list the user "
        f"had just before it ({live['late_lists']:,} of those lists came after the event)"
    )
    return [(title, PUBLISHED_HEADERS, score_rows(report))]


def print_report(report: Mapping[str, Any], out: TextIO) -> None:
    """What was sent; the score table if scored."""
    if "live" not in report:
        state = "interrupted after" if report["interrupted"] else "sent"
        out.write(f"replay: {state} {report['sent']:,} of {report['events']:,} events\n")
        return
    write_tables(report_tables(report), out)


__all__ = [
    "ListReader",
    "ReplayError",
    "ReplayOptions",
    "catalog_of",
    "print_report",
    "publish_events",
    "rebase",
    "replay_through",
    "run_replay",
    "score_rows",
    "start_of",
]
