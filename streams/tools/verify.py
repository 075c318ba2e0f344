"""``tunestream verify``: a fault suite whose every run is checked by a verifier.

The rule checked: **every input event ends up either applied exactly once or
dead-lettered once with a reason.** Each scenario publishes a generated stream
to a real broker, hurts one or more worker processes while they work (kill -9,
a stuck agent, a broker that stops answering, ...), lets them recover, and
then reads everything back and recomputes what a fault-free worker would have
done. Reading order:

1. :func:`generate`: the stream (the seeded simulator's events, each with a
   unique ``event_id`` and a per-user ``seq``, an extra field the schema allows).
2. :class:`Reference`: the input topic replayed through the published contract
   (:class:`~streams.contracts.events.EventDecoder`), the lateness rule, an
   unbounded dedupe and the same pure feature code the worker folds
   (:class:`features.UserFeatures`): what should become of every input event.
3. :func:`account`: that expectation against what was observed (the clean
   topic, the dead-letter topic, ``GET /users/{id}/features`` and
   ``GET /tracks/{id}/features`` of a worker), as a :class:`Tally`.
4. The plumbing: topic readers, :class:`WorkerProcess` (workers are
   subprocesses, stopped by their PID), and :class:`Fault`, behaviour injected
   into a worker from outside the product code (this module's ``__main__``).
5. :data:`SCENARIOS`, :func:`run_suite` and :func:`format_table`.

What the figures mean (each counts input *occurrences*: an event in a message,
or a message refused as a whole):

``sent``
    occurrences in the input topic (re-published copies included).
``lost``
    should have been applied or dead-lettered, and is in neither output; or a
    user's ``events_seen`` is short of the events applied for them; or a
    generated event never reached the input topic.
``duplicated``
    in state: how far the users' ``events_seen`` exceed the events that should
    have been folded (an event counted twice).
``out_of_sequence``
    a user's events first reached the clean topic in another order than they
    arrived in the input.
``unaccounted``
    an outcome other than the expected one: applied and dead-lettered, applied
    though it must be refused, dead-lettered with another reason, a copy that
    was not dropped as a duplicate, or an output record no input explains.
``dead_lettered``
    occurrences dead-lettered with the expected reason.
``reforwarded`` / ``dlq_repeats``
    at-least-once output after a crash or a rewind: the same accepted event in
    the clean topic again, the same dead letter again. Reported, not failures.
``features_mismatched``
    users whose features, and tracks whose statistics (``GET /tracks/{id}/features``:
    the by-track side, batched across messages and folded by the second agent),
    differ from the recomputation (read at the same time; floats to 1e-9).
``recovery_s``
    seconds from the fault to the worker(s) being ready again (each scenario
    says what its fault and its end are); None where nothing had to recover.

The consumer-group timings are shortened for the suite (:data:`GROUP_TIMINGS`):
with the defaults a worker killed with SIGKILL holds its partitions for the
6 s session timeout, and five kills would take minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from prometheus_client.parser import text_string_to_metric_families

from features import TrackFeatures, TrackInfo, UserFeatureConfig, UserFeatures
from features.errors import TunestreamError
from streams.contracts.clock import now_ms
from streams.contracts.events import Event, EventDecoder, Rejection, encode
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.faust_fixes import fetched_end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.security import security_options
from streams.kafka.topics import ensure_topics
from streams.settings import Settings, env_name
from streams.tools.console import Reporter, format_plain
from streams.tools.processes import Child, http_get
from streams.tools.publish import publish_catalog
from streams.tools.simulator import Population, PopulationConfig

#: Expected outcome of an occurrence that must be folded into its user's state.
APPLIED: Final = "applied"
#: Expected outcome of a re-published copy of an event already applied.
DUPLICATE: Final = "duplicate"
#: Consumer-group timings of the suite's workers (the defaults are 6 s, 1 s, 10 s).
GROUP_TIMINGS: Final = {
    "session_timeout_s": 3.0,
    "heartbeat_interval_s": 0.5,
    "rebalance_timeout_s": 5.0,
}
#: Partitions of every topic of the suite.
PARTITIONS: Final = 4
#: Most events per user: keeps every user inside the bounds within which the
#: features are exact whatever the arrival order (``top_k`` 24 artists, 32
#: session events, ``recent_k`` 20 tracks).
MAX_EVENTS_PER_USER: Final = 20
#: Relative tolerance of float features (state round trips, summation order).
FEATURE_REL_TOL: Final = 1e-9
#: Longest wait for a worker to become ready, or to catch up with the input.
READY_TIMEOUT_S: Final = 90.0
DRAIN_TIMEOUT_S: Final = 150.0
DRAIN_STALL_S: Final = 30.0
#: Environment variable carrying a :class:`Fault` to the worker wrapper.
FAULT_ENV: Final = "TUNESTREAM_VERIFY_FAULT"
#: Most problem sentences kept per run (the counts are exact).
MAX_PROBLEMS: Final = 12


class VerifyError(TunestreamError, RuntimeError):
    """A scenario could not run to its end (a worker died, never became ready, ...)."""


# --- 1. the stream ---


@dataclass(frozen=True)
class Stream:
    """Generated events and the track catalog their features need."""

    events: list[Event]
    catalog: list[dict[str, Any]]

    def tracks(self) -> dict[str, TrackInfo]:
        """The catalog as the worker holds it."""
        return {record["track_id"]: TrackInfo.from_record(record) for record in self.catalog}


def generate(
    n_events: int,
    *,
    seed: int,
    n_users: int,
    span_s: float = 60.0,
    per_user_max: int = MAX_EVENTS_PER_USER,
    end_ms: int | None = None,
) -> Stream:
    """``n_events`` simulated events over ``span_s`` of event time, the last at ``end_ms``.

    The span stays well inside the allowed lateness, so no event of the stream is
    too late, whatever the order it arrives in, and a replay is never refused.
    Each event carries ``seq``: its position among its user's events.

    >>> stream = generate(40, seed=1, n_users=4, end_ms=1_767_225_600_000)
    >>> len(stream.events), stream.events[-1]["ts"], len({e["event_id"] for e in stream.events})
    (40, 1767225600000, 40)
    >>> first = stream.events[0]["user_id"]
    >>> [e["seq"] for e in stream.events if e["user_id"] == first][:3]
    [0, 1, 2]
    """
    if n_events > n_users * per_user_max:
        raise ValueError(f"{n_events} events need more than {n_users} users of {per_user_max}")
    end = now_ms() - 1_000 if end_ms is None else end_ms
    population = Population(
        PopulationConfig(
            seed=seed,
            n_users=n_users,
            n_tracks=300,
            n_artists=60,
            start_ts_ms=end - int(span_s * 1000),
            events_per_second=n_events / span_s,
        )
    )
    events = numbered(population.events(), n_events, per_user_max)
    shift = end - events[-1]["ts"]  # capping users stretches the span: the last is at ``end``
    for event in events:
        event["ts"] += shift
    return Stream(events, [track.to_dict() for track in population.tracks])


def numbered(events: Iterable[Event], n_events: int, per_user_max: int) -> list[Event]:
    """The first ``n_events`` of ``events`` keeping at most ``per_user_max`` per user,
    each copied with its per-user ``seq``.

    >>> numbered([{"user_id": u} for u in "aabab"], 3, per_user_max=2)
    [{'user_id': 'a', 'seq': 0}, {'user_id': 'a', 'seq': 1}, {'user_id': 'b', 'seq': 0}]
    """
    counts: Counter[str] = Counter()
    chosen: list[Event] = []
    for event in events:
        user = event["user_id"]
        if counts[user] < per_user_max:
            chosen.append({**event, "seq": counts[user]})
            counts[user] += 1
            if len(chosen) == n_events:
                break
    return chosen


def shuffled_within(events: Sequence[Event], bound_ms: int, rng: random.Random) -> list[Event]:
    """``events`` reordered so that each arrives at most ``bound_ms`` older than any
    event before it: sorted by event time plus a random delay in ``[0, bound_ms)``.

    >>> events = [{"ts": t} for t in range(0, 10_000, 100)]
    >>> out = shuffled_within(events, 1_000, random.Random(3))
    >>> out != events, all(e["ts"] > max(p["ts"] for p in out[:i]) - 1_000
    ...                    for i, e in enumerate(out) if i)
    (True, True)
    """
    delays = [rng.uniform(0, bound_ms) for _ in events]
    order = sorted(range(len(events)), key=lambda i: events[i]["ts"] + delays[i])
    return [events[i] for i in order]


def with_copies(events: Sequence[Event], share: float, rng: random.Random) -> list[Event]:
    """``events`` with a re-published copy of ``share`` of them, each a few places
    after its original (a producer's retry, a re-sent batch).

    >>> out = with_copies([{"event_id": str(i)} for i in range(20)], 0.1, random.Random(1))
    >>> len(out), len({e["event_id"] for e in out})
    (22, 20)
    """
    picked = set(rng.sample(range(len(events)), round(len(events) * share)))
    slots: dict[int, list[Event]] = defaultdict(list)
    for i in sorted(picked):
        slots[min(len(events) - 1, i + rng.randint(1, 30))].append(events[i])
    out: list[Event] = []
    for i, event in enumerate(events):
        out.append(event)
        out.extend(slots[i])
    return out


# --- 2. what should happen ---


@dataclass(frozen=True, slots=True)
class InputMessage:
    """One message of the input topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The parts of a dead-letter record the verifier matches on."""

    partition: int  # of the refused message
    offset: int
    batch_index: int | None
    event_id: str | None
    reason: str

    @classmethod
    def from_value(cls, value: bytes) -> DeadLetter:
        record = orjson.loads(value)
        source = record["source"]
        return cls(
            source["partition"],
            source["offset"],
            record.get("batch_index"),
            record.get("event_id"),
            record["reason"],
        )


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One input event (or a message refused as a whole) and what should become of it.

    ``expected`` is :data:`APPLIED`, :data:`DUPLICATE` or the reason code of its
    dead letter.
    """

    partition: int
    offset: int
    index: int | None  # position in its batch; None for a single event or a whole message
    user: str | None
    event_id: str | None
    expected: str

    def matches(self, dead: DeadLetter) -> bool:
        """Whether ``dead`` refuses this occurrence (or the whole message holding it).

        >>> event = Occurrence(0, 7, 2, "u1", "e9", APPLIED)
        >>> event.matches(DeadLetter(0, 7, 2, None, "wrong_type"))
        True
        >>> event.matches(DeadLetter(0, 7, 1, "e8", "wrong_type"))
        False
        >>> event.matches(DeadLetter(0, 7, None, None, "processing_error"))
        True
        """
        if (dead.partition, dead.offset) != (self.partition, self.offset):
            return False
        if self.index is None or dead.batch_index is not None:
            return self.index is None or dead.batch_index == self.index
        return dead.event_id in (None, self.event_id)

    def label(self) -> str:
        what = f"event {self.event_id!r} of {self.user!r}" if self.event_id else "message"
        return f"{what} at partition {self.partition} offset {self.offset}"


class Reference:
    """What a fault-free worker makes of the input: each message once, in partition order.

    Decoding and validation are the published contract's; an event older than its
    user's newest applied one by more than the lateness is ``too_late``; an id the
    user already had applied is a duplicate (an unbounded memory: the ideal the
    worker's bounded one must equal here); everything else is applied, and folded
    into a fresh :class:`features.UserFeatures` in event-time order, with no Kafka,
    no table and no state round trips.

    >>> decoder = EventDecoder(now_ms=lambda: 2_000_000_000_000)
    >>> ref = Reference(decoder, UserFeatureConfig(), {})
    >>> e = {"event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "play",
    ...      "ts": 1_767_225_600_000, "ms_played": 1000}
    >>> ref.feed(InputMessage(0, 0, b"u1", orjson.dumps([e, e, {"event_id": 3}])))
    >>> ref.feed(InputMessage(0, 1, b"u1", b"not json"))
    >>> [(o.index, o.expected) for o in ref.occurrences]
    [(2, 'missing_field'), (0, 'applied'), (1, 'duplicate'), (None, 'not_json')]
    >>> ref.user_features()["u1"].events_seen
    1
    """

    def __init__(
        self,
        decoder: EventDecoder,
        config: UserFeatureConfig,
        catalog: Mapping[str, TrackInfo],
    ) -> None:
        self.decoder = decoder
        self.config = config
        self.catalog = catalog
        self.occurrences: list[Occurrence] = []
        #: each user's applied events, in arrival order
        self.applied: dict[str, list[Event]] = defaultdict(list)
        self._ids: dict[str, set[str]] = defaultdict(set)
        self._newest_ms: dict[str, int] = {}

    def feed(self, message: InputMessage) -> None:
        """Decide what becomes of every event of one more message."""
        events, rejections = self.decoder.decode(message.key, message.value)
        for rejection in rejections:
            self._refused(message, rejection)
        indexes = _valid_indexes(message.value, len(events), rejections)
        for index, event in zip(indexes, events, strict=True):
            self._event(message, index, event)

    def _refused(self, message: InputMessage, rejection: Rejection) -> None:
        event = rejection.event if isinstance(rejection.event, dict) else {}
        user = event.get("user_id")
        self.occurrences.append(
            Occurrence(
                message.partition,
                message.offset,
                rejection.index,
                user if isinstance(user, str) else None,
                rejection.event_id,
                rejection.reason,
            )
        )

    def _event(self, message: InputMessage, index: int | None, event: Event) -> None:
        user, event_id, ts = event["user_id"], event["event_id"], event["ts"]
        newest = self._newest_ms.get(user)
        if newest is not None and ts < newest - self.config.lateness_ms:
            expected = "too_late"
        elif event_id in self._ids[user]:
            expected = DUPLICATE
        else:
            expected = APPLIED
            self._ids[user].add(event_id)
            self.applied[user].append(event)
            self._newest_ms[user] = ts if newest is None else max(newest, ts)
        self.occurrences.append(
            Occurrence(message.partition, message.offset, index, user, event_id, expected)
        )

    def user_features(self) -> dict[str, UserFeatures]:
        """Every user's features after their applied events, folded in event-time order."""
        users: dict[str, UserFeatures] = {}
        for user, events in self.applied.items():
            features = users[user] = UserFeatures(self.config)
            for event in sorted(events, key=lambda e: e["ts"]):  # stable: ties keep arrival
                features.update(event, self.catalog.get(event["track_id"]))
        return users

    def track_features(self, popularity_half_life_s: float) -> dict[str, TrackFeatures]:
        """Every track's statistics after the applied events of all its listeners (the
        track side folds each applied event once, whatever the order)."""
        tracks: dict[str, TrackFeatures] = {}
        for events in self.applied.values():
            for event in events:
                track = tracks.get(event["track_id"])
                if track is None:
                    track = tracks[event["track_id"]] = TrackFeatures(popularity_half_life_s)
                track.update(event)
        return tracks

    def count(self, expected: str) -> int:
        """Occurrences expected to end as ``expected``."""
        return sum(o.expected == expected for o in self.occurrences)


def _valid_indexes(value: bytes | None, n_events: int, rejections: list[Rejection]) -> list[Any]:
    """Batch positions of a message's valid events (None for a message of one event).

    >>> _valid_indexes(b'[1, {}, {}]', 2, [Rejection("not_an_object", "", index=0)])
    [1, 2]
    >>> _valid_indexes(b'{"a": 1}', 1, []), _valid_indexes(b"[]", 0, [Rejection("empty_batch", "")])
    ([None], [])
    """
    refused = {rejection.index for rejection in rejections}
    if None in refused or not (value or b"").lstrip().startswith(b"["):
        return [None] * n_events  # one event, or a message refused as a whole (no events)
    return [i for i in range(n_events + len(rejections)) if i not in refused]


# --- 3. what happened, against it ---


@dataclass
class Observed:
    """What was read back after a run."""

    #: events of the clean topic, each partition in offset order
    clean: list[Event]
    dead_letters: list[DeadLetter]
    #: ``GET /users/{id}/features`` per user (None: the worker has no state for them)
    features: dict[str, dict[str, Any] | None]
    #: ``GET /tracks/{id}/features`` per track read (None: no statistics), and what the
    #: reference makes of each track (judged only where both are given)
    tracks: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    expected_tracks: Mapping[str, TrackFeatures] = field(default_factory=dict)


@dataclass
class Tally:
    """The verifier's counts for one run (see the module docstring)."""

    sent: int = 0
    applied: int = 0
    dead_lettered: int = 0
    duplicates_dropped: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_sequence: int = 0
    unaccounted: int = 0
    reforwarded: int = 0
    dlq_repeats: int = 0
    features_mismatched: int = 0
    problems: list[str] = field(default_factory=list)

    def flag(self, kind: str, sentence: str, n: int = 1) -> None:
        """Count ``n`` under ``kind`` and keep the sentence (the first few)."""
        setattr(self, kind, getattr(self, kind) + n)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{kind}: {sentence}")

    @property
    def clean_run(self) -> bool:
        """Nothing lost, double-counted, reordered, misfiled or computed differently."""
        return not (
            self.lost
            or self.duplicated
            or self.out_of_sequence
            or self.unaccounted
            or self.features_mismatched
        )


def account(reference: Reference, observed: Observed, rel_tol: float = FEATURE_REL_TOL) -> Tally:
    """Judge every occurrence, every output record and every user's state.

    >>> ref = Reference(EventDecoder(now_ms=lambda: 2_000_000_000_000), UserFeatureConfig(), {})
    >>> e = {"event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "play",
    ...      "ts": 1_767_225_600_000, "ms_played": 1000}
    >>> ref.feed(InputMessage(0, 0, b"u1", orjson.dumps(e)))
    >>> tally = account(ref, Observed(clean=[], dead_letters=[], features={}))
    >>> tally.lost, tally.clean_run, tally.problems[0][:40]
    (1, False, "lost: event 'e1' of 'u1' at partition 0 ")
    """
    tally = Tally(sent=len(reference.occurrences))
    clean = Counter(_event_key(event) for event in observed.clean)
    applied = {(o.user, o.event_id) for o in reference.occurrences if o.expected == APPLIED}
    missed_by_user = _judge_occurrences(reference, observed, clean, applied, tally)
    inputs = {(o.user, o.event_id) for o in reference.occurrences}
    for key in clean.keys() - inputs:
        tally.flag("unaccounted", f"event {key[1]!r} of {key[0]!r} is in the clean topic only")
    tally.reforwarded = sum(n - 1 for key, n in clean.items() if key in applied)
    _judge_order(reference, observed, tally)
    _judge_state(reference, observed, missed_by_user, tally, rel_tol)
    _judge_tracks(observed, tally, rel_tol)
    return tally


def _event_key(event: Any) -> tuple[Any, Any]:
    return (
        (event.get("user_id"), event.get("event_id")) if isinstance(event, dict) else (None, None)
    )


def _judge_occurrences(
    reference: Reference,
    observed: Observed,
    clean: Counter[tuple[Any, Any]],
    applied: set[tuple[Any, Any]],
    tally: Tally,
) -> Counter[str | None]:
    """Each occurrence against the dead letters of its message; returns per user the
    events that should have been applied and were not (already counted)."""
    by_source: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, letter in enumerate(observed.dead_letters):
        by_source[(letter.partition, letter.offset)].append(i)
    matched: set[int] = set()
    missed_by_user: Counter[str | None] = Counter()
    for occurrence in reference.occurrences:
        mine = [
            i
            for i in by_source[(occurrence.partition, occurrence.offset)]
            if occurrence.matches(observed.dead_letters[i])
        ]
        matched.update(mine)
        dead = [observed.dead_letters[i] for i in mine]
        verdict = _judge_one(occurrence, dead, clean, applied, tally)
        if occurrence.expected == APPLIED and verdict != "applied":
            missed_by_user[occurrence.user] += 1
    for i, letter in enumerate(observed.dead_letters):
        if i not in matched:
            tally.flag("unaccounted", f"dead letter {letter} refuses nothing that was sent")
    return missed_by_user


def _judge_one(
    occurrence: Occurrence,
    dead: list[DeadLetter],
    clean: Counter[tuple[Any, Any]],
    applied: set[tuple[Any, Any]],
    tally: Tally,
) -> str:
    """Count one occurrence's fate in ``tally``; returns the kind it was counted as."""
    key = (occurrence.user, occurrence.event_id)
    where = occurrence.label()
    if occurrence.expected == APPLIED:
        if dead:
            tally.flag("unaccounted", f"{where} should be applied, dead-lettered: {dead[0].reason}")
            return "unaccounted"
        if not clean[key]:
            tally.flag("lost", f"{where} is neither in the clean topic nor dead-lettered")
            return "lost"
        tally.applied += 1
        return "applied"
    if occurrence.expected == DUPLICATE:
        if dead:
            tally.flag("unaccounted", f"{where} is a copy, dead-lettered: {dead[0].reason}")
            return "unaccounted"
        tally.duplicates_dropped += 1
        return "duplicate"
    right = [d for d in dead if d.reason == occurrence.expected]
    forwarded = occurrence.event_id is not None and clean[key] > 0 and key not in applied
    if forwarded or len(right) < len(dead):
        got = "forwarded" if forwarded else f"dead-lettered as {dead[0].reason}"
        tally.flag("unaccounted", f"{where} should be refused as {occurrence.expected}: {got}")
        return "unaccounted"
    if not right:
        tally.flag("lost", f"{where} should be dead-lettered as {occurrence.expected}: it is not")
        return "lost"
    tally.dead_lettered += 1
    tally.dlq_repeats += len(right) - 1
    return "dead_lettered"


def _judge_order(reference: Reference, observed: Observed, tally: Tally) -> None:
    """Each user's events must first reach the clean topic in their input order."""
    rank = {
        (user, event["event_id"]): i
        for user, events in reference.applied.items()
        for i, event in enumerate(events)
    }
    highest: dict[Any, int] = {}
    first_seen: set[tuple[Any, Any]] = set()
    for event in observed.clean:
        key = _event_key(event)
        if key in first_seen or key not in rank:
            continue
        first_seen.add(key)
        if rank[key] < highest.get(key[0], -1):
            tally.flag(
                "out_of_sequence", f"event {key[1]!r} of {key[0]!r} came out after later ones"
            )
        else:
            highest[key[0]] = rank[key]


def _judge_state(
    reference: Reference,
    observed: Observed,
    missed_by_user: Counter[str | None],
    tally: Tally,
    rel_tol: float,
) -> None:
    """Each user's features against the recomputation, read at the worker's time."""
    for user, features in reference.user_features().items():
        body = observed.features.get(user)
        seen = int(body.get("events_seen", 0)) if body else 0
        if seen > features.events_seen:
            tally.flag(
                "duplicated",
                f"user {user!r} folded {seen} of {features.events_seen}",
                seen - features.events_seen,
            )
        short = features.events_seen - seen - missed_by_user[user]
        if short > 0:
            tally.flag("lost", f"user {user!r} folded {seen} of {features.events_seen}", short)
        expected = orjson.loads(orjson.dumps(features.read(body["as_of_ms"]))) if body else None
        different = differences(body, expected, rel_tol) if body and expected else ["no state"]
        if different:
            tally.flag("features_mismatched", f"user {user!r}: {', '.join(different[:3])}")


def _judge_tracks(observed: Observed, tally: Tally, rel_tol: float) -> None:
    """Each track's statistics (the by-track side, batched and folded by another agent)
    against the reference's, read at the worker's time. The statistics are decayed
    sums, so a lost or doubled event shows as a mismatch, not as a count."""
    for track_id, track in observed.expected_tracks.items():
        body = observed.tracks.get(track_id)
        if body is None:
            tally.flag("features_mismatched", f"track {track_id!r}: no statistics")
            continue
        expected = orjson.loads(orjson.dumps(track.read(body["as_of_ms"])))
        different = differences(body, expected, rel_tol)
        if different:
            tally.flag("features_mismatched", f"track {track_id!r}: {', '.join(different[:3])}")


def differences(
    actual: Any, expected: Any, rel_tol: float = FEATURE_REL_TOL, at: str = ""
) -> list[str]:
    """Paths where ``actual`` differs from ``expected`` (floats to ``rel_tol``); keys of
    ``actual`` that ``expected`` lacks are ignored (the API adds its own).

    >>> differences({"a": 1.0, "b": [1, 2], "id": "x"}, {"a": 1.0 + 1e-13, "b": [1, 2]})
    []
    >>> differences({"a": {"b": 0.5}, "c": [1]}, {"a": {"b": 0.25}, "c": [1, 2]})
    ['a.b', 'c']
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or not expected.keys() <= actual.keys():
            return [at or "."]
        return [
            p for k in expected for p in differences(actual[k], expected[k], rel_tol, _join(at, k))
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [at]
        pairs = zip(actual, expected, strict=True)
        return [
            p for i, (a, e) in enumerate(pairs) for p in differences(a, e, rel_tol, f"{at}[{i}]")
        ]
    if isinstance(expected, float) or isinstance(actual, float):
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, expected)
        )
        same = numbers and math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=1e-12)
        return [] if same else [at]
    return [] if actual == expected else [at]


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else str(key)


# --- 4. Kafka, workers and faults ---


def decoder_for(settings: Settings) -> EventDecoder:
    """The decoder a worker with ``settings`` uses (its clock is now)."""
    return EventDecoder(
        max_message_bytes=settings.max_message_bytes,
        max_batch_events=settings.max_batch_events,
        max_future_ms=settings.max_future_ms,
        max_json_depth=settings.max_json_depth,
    )


def feature_config(settings: Settings) -> UserFeatureConfig:
    """The user-feature configuration a worker with ``settings`` folds with."""
    return UserFeatureConfig(
        lateness_ms=settings.allowed_lateness_ms, session_gap_ms=settings.session_gap_ms
    )


def _consumer(settings: Settings, topics: Sequence[str] = (), **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,  # the suite sends messages above 1 MB
        fetch_max_bytes=32 * 1024 * 1024,
        **security_options(settings),
        **options,
    )


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's end offset (raised to a fetch's high water: Tansu's quirk), for
    every partition the topic has (the compacted ones may have fewer)."""
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await consumer.topics()  # the metadata, so the topic's partitions are known
        partitions = consumer.partitions_for_topic(topic) or range(settings.partitions)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        options = {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}
        ends = await fetched_end_offsets(options, await consumer.end_offsets(tps))
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now, by partition and offset."""
    ends = await end_offsets(settings, topic)
    left = {TopicPartition(topic, p) for p, end in ends.items() if end > 0}
    if not left:
        return []
    consumer = _consumer(settings)
    records: list[Any] = []
    await consumer.start()
    try:
        consumer.assign(sorted(left))
        await consumer.seek_to_beginning(*left)
        while left:
            for tp, part in (await consumer.getmany(*left, timeout_ms=500)).items():
                records.extend(r for r in part if r.offset < ends[tp.partition])
            left = {tp for tp in left if await consumer.position(tp) < ends[tp.partition]}
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def committed_offsets(settings: Settings, topic: str | None = None) -> dict[int, int]:
    """The worker group's committed offsets of ``topic`` (the input by default; 0 where
    none), read without joining."""
    consumer = _consumer(settings, group_id=settings.app_id)
    await consumer.start()
    try:
        topic = topic or settings.events_topic
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        return {tp.partition: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()


class _AsFaust(RoundRobinPartitionAssignor):
    """Round robin under the name of Faust's assignor: a group admits a member only
    with a protocol its members share."""

    name = "faust"


async def rewind_group(settings: Settings, offset: int = 0, timeout_s: float = 60.0) -> float:
    """Commit ``offset`` for every input partition of the (stopped) worker group; returns
    the seconds it took.

    The rewinding consumer joins the group and commits as its member: Tansu keeps a
    member that left (or died) until a rebalance evicts it, and refuses commits from
    outside a group that has members.
    """
    started = time.monotonic()
    consumer = _consumer(
        settings,
        topics=[settings.events_topic],
        group_id=settings.app_id,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        partition_assignment_strategy=(_AsFaust,),
    )
    try:
        await consumer.start()
        while len(consumer.assignment()) < settings.partitions:
            if time.monotonic() - started > timeout_s:
                raise VerifyError(f"could not join group {settings.app_id} to rewind it")
            await consumer.getmany(timeout_ms=200)
        await consumer.commit({tp: offset for tp in consumer.assignment()})
    finally:
        await consumer.stop()
    return time.monotonic() - started


async def publish_events(
    settings: Settings,
    events: Sequence[Event],
    *,
    rate: float | None = None,
    per_message: int = 5,
) -> None:
    """Publish with :class:`EventProducer` (each message one user's batch), paced at
    ``rate`` events per second when given; returns once the broker acknowledged all."""
    async with EventProducer(
        settings.bootstrap_servers,
        settings.events_topic,
        max_batch_events=per_message,
        **security_options(settings),
    ) as producer:
        started = time.monotonic()
        for i, event in enumerate(events):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            await producer.publish(event)


async def publish_raw(
    settings: Settings, messages: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    """Send ``(key, value)`` messages exactly as they are, one after the other (the
    order within a partition is the order given); up to 4 MiB each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        max_request_size=4 * 1024 * 1024,
        **security_options(settings),
    )
    await producer.start()
    try:
        for key, value in messages:
            await (await producer.send(settings.events_topic, key=key, value=value))
    finally:
        await producer.stop()


def metric_total(body: bytes, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, in a /metrics page.

    >>> page = b'''# TYPE tunestream_events_total counter
    ... tunestream_events_total{type="play",outcome="duplicate"} 2.0
    ... tunestream_events_total{type="skip",outcome="duplicate"} 1.0
    ... tunestream_events_total{type="skip",outcome="ok"} 5.0
    ... '''
    >>> metric_total(page, "tunestream_events_total", outcome="duplicate")
    3.0
    """
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@dataclass(frozen=True)
class Fault:
    """Behaviour injected into a worker from outside the product code.

    A message whose bytes hold ``token`` writes ``"partition offset"`` to
    ``marker`` and then, with ``mode`` "slow", waits ``seconds`` before it is
    processed; with "hang", is never processed (a stuck agent).

    >>> Fault.from_env(Fault("hang", "x", "/tmp/m").to_env())
    Fault(mode='hang', token='x', marker='/tmp/m', seconds=0.0)
    """

    mode: str
    token: str
    marker: str
    seconds: float = 0.0

    def to_env(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_env(cls, text: str) -> Fault:
        return cls(**orjson.loads(text))


class WorkerProcess:
    """One tunestream worker in its own process (with a :class:`Fault`, this module's
    wrapper), its output in a log file; signalled only by its own PID.

    Each start gets a fresh web port and state directory (the tables restore from
    their changelogs).
    """

    #: what it is called in errors, and the page that answers 200 once it is ready
    role: str = "worker"
    ready_path: str = "/readyz"

    def __init__(self, settings: Settings, log_dir: Path, fault: Fault | None = None) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.fault = fault
        self.child: Child | None = None
        self.web_port = 0
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.settings.app_id}-{id(self)}.log"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self.child is None else self.child.process

    def start(self) -> WorkerProcess:
        self.starts += 1
        self.web_port = free_port()
        data_dir = self.log_dir / f"{self.settings.app_id}-{id(self)}-{self.starts}"
        settings = self.settings.replace(web_port=self.web_port, data_dir=str(data_dir))
        env = dict(os.environ)
        env.update({env_name(k): str(v) for k, v in vars(settings).items()})
        entry = ["-m", "streams"]
        if self.fault is not None:
            env[FAULT_ENV] = self.fault.to_env()
            entry = ["-m", "streams.tools.verify"]
        argv = [sys.executable, *entry, "worker"]
        self.child = Child("worker", argv, env, self.log_path, error=VerifyError).start()
        return self

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    def kill(self) -> None:
        """SIGKILL: no commit, no goodbye to the group."""
        if self.child is not None:
            self.child.kill()

    def terminate(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code, None if it had to be killed."""
        return None if self.child is None else self.child.stop(timeout_s)

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
        """HTTP GET on the worker: ``(status, body)``; ``(0, b"")`` while nothing answers."""
        return http_get(self.web_port, path, timeout_s)

    async def status(self, path: str) -> int:
        return (await asyncio.to_thread(self.get, path))[0]

    async def metrics(self) -> bytes:
        status, body = await asyncio.to_thread(self.get, "/metrics")
        if status != 200:
            raise VerifyError(f"/metrics answered {status}; log: {self.log_tail()}")
        return body

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds until :attr:`ready_path` answers 200; :class:`VerifyError` if the
        process exits or it never does."""
        started = time.monotonic()
        while await self.status(self.ready_path) != 200:
            self.check_alive()
            if time.monotonic() - started > timeout_s:
                raise VerifyError(
                    f"{self.role} not ready after {timeout_s:.0f} s: {self.log_tail()}"
                )
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def check_alive(self) -> None:
        if self.child is not None:
            self.child.check_alive()

    def log_tail(self, chars: int = 800) -> str:
        return "(no log)" if self.child is None else self.child.log_tail(chars)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.1
) -> float | None:
    """Seconds until ``condition()`` holds; None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout_s:
            return None
        await asyncio.sleep(poll_s)
    return time.monotonic() - started


async def wait_drained(settings: Settings, workers: Sequence[WorkerProcess]) -> bool:
    """Whether the group committed every input offset: False once the committed
    offsets have not moved for :data:`DRAIN_STALL_S` (or after :data:`DRAIN_TIMEOUT_S`).

    Faust commits only after flushing the producer, so every output of what lies
    below the committed offsets is on the broker by then. The by-track records the
    input made are then folded by the track agent: drained includes its topic too.
    """
    progress = {"committed": -1, "at": time.monotonic()}
    topics = (settings.events_topic, settings.track_events_topic)

    async def drained() -> bool:
        if not any(worker.alive for worker in workers):
            raise VerifyError(f"no worker is running: {workers[0].log_tail()}")
        done, moved = True, 0
        for topic in topics:  # in this order: the input's records make the track records
            ends = await end_offsets(settings, topic)
            committed = await committed_offsets(settings, topic)
            moved += sum(committed.values())
            done = done and all(committed[p] >= end for p, end in ends.items())
        if moved != progress["committed"]:
            progress.update(committed=moved, at=time.monotonic())
        elif time.monotonic() - progress["at"] > DRAIN_STALL_S:
            raise _Stalled
        return done

    try:
        return await wait_until(drained, DRAIN_TIMEOUT_S, poll_s=0.5) is not None
    except _Stalled:
        return False


class _Stalled(Exception):
    """The committed offsets stopped moving short of the end."""


async def wait_for_marker(
    marker: Path, worker: WorkerProcess, timeout_s: float = 60.0
) -> tuple[int, int]:
    """``(partition, offset)`` of the message the fault caught, once it has."""

    async def written() -> bool:
        worker.check_alive()
        return marker.exists() and len(marker.read_text().split()) == 2

    if await wait_until(written, timeout_s) is None:
        raise VerifyError(f"the fault never triggered: {worker.log_tail()}")
    partition, offset = marker.read_text().split()
    return int(partition), int(offset)


async def user_features(
    worker: WorkerProcess, users: Iterable[str]
) -> dict[str, dict[str, Any] | None]:
    """Each user's ``GET /users/{id}/features`` (None on 404; retried while 503)."""
    return await features_of(worker, "users", users)


async def features_of(
    worker: WorkerProcess, kind: str, keys: Iterable[str]
) -> dict[str, dict[str, Any] | None]:
    """``GET /{kind}/{key}/features`` for each key (None on 404; retried while 503)."""
    answers: dict[str, dict[str, Any] | None] = {}
    for key in keys:
        path = f"/{kind}/{urllib.parse.quote(key, safe='')}/features"
        for _ in range(50):
            status, body = await asyncio.to_thread(worker.get, path)
            if status in (200, 404):
                break
            await asyncio.sleep(0.2)
        answers[key] = orjson.loads(body) if status == 200 else None
    return answers


# --- 5. scenarios ---


@dataclass
class Verification:
    """A run read back and judged."""

    tally: Tally
    observed: Observed
    reference: Reference
    drained: bool


@dataclass
class ScenarioResult:
    """What one scenario measured and whether the rule held."""

    name: str
    tally: Tally
    recovery_s: float | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.tally.clean_run and all(self.checks.values())

    def verdict(self) -> str:
        """``ok``, or what failed, in a few words."""
        if self.error is not None:
            return f"error: {self.error.splitlines()[0][:120]}"
        failed = [name for name, passed in self.checks.items() if not passed]
        counts = [
            f"{kind} {getattr(self.tally, kind)}"
            for kind in (
                "lost",
                "duplicated",
                "out_of_sequence",
                "unaccounted",
                "features_mismatched",
            )
            if getattr(self.tally, kind)
        ]
        return "ok" if self.ok else "FAIL: " + ", ".join(counts + failed)

    def to_json(self) -> dict[str, Any]:
        tally = asdict(self.tally)
        return {
            "scenario": self.name,
            "ok": self.ok,
            **tally,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
            "checks": self.checks,
            "details": self.details,
            "elapsed_s": round(self.elapsed_s, 1),
            "error": self.error,
        }


@dataclass
class Context:
    """What a scenario runs with: a broker, a work directory, a seed; what it started."""

    base: Settings
    workdir: Path
    seed: int
    reporter: Reporter
    workers: list[WorkerProcess] = field(default_factory=list)

    async def namespace(self, name: str, **changes: Any) -> Settings:
        """Settings of a fresh app id and topics (created), for one scenario."""
        unique = f"verify-{name}-{uuid.uuid4().hex[:6]}"
        settings = self.base.namespaced(
            unique,
            partitions=PARTITIONS,
            data_dir=str(self.workdir / unique),
            **{**GROUP_TIMINGS, **changes},
        )
        await ensure_topics(settings)
        return settings

    def worker(self, settings: Settings, fault: Fault | None = None) -> WorkerProcess:
        """A worker for ``settings`` (not started), stopped when the scenario ends."""
        worker = WorkerProcess(settings, self.workdir, fault)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate(timeout_s=15.0)

    def step(self, text: str) -> None:
        self.reporter.phase(text)


async def verify_run(
    settings: Settings, worker: WorkerProcess, stream: Stream, others: Sequence[WorkerProcess] = ()
) -> Verification:
    """Wait until the group has committed all input, read everything back, judge it.

    ``worker`` answers the feature requests (any worker routes them to the owner).
    """
    drained = await wait_drained(settings, [worker, *others])
    reference = Reference(decoder_for(settings), feature_config(settings), stream.tracks())
    for record in await read_topic(settings, settings.events_topic):
        reference.feed(InputMessage(record.partition, record.offset, record.key, record.value))
    clean = [
        event
        for record in await read_topic(settings, settings.clean_topic)
        for event in orjson.loads(record.value)
    ]
    dead = [DeadLetter.from_value(r.value) for r in await read_topic(settings, settings.dlq_topic)]
    features = await user_features(worker, reference.applied)
    expected_tracks = reference.track_features(settings.popularity_half_life_s)
    tracks = await features_of(worker, "tracks", expected_tracks)
    observed = Observed(clean, dead, features, tracks, expected_tracks)
    tally = account(reference, observed)
    _count_unsent(stream, reference, tally)
    return Verification(tally, observed, reference, drained)


def _count_unsent(stream: Stream, reference: Reference, tally: Tally) -> None:
    missing = unsent(stream.events, reference)
    if missing:
        first = missing[0]
        tally.flag(
            "lost",
            f"{len(missing)} generated events never reached the input topic "
            f"(first: {first['event_id']!r}, seq {first.get('seq')} of {first['user_id']!r})",
            len(missing),
        )


def unsent(events: Iterable[Event], reference: Reference) -> list[Event]:
    """The generated ``events`` the input topic does not hold (lost before any worker)."""
    arrived = {(o.user, o.event_id) for o in reference.occurrences}
    return [e for e in events if (e["user_id"], e["event_id"]) not in arrived]


def result_of(
    name: str,
    verification: Verification,
    recovery_s: float | None = None,
    checks: dict[str, bool] | None = None,
    **details: Any,
) -> ScenarioResult:
    """A scenario's result: the tally, plus its own checks and measurements."""
    return ScenarioResult(
        name,
        verification.tally,
        recovery_s,
        {"drained": verification.drained, **(checks or {})},
        details,
    )


async def _ready_worker(
    ctx: Context, settings: Settings, fault: Fault | None = None
) -> WorkerProcess:
    worker = ctx.worker(settings, fault).start()
    ctx.step(f"{settings.app_id}: worker pid {worker.process.pid if worker.process else '?'}")
    await worker.wait_ready()
    return worker


async def kill_nine(ctx: Context) -> ScenarioResult:
    """Five SIGKILLs at random moments while a stream is published, each followed by a
    restart. Recovery: the slowest kill -> replacement ready."""
    settings = await ctx.namespace("kill9")
    stream = generate(900, seed=ctx.seed, n_users=60)
    await publish_catalog(settings, stream.catalog)
    worker = await _ready_worker(ctx, settings)
    rng = random.Random(ctx.seed)
    publishing = asyncio.create_task(publish_events(settings, stream.events, rate=30.0))
    recoveries = []
    for kill in range(1, 6):
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        killed_at = time.monotonic()
        worker.kill()
        ctx.step(f"kill -9 #{kill}; restarting")
        worker.start()
        await worker.wait_ready()
        recoveries.append(time.monotonic() - killed_at)
    await publishing
    verification = await verify_run(settings, worker, stream)
    return result_of(
        "kill-9", verification, max(recoveries), recoveries_s=[round(s, 2) for s in recoveries]
    )


async def slow_event_killed(ctx: Context) -> ScenarioResult:
    """A worker is killed while one message is in processing (slowed by a :class:`Fault`);
    the committed offset must not pass it, and the restarted worker applies it.
    Recovery: kill -> replacement ready."""
    settings = await ctx.namespace("slow")
    stream = generate(400, seed=ctx.seed + 1, n_users=40)
    await publish_catalog(settings, stream.catalog)
    marker = ctx.workdir / f"{settings.app_id}.marker"
    slow_worker = await _ready_worker(ctx, settings, Fault("slow", "slow-here", str(marker), 120.0))
    half = len(stream.events) // 2
    slow = stream.events[half]
    slow["fault"] = "slow-here"
    await publish_events(settings, stream.events[:half])
    await publish_events(settings, [slow], per_message=1)
    publishing = asyncio.create_task(publish_events(settings, stream.events[half + 1 :]))
    partition, offset = await wait_for_marker(marker, slow_worker)
    await asyncio.sleep(2 * settings.commit_interval_s)  # commits would pass it by now
    killed_at = time.monotonic()
    slow_worker.kill()
    committed = (await committed_offsets(settings))[partition]
    ctx.step(f"killed in processing partition {partition} offset {offset}; committed {committed}")
    await publishing
    worker = await _ready_worker(ctx, settings)
    recovery_s = time.monotonic() - killed_at
    verification = await verify_run(settings, worker, stream)
    applied = (slow["user_id"], slow["event_id"]) in {
        _event_key(e) for e in verification.observed.clean
    }
    checks = {
        "committed_offset_never_passed_it": committed <= offset,
        "applied_after_restart": applied,
    }
    return result_of(
        "slow-event-killed",
        verification,
        recovery_s,
        checks,
        slow_event={"partition": partition, "offset": offset},
        committed_when_killed=committed,
    )


async def _group_settled(workers: Sequence[WorkerProcess]) -> bool:
    """Every worker ready, and together they own each input partition exactly once."""
    owned = []
    for worker in workers:
        ready = await worker.status("/readyz")
        status, page = await asyncio.to_thread(worker.get, "/metrics")
        if ready != 200 or status != 200:
            return False
        owned.append(metric_total(page, "tunestream_assigned_partitions"))
    return sum(owned) == PARTITIONS and all(owned)


#: Scale-out-and-in cycles under load, and the load.
SCALE_CYCLES: Final = 2
SCALE_EVENTS_PER_S: Final = 40.0


async def scale_out_and_in(ctx: Context) -> ScenarioResult:
    """1 -> 2 -> 1 workers under load, twice; the second worker leaves with SIGTERM.
    Recovery: the slowest rejoin (new worker started / SIGTERM sent -> group settled)."""
    settings = await ctx.namespace("scale")
    stream = generate(1200, seed=ctx.seed + 2, n_users=80)
    await publish_catalog(settings, stream.catalog)
    first = await _ready_worker(ctx, settings)
    publishing = asyncio.create_task(
        publish_events(settings, stream.events, rate=SCALE_EVENTS_PER_S)
    )
    rejoins: list[tuple[float | None, float | None, int | None]] = []
    for _ in range(SCALE_CYCLES):
        rejoins.append(await _scale_cycle(ctx, settings, first))
    await publishing
    verification = await verify_run(settings, first, stream)
    checks = {
        "second_worker_got_partitions": all(out is not None for out, _, _ in rejoins),
        "back_to_one_worker": all(back is not None for _, back, _ in rejoins),
        "sigterm_exit_0": all(code == 0 for _, _, code in rejoins),
    }
    times = [s for out, back, _ in rejoins for s in (out, back) if s is not None]
    return result_of(
        "scale-1-2-1",
        verification,
        max(times, default=None),
        checks,
        scale_out_s=[_round(out) for out, _, _ in rejoins],
        scale_in_s=[_round(back) for _, back, _ in rejoins],
    )


async def _scale_cycle(
    ctx: Context, settings: Settings, first: WorkerProcess
) -> tuple[float | None, float | None, int | None]:
    """Start a second worker, let it work, SIGTERM it: (seconds until the group settled
    with two, seconds from SIGTERM until it settled with one, the leaver's exit code)."""
    await asyncio.sleep(2.0)
    second = ctx.worker(settings).start()
    out_s = await wait_until(lambda: _group_settled([first, second]), READY_TIMEOUT_S, 0.2)
    await asyncio.sleep(2.0)
    left_at = time.monotonic()
    code = await asyncio.to_thread(second.terminate)  # the publisher goes on meanwhile
    settled = await wait_until(lambda: _group_settled([first]), READY_TIMEOUT_S, 0.2)
    back_s = None if settled is None else time.monotonic() - left_at
    ctx.step(f"scaled out in {_round(out_s)} s, back in {_round(back_s)} s (exit {code})")
    return out_s, back_s, code


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


async def _duplicates_counted(worker: WorkerProcess) -> float:
    return metric_total(await worker.metrics(), "tunestream_events_total", outcome="duplicate")


async def duplicates_and_rewind(ctx: Context) -> ScenarioResult:
    """10% of the events re-published, then the group rewound to the start and the stream
    read again: features unchanged, the duplicate counter equal to the copies both times.
    Recovery: SIGTERM -> rewound worker ready."""
    settings = await ctx.namespace("dups")
    stream = generate(600, seed=ctx.seed + 3, n_users=40)
    await publish_catalog(settings, stream.catalog)
    sent = with_copies(stream.events, 0.10, random.Random(ctx.seed))
    injected = len(sent) - len(stream.events)
    worker = await _ready_worker(ctx, settings)
    await publish_events(settings, sent)
    first = await verify_run(settings, worker, stream)
    counted_first = await _duplicates_counted(worker)
    stopped_at = time.monotonic()
    code = worker.terminate()
    rewind_s = await rewind_group(settings)
    ctx.step(f"{injected} copies; stopped (exit {code}); group rewound in {rewind_s:.1f} s")
    worker.start()
    # Tansu keeps a member that left until a rebalance evicts it: until then it can
    # hold partitions, so the rewound stream is read only once the worker owns them all.
    settled = await wait_until(lambda: _group_settled([worker]), READY_TIMEOUT_S, 0.2)
    recovery_s = time.monotonic() - stopped_at
    second = await verify_run(settings, worker, stream)
    counted_second = await _duplicates_counted(worker)
    checks = {
        "first_pass_clean": first.tally.clean_run,
        "copies_expected": first.reference.count(DUPLICATE) == injected,
        "counter_equals_copies_first_pass": counted_first == injected,
        "counter_equals_copies_after_rewind": counted_second == injected,
        "rewound_worker_owns_every_partition": settled is not None,
    }
    return result_of(
        "duplicates-rewind",
        second,
        recovery_s,
        checks,
        injected=injected,
        counted=[counted_first, counted_second],
        sigterm_exit=code,
        rewind_s=round(rewind_s, 2),
        reforwarded_after_rewind=second.tally.reforwarded,
    )


def hostile_messages(user: str, now: int) -> list[tuple[str, bytes | None, bytes | None]]:
    """``(kind, key, value)`` of messages a hostile or buggy client sends, keyed by
    ``user`` where a key is needed: every rejection reason the worker knows of, the
    large messages that once stopped it, and two valid oddities (a 900 KB event and
    an event stamped long ago, for a user of its own)."""
    key = user.encode()

    def event(**fields: Any) -> dict[str, Any]:
        base = {
            "event_id": f"h-{uuid.uuid4().hex[:10]}",
            "user_id": user,
            "track_id": "t00001",
            "type": "play",
            "ts": now,
            "ms_played": 1000,
        }
        return {k: v for k, v in {**base, **fields}.items() if v is not None}

    def deep(levels: int) -> bytes:
        head = orjson.dumps(event())[:-1]
        return head + b',"x":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"

    small: list[tuple[str, bytes | None, bytes | None]] = [
        ("not_utf8", key, b"\xff\xfe\xfd"),
        ("not_json", key, b"{not json"),
        ("truncated", key, orjson.dumps(event())[:-5]),
        ("tombstone", key, None),
        ("empty_batch", key, b"[]"),
        ("number", key, b"42"),
        ("string", key, b'"play"'),
        ("null", key, b"null"),
        ("array_of_junk", key, b'[1, "x", null, []]'),
        ("too_many_events", key, orjson.dumps([event() for _ in range(1001)])),
        ("too_deep_40", key, deep(40)),
        ("too_deep_300", key, deep(300)),
        ("no_key", None, orjson.dumps(event())),
        ("other_key", b"someone-else", orjson.dumps(event())),
        ("binary_key", b"\xff\x00", orjson.dumps(event())),
        ("mixed_batch", key, orjson.dumps([event(), event(type="pause"), event()])),
    ]
    for field_name in ("event_id", "user_id", "track_id", "type", "ts", "ms_played"):
        small.append((f"missing_{field_name}", key, orjson.dumps(event(**{field_name: None}))))
    wrong = {
        "event_id": 17,
        "ts": str(now),
        "ms_played": 1.5,
        "type": "pause",
        "context": "car",
        "session_id": "",
        "track_id": "t" * 200,
        "recommendation_id": 5,
    }
    small += [(f"bad_{k}", key, orjson.dumps(event(**{k: v}))) for k, v in wrong.items()]
    small += [
        ("negative_ms_played", key, orjson.dumps(event(ms_played=-1))),
        ("ms_played_over_a_day", key, orjson.dumps(event(ms_played=86_400_001))),
        ("ts_before_2000", key, orjson.dumps(event(ts=0))),
        ("ts_in_future", key, orjson.dumps(event(ts=now + 86_400_000))),
        ("hour_24", key, orjson.dumps(event(context={"hour": 24}))),
    ]
    large = [
        ("430KB_not_json", key, b"\x01" * 430_000),
        ("oversize", key, b"[" + b" " * 1_100_000 + b"]"),
        ("valid_900KB", key, orjson.dumps(event(padding="é" * 450_000))),
        (
            "valid_long_ago",
            b"u-long-ago",
            orjson.dumps(event(user_id="u-long-ago", ts=1_767_225_599_000)),
        ),
    ]
    return small + large


def generated_bytes(n: int, seed: int) -> list[bytes]:
    """``n`` message values drawn by hypothesis (arbitrary bytes, and JSON of any
    shape), deterministic for ``seed``; seeded random bytes without hypothesis."""
    try:
        from hypothesis import (
            HealthCheck,
            Phase,
            given,
            settings,
        )
        from hypothesis import (
            seed as hypothesis_seed,
        )
        from hypothesis import (
            strategies as st,
        )
    except ImportError:  # not a runtime dependency
        rng = random.Random(seed)
        return [rng.randbytes(rng.randrange(200)) for _ in range(n)]
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    values = st.recursive(
        leaves,
        lambda kids: (
            st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=10), kids, max_size=5)
        ),
        max_leaves=20,
    )
    drawn: list[bytes] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(max_size=300) | values.map(orjson.dumps))
    def draw(value: bytes) -> None:
        drawn.append(value)

    draw()
    return drawn[:n]


async def hostile_input(ctx: Context) -> ScenarioResult:
    """Every kind of bad message, and hypothesis-drawn bytes, each between two canary
    events of one user: each dead-lettered once, every canary applied."""
    settings = await ctx.namespace("hostile")
    user = "u0000"  # the simulator's only user of a population of one
    bad = hostile_messages(user, now_ms()) + [
        ("generated", user.encode(), value) for value in generated_bytes(40, ctx.seed)
    ]
    stream = generate(len(bad) + 1, seed=ctx.seed + 4, n_users=1, per_user_max=len(bad) + 1)
    if {e["user_id"] for e in stream.events} != {user}:
        raise VerifyError(f"the canaries are not all of user {user!r}")
    await publish_catalog(settings, stream.catalog)
    canaries = [(e["user_id"].encode(), encode(e)) for e in stream.events]
    messages = [
        m for pair in zip(canaries, [(k, v) for _, k, v in bad], strict=False) for m in pair
    ]
    worker = await _ready_worker(ctx, settings)
    ctx.step(f"{len(bad)} bad messages between {len(canaries)} canaries")
    await publish_raw(settings, [*messages, canaries[-1]])
    verification = await verify_run(settings, worker, stream)
    clean = {_event_key(e) for e in verification.observed.clean}
    checks = {
        "every_canary_applied": all((e["user_id"], e["event_id"]) in clean for e in stream.events),
        "no_dead_letter_twice": verification.tally.dlq_repeats == 0,
        "worker_still_running": worker.alive,
    }
    return result_of("hostile-input", verification, None, checks, bad_messages=len(bad))


async def late_and_out_of_order(ctx: Context) -> ScenarioResult:
    """Each user's events shuffled within the allowed lateness: the features equal an
    in-order fold; events beyond it are counted (``too_late``) and dead-lettered."""
    settings = await ctx.namespace("late")
    lateness = settings.allowed_lateness_ms
    stream = generate(480, seed=ctx.seed + 5, n_users=30, span_s=lateness / 1000 * 0.8)
    await publish_catalog(settings, stream.catalog)
    rng = random.Random(ctx.seed)
    shuffled = shuffled_within(stream.events, int(lateness * 0.9), rng)
    late = _too_late_events(stream.events, lateness, rng)
    worker = await _ready_worker(ctx, settings)
    await publish_events(settings, shuffled, per_message=3)
    await publish_events(settings, late, per_message=1)
    verification = await verify_run(settings, worker, stream)
    counted = metric_total(await worker.metrics(), "tunestream_events_total", outcome="too_late")
    late_ids = {(e["user_id"], e["event_id"]) for e in late}
    refused = [o for o in verification.reference.occurrences if (o.user, o.event_id) in late_ids]
    checks = {
        "reordered": shuffled != stream.events,
        "too_late_counted": counted == len(late),
        "too_late_expected": all(o.expected == "too_late" for o in refused)
        and len(refused) == len(late),
    }
    return result_of(
        "late-out-of-order", verification, None, checks, too_late=len(late), counted=counted
    )


def _too_late_events(events: Sequence[Event], lateness_ms: int, rng: random.Random) -> list[Event]:
    """One event per third of the users, older than their newest by more than the lateness."""
    newest: dict[str, Event] = {}
    for event in events:
        if event["ts"] >= newest.get(event["user_id"], event)["ts"]:
            newest[event["user_id"]] = event
    users = sorted(newest)[::3]
    return [
        {
            **newest[u],
            "event_id": f"late-{uuid.uuid4().hex[:10]}",
            "seq": -1,
            "ts": newest[u]["ts"] - lateness_ms - rng.randint(1, 600_000),
        }
        for u in users
    ]


#: How long the stuck worker gets to stop on SIGTERM before SIGKILL (an orchestrator's grace).
STUCK_GRACE_S: Final = 10.0


async def stuck_agent(ctx: Context) -> ScenarioResult:
    """The agent hangs on one message (a :class:`Fault`): ``/livez`` turns 503 and the
    stall shows in the metrics; a replacement then applies everything. Recovery: the
    stuck message caught -> replacement ready."""
    settings = await ctx.namespace("stuck", stall_after_s=2.0)
    stream = generate(300, seed=ctx.seed + 6, n_users=30)
    await publish_catalog(settings, stream.catalog)
    marker = ctx.workdir / f"{settings.app_id}.marker"
    hanging = await _ready_worker(ctx, settings, Fault("hang", "hang-here", str(marker)))
    half = len(stream.events) // 2
    stuck = stream.events[half]
    stuck["fault"] = "hang-here"
    await publish_events(settings, stream.events[:half])
    await publish_events(settings, [stuck], per_message=1)
    await publish_events(settings, stream.events[half + 1 :])
    await wait_for_marker(marker, hanging)
    stuck_at = time.monotonic()
    detect_s = await wait_until(lambda: _status_is(hanging, "/livez", 503), 30.0, 0.2)
    reason = orjson.loads((await asyncio.to_thread(hanging.get, "/livez"))[1] or b"{}").get(
        "reason", ""
    )
    page = await hanging.metrics()
    idle_s = time.time() - metric_total(page, "tunestream_last_processed_timestamp_seconds")
    lag = metric_total(page, "tunestream_consumer_lag_messages")
    ctx.step(f"/livez 503 after {detect_s} s ({reason}); idle {idle_s:.1f} s, lag {lag:.0f}")
    code = await asyncio.to_thread(hanging.terminate, STUCK_GRACE_S)  # None: it needed SIGKILL
    worker = await _ready_worker(ctx, settings)
    recovery_s = time.monotonic() - stuck_at
    verification = await verify_run(settings, worker, stream)
    checks = {
        "livez_503": detect_s is not None,
        "livez_names_the_stuck_message": "in processing" in reason,
        "stall_in_metrics": idle_s > settings.stall_after_s and lag > 0,
    }
    return result_of(
        "stuck-agent",
        verification,
        recovery_s,
        checks,
        livez_503_after_s=_round(detect_s),
        idle_s=round(idle_s, 1),
        lag_messages=lag,
        sigterm_exit=code,
    )


async def _status_is(worker: WorkerProcess, path: str, status: int) -> bool:
    return await worker.status(path) == status


#: How long the broker stays unanswering in the outage scenario.
OUTAGE_S: Final = 8.0


async def broker_outage(ctx: Context) -> ScenarioResult:
    """The broker stops answering (SIGSTOP) for :data:`OUTAGE_S` while events are being
    published, then comes back (SIGCONT) with its data: ``/readyz`` 503 during it,
    ``/livez`` 200, and nothing lost. Recovery: broker back -> worker ready."""
    broker = EmbeddedBroker(port=free_port()).start()  # ours: the suite's broker stays up
    try:
        settings = await ctx.namespace("outage", broker=broker.bootstrap_servers)
        return await _through_an_outage(ctx, settings, broker)
    finally:
        ctx.stop_workers()  # before the broker, which they need to leave the group
        broker.stop()


async def _through_an_outage(
    ctx: Context, settings: Settings, broker: EmbeddedBroker
) -> ScenarioResult:
    stream = generate(600, seed=ctx.seed + 7, n_users=40)
    await publish_catalog(settings, stream.catalog)
    worker = await _ready_worker(ctx, settings)
    half = len(stream.events) // 2
    await publish_events(settings, stream.events[:half])
    await wait_drained(settings, [worker])
    publishing = asyncio.create_task(publish_events(settings, stream.events[half:], rate=40.0))
    await asyncio.sleep(1.0)
    outage = await _outage(ctx, broker, worker)
    back_s = await wait_until(lambda: _status_is(worker, "/readyz", 200), READY_TIMEOUT_S, 0.1)
    await publishing
    verification = await verify_run(settings, worker, stream)
    checks = {**outage, "ready_again": back_s is not None, "worker_survived": worker.alive}
    return result_of("broker-outage", verification, back_s, checks, outage_s=OUTAGE_S)


async def _outage(ctx: Context, broker: EmbeddedBroker, worker: WorkerProcess) -> dict[str, bool]:
    """Freeze the broker's process for :data:`OUTAGE_S`; what the worker said meanwhile."""
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    ctx.step(f"broker pid {broker.pid} stopped (SIGSTOP)")
    try:
        unready = await wait_until(lambda: _status_is(worker, "/readyz", 503), OUTAGE_S, 0.2)
        live = await worker.status("/livez") == 200
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        ctx.step("broker resumed (SIGCONT)")
    return {"readyz_503_during_outage": unready is not None, "livez_200_during_outage": live}


@dataclass(frozen=True)
class Scenario:
    """A named fault and its run; the run returns a verified :class:`ScenarioResult`."""

    name: str
    run: Callable[[Context], Awaitable[ScenarioResult]]

    @property
    def title(self) -> str:
        return (self.run.__doc__ or self.name).split("\n")[0]


async def snapshot_integrity(ctx: Context) -> ScenarioResult:
    """A learner killed mid-write three times, and a corrupted, a cut and a foreign
    snapshot: none is served, no example is learned twice. Recovery: the slowest
    kill -> the replacement's first snapshot."""
    # Imported when run: streams.tools.verify_snapshots builds on this module.
    from streams.tools.verify_snapshots import snapshot_integrity as run

    return await run(ctx)


SCENARIOS: Final = (
    Scenario("kill-9", kill_nine),
    Scenario("slow-event-killed", slow_event_killed),
    Scenario("scale-1-2-1", scale_out_and_in),
    Scenario("duplicates-rewind", duplicates_and_rewind),
    Scenario("hostile-input", hostile_input),
    Scenario("late-out-of-order", late_and_out_of_order),
    Scenario("stuck-agent", stuck_agent),
    Scenario("broker-outage", broker_outage),
    Scenario("snapshot-integrity", snapshot_integrity),
)
SCENARIO_NAMES: Final = tuple(scenario.name for scenario in SCENARIOS)


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; ``KeyError`` naming the known ones otherwise."""
    for candidate in SCENARIOS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIO_NAMES)}")


async def run_scenario(item: Scenario, ctx: Context) -> ScenarioResult:
    """Run one scenario; a failure to run is a result with ``error``, never an exception.
    Every worker it started is stopped."""
    started = time.monotonic()
    ctx.step(f"{item.name}: {item.title}")
    try:
        result = await item.run(ctx)
    except Exception as exc:  # reported in the table; the other scenarios still run
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" ({Path(frame.filename).name}:{frame.lineno})"
        result = ScenarioResult(item.name, Tally(), error=f"{type(exc).__name__}: {exc}{where}")
    finally:
        ctx.stop_workers()
        ctx.workers.clear()
    result.elapsed_s = time.monotonic() - started
    ctx.step(f"{item.name}: {result.verdict()} ({result.elapsed_s:.0f} s)")
    return result


def run_suite(
    settings: Settings,
    names: Sequence[str] | None = None,
    *,
    seed: int = 7,
    workdir: Path | None = None,
    reporter: Reporter | None = None,
) -> list[ScenarioResult]:
    """Run the named scenarios (all by default) in order, on ``settings``' broker, or on
    an embedded broker of their own when it is ``embedded``."""
    chosen = [scenario(name) for name in (names or SCENARIO_NAMES)]
    reporter = reporter or Reporter(prefix="verify")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="tunestream-verify-"))
            )
        if settings.embedded:
            broker = stack.enter_context(EmbeddedBroker())
            settings = settings.replace(broker=broker.bootstrap_servers)
        reporter.phase(f"broker {settings.bootstrap_servers}; work directory {workdir}")
        ctx = Context(settings, workdir, seed, reporter)
        return [asyncio.run(run_scenario(item, ctx)) for item in chosen]


# --- the table ---

TABLE_HEADERS: Final = (
    "scenario",
    "events sent",
    "lost",
    "duplicated",
    "dead-lettered",
    "recovery time (s)",
    "verdict",
)


def table_rows(results: Sequence[ScenarioResult]) -> list[tuple[str, ...]]:
    """One row per scenario, in :data:`TABLE_HEADERS` order."""
    return [
        (
            r.name,
            f"{r.tally.sent:,}",
            str(r.tally.lost),
            str(r.tally.duplicated),
            f"{r.tally.dead_lettered:,}",
            "-" if r.recovery_s is None else f"{r.recovery_s:.1f}",
            r.verdict(),
        )
        for r in results
    ]


def format_table(results: Sequence[ScenarioResult]) -> str:
    """The results as a plain-text table (no terminal codes).

    >>> print(format_table([ScenarioResult("kill-9", Tally(sent=12, dead_lettered=2), 4.25)]))
    scenario  events sent  lost  duplicated  dead-lettered  recovery time (s)  verdict
    --------  -----------  ----  ----------  -------------  -----------------  -------
    kill-9    12           0     0           2              4.2                ok
    """
    return format_plain(TABLE_HEADERS, table_rows(results))


def to_json(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """The results for ``--json``, with the settings that shape them."""
    return {
        "scenarios": [result.to_json() for result in results],
        "ok": all(result.ok for result in results),
        "group_timings": GROUP_TIMINGS,
        "partitions": PARTITIONS,
        "cpu_count": os.cpu_count(),
    }


# --- the worker wrapper (``python -m streams.tools.verify worker``) ---


def _fault_worker(argv: Sequence[str]) -> int:
    """``tunestream worker`` whose agent applies the :class:`Fault` in :data:`FAULT_ENV`."""
    from streams.tools.cli import main
    from streams.worker import app as app_module

    fault = Fault.from_env(os.environ[FAULT_ENV])
    handle = app_module.Worker.handle
    token = fault.token.encode()

    async def handle_with_fault(self: Any, key: Any, value: Any, source: Any) -> None:
        if value is not None and token in value:
            Path(fault.marker).write_text(f"{source.partition} {source.offset}")
            if fault.mode == "hang":
                await asyncio.Event().wait()  # never set: the agent is stuck on this message
            await asyncio.sleep(fault.seconds)
        await handle(self, key, value, source)

    app_module.Worker.handle = handle_with_fault  # type: ignore[method-assign]
    return main(list(argv))


if __name__ == "__main__":  # never on import: pytest's doctest collection imports this module
    sys.exit(_fault_worker(sys.argv[1:]))
