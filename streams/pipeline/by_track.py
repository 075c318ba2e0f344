"""The track side: events re-keyed by track, a few records per flush, not one per event.

Accepted events are re-keyed by ``track_id`` so each track's statistics live
on one worker. Sending one record per event, then one per message, made the
track side cost a produce and an agent pass per message; instead each event
becomes an *item* of the partition its track id hashes to (Kafka's default
partitioner, murmur2, computed here without a Kafka client), and
:class:`TrackBatches` gathers the items of many messages into one record per
destination partition, sent every ``TRACK_BATCH_INTERVAL_S`` and always before
the source offsets are committed (the worker flushes it first), so a record is
never lost behind a committed offset. A partition holds exactly the tracks it
would hold with one record per event, so the track table, its changelog and
the HTTP routing by ``track_id`` all stay where they were.

An item carries its source position (partition, offset, index in the message),
so the track side applies every position once: a replay never counts twice,
and records of the earlier layout (one source per record) still fold.

>>> groups = group_by_partition([{"track_id": "t1"}, {"track_id": "t2"}, {"track_id": "t1"}], 4)
>>> sorted((p, [i for i, _ in items]) for p, items in groups.items())
[(0, [1]), (3, [0, 2])]
>>> batches = TrackBatches("by-track", max_record_bytes=1_000)
>>> batches.add(track_items(2, 70, [{"track_id": "t1"}], 4))
[]
>>> [(o.partition, orjson.loads(o.value)) for o in batches.take()]
[(3, {'items': [[2, 70, 0, {'track_id': 't1'}]]})]
>>> batches.take()
[]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from streams.pipeline.output import Output
from streams.state.keyed_state import TrackState

#: Longest an item waits for its record (the trending lists follow a little later).
TRACK_BATCH_INTERVAL_S: Final = 0.1
#: Bytes of a record besides its items: ``{"items":[`` and ``]}``.
_RECORD_FRAME: Final = len(b'{"items":[]}')

Event = dict[str, Any]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key (as the Java client and aiokafka compute it)."""
    length = len(data)
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    if tail:
        rest = data[length - tail :]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def group_by_partition(events: list[Event], partitions: int) -> dict[int, list[tuple[int, Event]]]:
    """Events with their index in the message, grouped by their track's partition."""
    groups: dict[int, list[tuple[int, Event]]] = {}
    for index, event in enumerate(events):
        partition = partition_of(event["track_id"].encode(), partitions)
        groups.setdefault(partition, []).append((index, event))
    return groups


def track_items(
    source_partition: int, source_offset: int, events: list[Event], partitions: int
) -> dict[int, list[bytes]]:
    """One message's items, encoded, by destination partition: ``[partition, offset,
    index, event]`` each."""
    return {
        destination: [
            orjson.dumps([source_partition, source_offset, index, event]) for index, event in items
        ]
        for destination, items in sorted(group_by_partition(events, partitions).items())
    }


def record_size(items: list[bytes]) -> int:
    """The bytes of a record holding ``items``."""
    return _RECORD_FRAME + _items_bytes(items)


def _items_bytes(items: list[bytes]) -> int:
    return sum(len(item) + 1 for item in items)  # each with its comma


class TrackBatches:
    """Items waiting to go out: one growing record per destination partition.

    Memory bound: at most ``max_record_bytes`` of items per destination partition
    (a record that would grow past it goes out first).
    """

    def __init__(self, topic: str, max_record_bytes: int) -> None:
        self.topic = topic
        self.max_record_bytes = max_record_bytes
        self._items: dict[int, list[bytes]] = {}
        self._bytes: dict[int, int] = {}

    def add(self, items: Mapping[int, list[bytes]]) -> list[Output]:
        """Queue one message's items; returns the records that must go out now (full)."""
        full = []
        for partition, new in items.items():
            grown = self._bytes.get(partition, _RECORD_FRAME) + _items_bytes(new)
            if grown > self.max_record_bytes:
                full.extend(self._take(partition))
                grown = record_size(new)
            self._items.setdefault(partition, []).extend(new)
            self._bytes[partition] = grown
        return full

    def take(self) -> list[Output]:
        """Every waiting record (the queue is then empty)."""
        return [output for partition in sorted(self._items) for output in self._take(partition)]

    def __len__(self) -> int:
        """Items waiting."""
        return sum(len(items) for items in self._items.values())

    def _take(self, partition: int) -> list[Output]:
        items = self._items.pop(partition, [])
        self._bytes.pop(partition, None)
        if not items:
            return []
        value = b'{"items":[' + b",".join(items) + b"]}"
        return [Output(self.topic, None, value, None, partition)]


def fold_track_record(
    record: dict[str, Any], load: Callable[[str], TrackState]
) -> dict[str, TrackState]:
    """Apply a by-track record; returns the states it changed, by track id.

    ``load(track_id)`` gives a track's current state; each is loaded once per
    record, however many of its events the record holds. Positions already
    applied (a replay after a crash) change nothing.
    """
    items = record["items"]
    if "source" in record:  # the earlier layout: one source position per record
        items = [[*record["source"], index, event] for index, event in items]
    loaded: dict[str, TrackState] = {}
    changed: dict[str, TrackState] = {}
    for source_partition, source_offset, index, event in items:
        track_id = event["track_id"]
        state = loaded.get(track_id)
        if state is None:
            state = loaded[track_id] = load(track_id)
        if state.first_time(source_partition, source_offset, index):
            state.features.update(event)
            changed[track_id] = state
    return changed


__all__ = [
    "TRACK_BATCH_INTERVAL_S",
    "TrackBatches",
    "fold_track_record",
    "group_by_partition",
    "murmur2",
    "partition_of",
    "record_size",
    "track_items",
]
