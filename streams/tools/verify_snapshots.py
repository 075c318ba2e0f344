"""Scenario 9 of ``tunestream verify``: model-snapshot integrity.

The process that writes model snapshots is the learner (:mod:`streams.worker.learner`):
it signs each one with HMAC-SHA256 and publishes it to ``model-snapshots``, where every
worker verifies it before serving it. Three ways a snapshot can go wrong, each
injected here while a stream is being learned:

* **killed mid-write**: the learner is killed with SIGKILL at random moments of its
  snapshot cycle (one aimed at the moment a snapshot is due), and restarted. A
  Kafka record is written whole or not at all, so a kill must leave no torn
  snapshot on the topic, and the replacement must resume from the last published
  one and learn every example since exactly once.
* **a corrupted byte**: a copy of a real snapshot with one bit flipped inside its
  signed body, and a copy cut short (what a killed non-atomic writer would leave).
* **the wrong key**: a snapshot claiming to be an hour newer, signed with another key.

The forgeries go out between the second and the last kill, so the last learner
must skip them when it resumes, and the worker must refuse each of them while it
keeps serving the newest genuine snapshot. The events themselves are judged by the
suite's verifier (:func:`streams.tools.verify.verify_run`): nothing lost or doubled.

:data:`streams.tools.verify.SCENARIOS` lists it as ``snapshot-integrity``, through a
wrapper that imports this module when the scenario runs (this module builds on that one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import random
import secrets
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaProducer

from online_models.learner import SNAPSHOT_NAME, read_record
from online_models.snapshot import (
    MIN_KEY_BYTES,
    REFUSAL_REASONS,
    Snapshot,
    SnapshotRefused,
    decode_snapshot,
    encode_snapshot,
)
from streams.contracts.clock import now_ms
from streams.kafka.broker import free_port
from streams.kafka.security import security_options
from streams.settings import Settings, env_name
from streams.tools.processes import Child
from streams.tools.publish import publish_catalog
from streams.tools.verify import (
    READY_TIMEOUT_S,
    Context,
    ScenarioResult,
    VerifyError,
    WorkerProcess,
    end_offsets,
    generate,
    metric_total,
    publish_events,
    read_topic,
    result_of,
    verify_run,
    wait_until,
)

#: How often the learner publishes: short, so that kills land all over its cycle.
SNAPSHOT_INTERVAL_S: Final = 1.0
#: The learner waits this long for examples between checks of the snapshot timer
#: (``getmany(timeout_ms=200)``): a due snapshot goes out within it.
DUE_WINDOW_S: Final = 0.2
#: SIGKILLs of the learner, each followed by a restart.
LEARNER_KILLS: Final = 3
#: The stream: long enough that the learner always has something new to learn while
#: it is killed and restarted (three restarts take well under its 50 s).
STREAM_EVENTS: Final = 1500
STREAM_USERS: Final = 100
STREAM_EVENTS_PER_S: Final = 30.0
#: The wrong-key forgery claims to be this much newer than the genuine snapshot it
#: copies: were it served, it would shadow every genuine snapshot for an hour.
FORGED_AHEAD_MS: Final = 3_600_000
#: What the worker, the topic and the resuming learner must refuse: the corrupted
#: and the foreign snapshot fail the tag, the cut one is short of its own length.
INJECTED_REFUSALS: Final = {"bad_signature": 2, "truncated": 1}
#: Where a snapshot's signed body (header, then arrays) starts: after the magic, the
#: format version, the signed length and the header length (online_models.snapshot).
BODY_AT: Final = struct.calcsize("<4sHQI")
TAG_BYTES: Final = hashlib.sha256().digest_size
#: Poll periods: the learner's ``/models`` (cheap), and the topics and ``/models`` of
#: the worker at the end (a read of a topic costs a consumer).
POLL_S: Final = 0.1
READ_POLL_S: Final = 0.5
#: Several of the worker's 0.25 s example-flush periods: after the worker drained,
#: its last training examples are on the topic by then.
EXAMPLES_SETTLE_S: Final = 2.0
#: Longest wait for the learner to learn the last example, and the worker to serve it.
CATCH_UP_TIMEOUT_S: Final = 90.0
SERVE_TIMEOUT_S: Final = 30.0


class LearnerProcess(WorkerProcess):
    """``tunestream learner`` in its own process, signalled by its PID only: a
    :class:`WorkerProcess` so that the scenario's :class:`Context` stops it (SIGTERM)
    however the scenario ends. Each start gets a fresh web port. It has no
    ``/readyz``: up is when ``/livez`` answers."""

    role = "learner"
    ready_path = "/livez"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.settings.app_id}-learner-{id(self)}.log"

    def start(self) -> LearnerProcess:
        self.starts += 1
        self.web_port = free_port()
        settings = self.settings.replace(learner_web_port=self.web_port)
        env = {**os.environ, **{env_name(k): str(v) for k, v in vars(settings).items()}}
        argv = [sys.executable, "-m", "streams", "learner"]
        self.child = Child("learner", argv, env, self.log_path, error=VerifyError).start()
        return self

    async def models(self) -> dict[str, Any]:
        """Its ``/models``; empty while it answers nothing. :class:`VerifyError` if it exited."""
        self.check_alive()
        status, body = await asyncio.to_thread(self.get, "/models")
        return orjson.loads(body) if status == 200 else {}

    async def last_published(self) -> dict[str, Any] | None:
        """What it last published (or resumed from, until it publishes); None if nothing."""
        return (await self.models()).get("last_published")

    async def unpublished(self) -> int:
        """Examples it has learned since its last snapshot: what a kill now throws away."""
        models = await self.models()
        last = models.get("last_published") or {}
        return int(models.get("examples_seen", 0)) - int(last.get("examples_seen", 0))


async def snapshot_integrity(ctx: Context) -> ScenarioResult:
    """A learner killed mid-write three times, and a corrupted, a cut and a foreign
    snapshot: none is served, no example is learned twice. Recovery: the slowest
    kill -> the replacement's first snapshot."""
    key = secrets.token_hex(MIN_KEY_BYTES)
    settings = await ctx.namespace(
        "snapshots", snapshot_key=key, snapshot_interval_s=SNAPSHOT_INTERVAL_S
    )
    stream = generate(STREAM_EVENTS, seed=ctx.seed + 8, n_users=STREAM_USERS)
    await publish_catalog(settings, stream.catalog)
    worker = ctx.worker(settings).start()
    learner = LearnerProcess(settings, ctx.workdir)
    ctx.workers.append(learner.start())  # stopped with the workers, whatever happens
    ctx.step(
        f"{settings.app_id}: worker pid {worker.process and worker.process.pid}, "
        f"learner pid {learner.process and learner.process.pid}"
    )
    await worker.wait_ready()
    rng = random.Random(ctx.seed)
    publishing = asyncio.create_task(
        publish_events(settings, stream.events, rate=STREAM_EVENTS_PER_S)
    )
    kills = await _kill_learner_mid_write(ctx, settings, learner, rng)
    await publishing
    verification = await verify_run(settings, worker, stream)
    applied = verification.tally.applied
    checks, details = await _judge_snapshots(settings, key.encode(), worker, learner, applied)
    return result_of(
        "snapshot-integrity",
        verification,
        max(kill.recovery_s for kill in kills),
        checks,
        recoveries_s=[round(kill.recovery_s, 2) for kill in kills],
        kill_delays_s=[round(kill.delay_s, 2) for kill in kills],
        kills_aimed_at_due=[kill.aimed_at_due for kill in kills],
        unpublished_at_kills=[kill.unpublished for kill in kills],
        **details,
    )


@dataclasses.dataclass(frozen=True)
class LearnerKill:
    """One SIGKILL of the learner: when it came, what it threw away, how long until
    the replacement published."""

    delay_s: float  # after the snapshot before it was seen published
    aimed_at_due: bool  # at the moment the next snapshot was due
    unpublished: int  # examples learned since the last snapshot: to be learned again
    recovery_s: float  # kill -> the replacement's first snapshot


async def _kill_learner_mid_write(
    ctx: Context, settings: Settings, learner: LearnerProcess, rng: random.Random
) -> list[LearnerKill]:
    """SIGKILL the learner :data:`LEARNER_KILLS` times, each at a moment of its snapshot
    cycle drawn from ``rng`` (one at the moment a snapshot is due), restart it, and
    publish the forgeries before the last kill (the last replacement resumes past them)."""
    aimed = rng.randrange(LEARNER_KILLS)
    kills = []
    for n in range(LEARNER_KILLS):
        if n == LEARNER_KILLS - 1:
            await _publish_forgeries(ctx, settings, rng)
        due = n == aimed
        delay = (
            SNAPSHOT_INTERVAL_S + rng.uniform(0, DUE_WINDOW_S)
            if due
            else rng.uniform(0, SNAPSHOT_INTERVAL_S)
        )
        published_at = await _next_publish(learner)
        await asyncio.sleep(max(0.0, published_at + delay - time.monotonic()))
        recovery_s, unpublished = await _kill_and_restart(learner)
        ctx.step(
            f"learner kill -9 #{n + 1}, {delay:.2f} s after a snapshot, {unpublished} examples "
            f"unpublished: the replacement published {recovery_s:.1f} s later"
        )
        kills.append(LearnerKill(delay, due, unpublished, recovery_s))
    return kills


async def _next_publish(learner: LearnerProcess) -> float:
    """The monotonic time at which the learner was seen publishing its next snapshot."""
    before = await learner.last_published()

    async def published() -> bool:
        last = await learner.last_published()
        return last is not None and last != before

    if await wait_until(published, READY_TIMEOUT_S, POLL_S) is None:
        raise VerifyError(f"the learner published nothing: {learner.log_tail()}")
    return time.monotonic()


async def _kill_and_restart(learner: LearnerProcess) -> tuple[float, int]:
    """SIGKILL, restart: seconds until the replacement has published a snapshot, and the
    examples the killed one had learned since its last (to be learned again)."""
    unpublished = await learner.unpublished()
    killed_ms, killed_at = now_ms(), time.monotonic()
    learner.kill()
    learner.start()

    async def published_since_kill() -> bool:
        last = await learner.last_published()
        return last is not None and last["created_at_ms"] >= killed_ms

    if await wait_until(published_since_kill, READY_TIMEOUT_S, POLL_S) is None:
        raise VerifyError(f"the restarted learner published nothing: {learner.log_tail()}")
    return time.monotonic() - killed_at, unpublished


def forgeries(good: Snapshot, key: bytes, rng: random.Random) -> list[bytes]:
    """Three snapshots no worker may serve, made from ``good``: one bit flipped inside
    the signed body, a copy cut inside the body, and a newer one signed with another key.

    >>> import numpy as np
    >>> good = Snapshot("m", "v1", 1_700_000_000_000, 5, arrays={"w": np.zeros(4)})
    >>> key, reasons = b"k" * 32, []
    >>> for blob in forgeries(good, key, random.Random(1)):
    ...     try:
    ...         decode_snapshot(blob, key)
    ...     except SnapshotRefused as refused:
    ...         reasons.append(refused.reason)
    >>> Counter(reasons) == INJECTED_REFUSALS
    True
    """
    blob = encode_snapshot(good, key)
    signed_end = len(blob) - TAG_BYTES
    at = rng.randrange(BODY_AT, signed_end)
    flipped = bytes([blob[at] ^ (1 << rng.randrange(8))])
    newer = dataclasses.replace(
        good, version=f"{good.version}-forged", created_at_ms=good.created_at_ms + FORGED_AHEAD_MS
    )
    return [
        blob[:at] + flipped + blob[at + 1 :],
        blob[: rng.randrange(BODY_AT, signed_end)],
        encode_snapshot(newer, secrets.token_bytes(MIN_KEY_BYTES)),
    ]


async def _publish_forgeries(ctx: Context, settings: Settings, rng: random.Random) -> None:
    """The forgeries of the newest genuine snapshot, under the learner's record key."""
    valid, _ = await read_snapshots(settings, settings.snapshot_key.encode())
    if not valid:
        raise VerifyError("no genuine snapshot to forge from")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        max_request_size=settings.snapshot_max_bytes,
        **security_options(settings),
    )
    blobs = forgeries(valid[-1], settings.snapshot_key.encode(), rng)
    await producer.start()
    try:
        for blob in blobs:
            await producer.send_and_wait(settings.snapshots_topic, blob, key=SNAPSHOT_NAME.encode())
    finally:
        await producer.stop()
    ctx.step(f"published {len(blobs)} forgeries of snapshot {valid[-1].version}")


async def read_snapshots(settings: Settings, key: bytes) -> tuple[list[Snapshot], Counter[str]]:
    """The snapshot topic read back: the snapshots that verify under ``key``, in topic
    order, and the others counted by refusal reason."""
    valid: list[Snapshot] = []
    refused: Counter[str] = Counter()
    for record in await read_topic(settings, settings.snapshots_topic):
        try:
            valid.append(decode_snapshot(record.value, key, max_bytes=settings.snapshot_max_bytes))
        except SnapshotRefused as exc:
            refused[exc.reason] += 1
    return valid, refused


async def _caught_up(settings: Settings, key: bytes) -> Snapshot | None:
    """The newest genuine snapshot once it covers every training-examples record (the
    learner has learned all the worker produced); None if it never does."""
    await asyncio.sleep(EXAMPLES_SETTLE_S)
    newest: list[Snapshot] = []

    async def covered() -> bool:
        ends = await end_offsets(settings, settings.training_examples_topic)
        valid, _ = await read_snapshots(settings, key)
        newest[:] = sorted(valid, key=lambda s: s.created_at_ms)[-1:]
        offsets = newest[0].source_offsets if newest else {}
        return bool(newest) and all(offsets.get(p, 0) == end for p, end in ends.items())

    return (
        newest[0]
        if await wait_until(covered, CATCH_UP_TIMEOUT_S, READ_POLL_S) is not None
        else None
    )


async def examples_produced(settings: Settings) -> int:
    """Training examples on the topic: one per event a worker folded."""
    records = await read_topic(settings, settings.training_examples_topic)
    return sum(len(read_record(record.value)[0]) for record in records)


async def _worker_serving(worker: WorkerProcess, version: str) -> dict[str, Any]:
    """The worker's ``/models`` once it serves ``version`` (or after :data:`SERVE_TIMEOUT_S`)."""
    answer: dict[str, Any] = {}

    async def serves() -> bool:
        status, body = await asyncio.to_thread(worker.get, "/models")
        answer.update(orjson.loads(body) if status == 200 else {})
        return answer.get("serving", {}).get("version") == version

    await wait_until(serves, SERVE_TIMEOUT_S, READ_POLL_S)
    return answer


def refusals(page: bytes) -> dict[str, int]:
    """The learner's snapshot refusals since it started, by reason, from its ``/metrics``.

    >>> refusals(b'tunestream_learner_snapshots_refused_total{reason="truncated"} 1.0\\n')
    {'truncated': 1}
    """
    counts = {
        reason: int(metric_total(page, "tunestream_learner_snapshots_refused_total", reason=reason))
        for reason in REFUSAL_REASONS
    }
    return {reason: n for reason, n in counts.items() if n}


def generation(version: str) -> int:
    """The number a learner's version ends with; -1 for any other.

    >>> generation("logistic-v12"), generation("logistic-v12-forged")
    (12, -1)
    """
    number = version.rpartition("v")[2]
    return int(number) if number.isdigit() else -1


async def _judge_snapshots(
    settings: Settings,
    key: bytes,
    worker: WorkerProcess,
    learner: LearnerProcess,
    applied: int,
) -> tuple[dict[str, bool], dict[str, Any]]:
    """What became of the snapshots (``applied``: the events the verifier found folded):
    the checks, and the figures behind them."""
    newest = await _caught_up(settings, key)
    valid, refused_on_topic = await read_snapshots(settings, key)
    produced = await examples_produced(settings)
    models = await _worker_serving(worker, newest.version if newest else "")
    serving = models.get("serving", {})
    generations = [generation(s.version) for s in valid]
    learner_refused = refusals(await learner.metrics())
    checks = {
        "learner_caught_up": newest is not None,
        "one_example_per_applied_event": produced == applied,
        "examples_learned_exactly_once": newest is not None and newest.examples_seen == produced,
        "versions_strictly_increase": generations == sorted(set(generations))
        and min(generations, default=0) > 0,
        "no_torn_snapshot_on_topic": dict(refused_on_topic) == INJECTED_REFUSALS,
        "worker_refused_exactly_the_forgeries": models.get("snapshots_refused")
        == INJECTED_REFUSALS,
        "worker_serves_the_newest_genuine_snapshot": newest is not None
        and (serving.get("version"), serving.get("created_at_ms"))
        == (newest.version, newest.created_at_ms),
        "resumed_learner_skipped_the_forgeries": learner_refused == INJECTED_REFUSALS,
    }
    details = {
        "examples_produced": produced,
        "examples_learned": newest.examples_seen if newest else None,
        "snapshots_published": len(valid),
        "serving": serving.get("version"),
        "worker_refused": models.get("snapshots_refused"),
        "learner_refused": learner_refused,
        "learner_starts": learner.starts,
    }
    return checks, details


__all__ = [
    "INJECTED_REFUSALS",
    "LearnerKill",
    "LearnerProcess",
    "examples_produced",
    "forgeries",
    "generation",
    "read_snapshots",
    "refusals",
    "snapshot_integrity",
]
