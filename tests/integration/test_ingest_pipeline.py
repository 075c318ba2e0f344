"""The worker on a real broker: forwards each valid event once, dead-letters the rest."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.contracts.events import RECOMMENDATION_SCHEMA_FILE, load_schema
from streams.settings import Settings
from tests.factories import make_event
from tests.integration.harness import (
    TopicReader,
    WorkerProcess,
    forwarded_ids,
    until_a_list_has_items,
)

pytestmark = pytest.mark.integration

# (how to break an event, the reason the DLQ must give)
BREAKERS: list[tuple[Any, str]] = [
    (lambda e: e.pop("track_id"), "missing_field"),
    (lambda e: e.update(ms_played=-10), "negative_ms_played"),
    (lambda e: e.update(type="pause"), "unknown_event_type"),
    (lambda e: e.update(ts=str(e["ts"])), "wrong_type"),
    (lambda e: e.update(ts=e["ts"] + 3_600_000), "ts_in_future"),
    (lambda e: e.update(user_id="someone-else"), "key_mismatch"),
]
WHOLE_MESSAGE_BREAKERS: list[tuple[bytes, str]] = [
    (b"\xff\xfe\x00", "not_utf8"),
    (b'{"event_id": "cut', "not_json"),
    (b"[]", "empty_batch"),
]


def build_traffic(users: int, valid: int, duplicates: int, invalid: int, seed: int = 1):
    """Messages (key, value) plus the truth: valid ids, and expected reason per bad item."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    valid_events = [
        make_event(
            user_id=f"u{i % users}",
            track_id=f"t{rng.randrange(40)}",
            ts=now - rng.randrange(60_000),
        )
        for i in range(valid)
    ]
    items: list[tuple[str, Any, str | None]] = [(e["user_id"], e, None) for e in valid_events]
    items += [(e["user_id"], dict(e), None) for e in rng.sample(valid_events, duplicates)]
    n_whole = min(invalid // 10, len(WHOLE_MESSAGE_BREAKERS) * 3)
    for i in range(invalid - n_whole):
        event = make_event(user_id=f"u{rng.randrange(users)}", ts=now)
        breaker, reason = BREAKERS[i % len(BREAKERS)]
        user = event["user_id"]
        breaker(event)
        items.append((user, event, reason))
    rng.shuffle(items)
    messages: list[tuple[bytes, bytes]] = []
    expected: Counter[str] = Counter()
    by_user: dict[str, list[Any]] = {}
    for user, event, reason in items:  # batches of up to 7 per user, in arrival order
        by_user.setdefault(user, []).append(event)
        if reason:
            expected[reason] += 1
        if len(by_user[user]) == 7 or rng.random() < 0.3:
            messages.append((user.encode(), orjson.dumps(by_user.pop(user))))
    messages += [(u.encode(), orjson.dumps(batch)) for u, batch in by_user.items()]
    for i in range(n_whole):
        raw, reason = WHOLE_MESSAGE_BREAKERS[i % len(WHOLE_MESSAGE_BREAKERS)]
        messages.insert(rng.randrange(len(messages)), (b"u0", raw))
        expected[reason] += 1
    return messages, {e["event_id"] for e in valid_events}, expected


async def publish(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(settings.events_topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


def test_valid_events_are_forwarded_once_and_invalid_ones_dead_lettered_with_reasons(
    settings: Settings, worker: WorkerProcess
) -> None:
    messages, valid_ids, expected_reasons = build_traffic(
        users=20, valid=1000, duplicates=50, invalid=100
    )
    assert sum(expected_reasons.values()) == 100
    worker.start()

    async def scenario() -> TopicReader:
        topics = (settings.clean_topic, settings.dlq_topic, settings.recommendations_topic)
        async with TopicReader(settings, *topics) as reader:
            await publish(settings, messages)
            await reader.until(
                lambda: (
                    len(forwarded_ids(reader, settings.clean_topic)) >= len(valid_ids)
                    and len(reader.records[settings.dlq_topic]) >= 100
                ),
                timeout_s=120,
                what="every event forwarded or dead-lettered",
                worker=worker,
            )
            await asyncio.sleep(1.0)  # anything extra (a second forward) would show up now
            await reader.poll()
            await until_a_list_has_items(settings, reader, worker=worker)
            return reader

    reader = asyncio.run(scenario())
    probe = {
        e["event_id"]
        for r in reader.records[settings.clean_topic]
        if r.key == b"u-probe"
        for e in r.value
    }
    forwarded = [i for i in forwarded_ids(reader, settings.clean_topic) if i not in probe]
    assert Counter(forwarded) == Counter(valid_ids)  # every valid one, exactly once
    dead = reader.records[settings.dlq_topic]
    assert Counter(r.value["reason"] for r in dead) == expected_reasons
    assert all(r.headers["reason"] == r.value["reason"].encode() for r in dead)
    assert all(r.value["source"]["topic"] == settings.events_topic for r in dead)
    assert all(r.value["original_b64"] for r in dead)

    lists = reader.records[settings.recommendations_topic]
    assert lists, "no recommendation list was published"
    schema = load_schema(RECOMMENDATION_SCHEMA_FILE)
    for record in lists:
        jsonschema.validate(record.value, schema)
        assert record.key == record.value["user_id"].encode()
    # No snapshot is served here: no list is shaped by the taste or engagement models.
    versions = {r.value["model_version"] for r in lists}
    assert all(v.endswith("rerank-v2") and "taste-" not in v for v in versions), versions
    assert any(r.value["items"] for r in lists)
