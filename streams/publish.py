"""The client-side commands: produce JSON Lines, simulate a population, tail a topic.

Each is an ``async`` function returning an exit code, so the CLI, the demo and
the tests share them.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.events import Event, EventDecoder, Rejection
from streams.producer import EventProducer, InvalidEvent
from streams.security import security_options
from streams.settings import Settings
from streams.simulator import Population, PopulationConfig


async def produce_lines(lines: IO[bytes], settings: Settings, *, strict: bool = False) -> int:
    """Publish one event per line; lines that are not events are sent raw (the DLQ keeps them).

    With ``strict`` they are validated here instead, reported with their line
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
            event = _event_or_none(line)
            try:
                if event is not None:
                    await producer.publish(event)
                elif strict:
                    raise InvalidEvent(_first_problem(line))
                else:
                    await producer.publish_raw(line)
            except InvalidEvent as exc:
                refused += 1
                print(f"line {number}: {exc}", file=sys.stderr)
    print(
        f"sent {producer.events_sent} events in {producer.messages_sent} messages"
        + (f"; refused {refused} lines" if strict else ""),
        file=sys.stderr,
    )
    return 1 if refused else 0


def _first_problem(line: bytes) -> Rejection:
    _, rejections = EventDecoder().decode(None, line)
    return rejections[0]


def _event_or_none(line: bytes) -> Event | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("user_id"), str) and value["user_id"]:
        return value
    return None


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
    """The population's events; paced so that event time follows the wall clock."""
    started = time.monotonic()
    first_ts: int | None = None
    for count, event in enumerate(population.events()):
        if events is not None and count >= events:
            return
        if duration_s is not None and time.monotonic() - started >= duration_s:
            return
        if first_ts is None:
            first_ts = event["ts"]
        if paced:
            ahead_s = (event["ts"] - first_ts) / 1000 - (time.monotonic() - started)
            if ahead_s > 0.002:
                await asyncio.sleep(ahead_s)
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
        start_ts_ms=time.time_ns() // 1_000_000,
    )
    population = Population(config)
    await publish_catalog(settings, (track.to_dict() for track in population.tracks))
    rng = random.Random(seed)
    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} ev/s"),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=False,
    )
    async with EventProducer(
        settings.bootstrap_servers, settings.events_topic, **security_options(settings)
    ) as producer:
        with progress:
            task = progress.add_task("events", total=events, rate="-")
            started = time.monotonic()
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
    return 0


async def publish_catalog(settings: Settings, records: Iterable[Mapping[str, Any]]) -> int:
    """Publish track records to the compacted catalog topic, keyed by ``track_id``.

    Every worker reads the whole topic (:mod:`streams.replicated`); re-publishing a
    track replaces it, and compaction keeps the latest record per track.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=512 * 1024,
        **security_options(settings),
    )
    await producer.start()
    try:
        sends = [
            await producer.send(
                settings.catalog_topic, key=str(r["track_id"]).encode(), value=orjson.dumps(r)
            )
            for r in records
        ]
        await asyncio.gather(*sends)
        return len(sends)
    finally:
        await producer.stop()


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    idle_timeout_s: float | None = None,
    out: IO[str] | None = None,
) -> int:
    """Print each message of ``topic`` as one JSON line (key, partition, offset, value)."""
    out = out or sys.stdout
    consumer = AIOKafkaConsumer(
        topic,
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
        while max_messages is None or seen < max_messages:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    break
                continue
            last = time.monotonic()
            for records in batch.values():
                for record in records:
                    out.write(_line(record) + "\n")
                    seen += 1
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
