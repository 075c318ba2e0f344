"""The client-side commands: produce JSON Lines, simulate a population, tail a topic.

Each is an ``async`` function returning an exit code, so the CLI, the demo and
the tests share them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from features.editorial import EditorialSet
from features.errors import TunestreamError
from streams.contracts.clock import now_ms
from streams.contracts.events import Event, EventDecoder, Rejection
from streams.kafka.producer import EventProducer, InvalidEvent
from streams.kafka.security import security_options
from streams.settings import Settings, topic_name_problem
from streams.tools.editorial_demo import demo_editorial_sets
from streams.tools.simulator import Population, PopulationConfig


async def produce_lines(lines: IO[bytes], settings: Settings, *, strict: bool = False) -> int:
    """Publish the events of each line (one event, or a JSON array of one user's events).

    Events are keyed by their ``user_id``. Lines that are not events (not JSON, no
    user, an array mixing users) are sent raw and unkeyed: the worker dead-letters
    them. With ``strict`` they are validated here instead, reported with their line
    number and not sent; the exit code is then 1 if any line was refused.
    """
    refused = 0
    async with EventProducer(
        settings.bootstrap_servers,
        settings.events_topic,
        validate=strict,
        **security_options(settings),
    ) as producer:
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line:
                continue
            events = _events_or_none(line)
            try:
                if events is not None:
                    _check_all(producer, events, is_array=line.startswith(b"["))
                    await producer.publish_many(events)
                elif strict:
                    raise InvalidEvent(_first_problem(line))
                else:
                    await producer.publish_raw(line)
            except InvalidEvent as exc:
                refused += 1
                item = exc.rejection.index
                where = f"line {number}" + (f", item {item}" if item is not None else "")
                print(f"{where}: {exc}", file=sys.stderr)
    print(
        f"sent {producer.events_sent} events in {producer.messages_sent} messages"
        + (f"; refused {refused} lines" if strict else ""),
        file=sys.stderr,
    )
    return 1 if refused else 0


def _check_all(producer: EventProducer, events: list[Event], *, is_array: bool) -> None:
    """Refuse a whole line before any of its events is buffered (``strict`` only)."""
    for index, event in enumerate(events):
        problem = producer.problem(event)
        if problem is not None:
            raise InvalidEvent(dataclasses.replace(problem, index=index if is_array else None))


def _first_problem(line: bytes) -> Rejection:
    """Why a line that :func:`_events_or_none` refused is not an event (or one user's batch)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                return Rejection(
                    "not_an_object", "an event must be a JSON object", index=index, event=item
                )
        users = list(dict.fromkeys(repr(item.get("user_id")) for item in value))
        if len(users) > 1:
            return Rejection(
                "key_mismatch",
                "the events of one line must share one user_id (the message key); "
                f"found {', '.join(users[:3])}" + (", ..." if len(users) > 3 else ""),
                "user_id",
            )
    _, rejections = EventDecoder().decode(None, line)
    return rejections[0]


def _events_or_none(line: bytes) -> list[Event] | None:
    """The line's events if it is one event or an array of one user's events, with a user_id."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    user = items[0].get("user_id")
    if not isinstance(user, str) or not user:
        return None
    if any(item.get("user_id") != user for item in items):
        return None
    return items


def corrupt(event: Event, rng: random.Random) -> bytes:
    """A malformed variant of ``event``: what a buggy client sends."""
    broken = dict(event)
    kind = rng.randrange(5)
    if kind == 0:
        del broken["track_id"]
    elif kind == 1:
        broken["ms_played"] = -broken["ms_played"] - 1
    elif kind == 2:
        broken["type"] = "pause"
    elif kind == 3:
        broken["ts"] = str(broken["ts"])
    else:
        return orjson.dumps(broken)[:-7]  # truncated: not JSON
    return orjson.dumps(broken)


async def simulated_events(
    population: Population, *, paced: bool, events: int | None, duration_s: float | None
) -> AsyncIterator[Event]:
    """The population's events; paced so that event time follows the wall clock.

    Paced, every ``ts`` is moved by one offset so that the first event's is the wall
    clock when it is emitted: the population's clock starts when it was built, and
    the time it took to get here would otherwise count as every event's delay.
    """
    started = time.monotonic()
    first_ts: int | None = None
    shift_ms = 0
    for count, event in enumerate(population.events()):
        if events is not None and count >= events:
            return
        if duration_s is not None and time.monotonic() - started >= duration_s:
            return
        if first_ts is None:
            first_ts = event["ts"]
            shift_ms = now_ms() - first_ts if paced else 0
        if paced:
            ahead_s = (event["ts"] - first_ts) / 1000 - (time.monotonic() - started)
            if ahead_s > 0.002:
                await asyncio.sleep(ahead_s)
            event["ts"] += shift_ms
        elif count % 1000 == 0:
            await asyncio.sleep(0)  # let the producer's batches go out
        yield event


async def simulate(
    settings: Settings,
    *,
    rate: float = 200.0,
    events: int | None = None,
    duration_s: float | None = None,
    users: int = 200,
    tracks: int = 2000,
    seed: int = 7,
    paced: bool = True,
    bad_ratio: float = 0.0,
    on_event: Callable[[Event], None] | None = None,
    show_progress: bool = True,
) -> int:
    """Publish the seeded population's events at ``rate``, with a progress bar."""
    config = PopulationConfig(
        seed=seed,
        n_users=users,
        n_tracks=tracks,
        n_artists=max(1, tracks // 7),
        events_per_second=rate,
        start_ts_ms=now_ms(),
    )
    population = Population(config)
    catalog = [track.to_dict() for track in population.tracks]
    await publish_catalog(settings, catalog)
    await publish_editorial(settings, demo_editorial_sets(catalog))
    rng = random.Random(seed)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} ev/s"),
        TimeElapsedColumn(),
        console=console,
        # A bar is for a terminal: piped or redirected, no escape codes, one line at the end.
        disable=not show_progress or not console.is_terminal,
        transient=False,
    )
    started = time.monotonic()
    async with EventProducer(
        settings.bootstrap_servers, settings.events_topic, **security_options(settings)
    ) as producer:
        with progress:
            task = progress.add_task("events", total=events, rate="-")
            async for event in simulated_events(
                population, paced=paced, events=events, duration_s=duration_s
            ):
                if bad_ratio and rng.random() < bad_ratio:
                    await producer.publish_raw(corrupt(event, rng), event["user_id"].encode())
                else:
                    await producer.publish(event)
                if on_event is not None:
                    on_event(event)
                progress.advance(task)
                if progress.tasks[0].completed % 500 == 0:
                    elapsed = max(time.monotonic() - started, 1e-9)
                    progress.update(task, rate=f"{progress.tasks[0].completed / elapsed:,.0f}")
    if show_progress and not console.is_terminal:
        elapsed = time.monotonic() - started
        print(f"simulate: sent {producer.events_sent} events in {elapsed:.1f} s", file=sys.stderr)
    return 0


async def publish_catalog(settings: Settings, records: Iterable[Mapping[str, Any]]) -> int:
    """Publish track records to the compacted catalog topic, keyed by ``track_id``.

    Every worker reads the whole topic (:mod:`streams.kafka.replicated`); re-publishing a
    track replaces it, and compaction keeps the latest record per track.
    """
    keyed = ((str(r["track_id"]), r) for r in records)
    return await _publish_keyed(settings, settings.catalog_topic, keyed)


async def publish_editorial(settings: Settings, sets: Iterable[EditorialSet]) -> int:
    """Publish editorial sets to the compacted editorial topic, keyed by set name.

    The value is :meth:`EditorialSet.to_record`; re-publishing a set replaces it, and
    compaction keeps the latest record per set name.
    """
    keyed = ((s.name, s.to_record()) for s in sets)
    return await _publish_keyed(settings, settings.editorial_topic, keyed)


async def _publish_keyed(
    settings: Settings, topic: str, records: Iterable[tuple[str, Mapping[str, Any]]]
) -> int:
    """Send each ``(key, record)`` to ``topic`` as JSON; the number sent once all are acked."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=512 * 1024,
        **security_options(settings),
    )
    try:
        await producer.start()  # inside: a producer that failed to start is closed too
        sends = [
            await producer.send(topic, key=key.encode(), value=orjson.dumps(record))
            for key, record in records
        ]
        await asyncio.gather(*sends)
        return len(sends)
    finally:
        await producer.stop()


class UnknownTopic(TunestreamError, LookupError):
    """The topic to read does not exist in the cluster."""


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    idle_timeout_s: float | None = None,
    out: IO[str] | None = None,
) -> int:
    """Print each message of ``topic`` as one JSON line (key, partition, offset, value).

    At most ``max_messages`` lines. ``ValueError`` if ``topic`` cannot be a topic
    name, :class:`UnknownTopic` if the cluster does not have it (checked first:
    reading a missing topic would wait for ever, or create it).
    """
    problem = topic_name_problem(topic)
    if problem is not None:
        raise ValueError(f"{topic!r}: {problem}")
    out = out or sys.stdout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        **security_options(settings),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    seen = 0
    last = time.monotonic()
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            raise UnknownTopic(f"topic {topic!r} does not exist on {settings.bootstrap_servers}")
        consumer.subscribe([topic])
        while max_messages is None or seen < max_messages:
            left = None if max_messages is None else max_messages - seen
            batch = await consumer.getmany(timeout_ms=200, max_records=left)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    break
                continue
            last = time.monotonic()
            records = [r for part in batch.values() for r in part][:left]
            for record in records:
                out.write(_line(record) + "\n")
            seen += len(records)
            out.flush()
    finally:
        await consumer.stop()
    return 0


def _line(record: Any) -> str:
    try:
        value: Any = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        value = record.value.decode("utf-8", "replace")
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return orjson.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": key,
            "value": value,
        }
    ).decode()
