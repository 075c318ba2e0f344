"""The track side of a message: one record per destination partition, not per event.

Accepted events are re-keyed by ``track_id`` so each track's statistics live
on one worker. Sending one record per event made the track side cost a
produce and an agent pass per event; instead a message's events are grouped
by the partition their track id hashes to (Kafka's default partitioner,
murmur2, computed here without a Kafka client) and each group goes out as one
record to that partition. A partition then holds exactly the tracks it would
hold with one record per event, so the track table, its changelog and the HTTP
routing by ``track_id`` all stay where they were.

A record carries the source position (partition, offset) and each event's index
in its message, so the track side still applies every position once: a replay
never counts twice.

>>> groups = group_by_partition([{"track_id": "t1"}, {"track_id": "t2"}, {"track_id": "t1"}], 4)
>>> sorted((p, [i for i, _ in items]) for p, items in groups.items())
[(0, [1]), (3, [0, 2])]
>>> track_record(3, 70, groups[3])["items"][1][0]
2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.state.keyed_state import TrackState

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


def track_record(
    source_partition: int, source_offset: int, items: list[tuple[int, Event]]
) -> dict[str, Any]:
    """The record for one destination partition: the source position and its events."""
    return {"source": [source_partition, source_offset], "items": [list(i) for i in items]}


def fold_track_record(
    record: dict[str, Any], load: Callable[[str], TrackState]
) -> dict[str, TrackState]:
    """Apply a by-track record; returns the states it changed, by track id.

    ``load(track_id)`` gives a track's current state; each is loaded once per
    record, however many of its events the record holds. Positions already
    applied (a replay after a crash) change nothing.
    """
    source_partition, source_offset = record["source"]
    loaded: dict[str, TrackState] = {}
    changed: dict[str, TrackState] = {}
    for index, event in record["items"]:
        track_id = event["track_id"]
        state = loaded.get(track_id)
        if state is None:
            state = loaded[track_id] = load(track_id)
        if state.first_time(source_partition, source_offset, index):
            state.features.update(event)
            changed[track_id] = state
    return changed


__all__ = ["fold_track_record", "group_by_partition", "murmur2", "partition_of", "track_record"]
