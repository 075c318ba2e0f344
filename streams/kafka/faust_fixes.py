"""Workarounds for faust-streaming behaviour, each named after the trap it avoids.

They patch Faust's aiokafka driver classes in place and are idempotent, so
:func:`streams.worker.app.create_app` can apply them every time it builds an app.
DESIGN.md (Known traps) explains why each one exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import recovery as faust_recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.kafka.contiguous import ContiguousCommits

log = logging.getLogger("tunestream.kafka")

_EPOCHS = "_tunestream_seek_epochs"
_COMMITS = "_tunestream_contiguous_commits"
_REFETCHES = "_tunestream_refetch_tasks"
_ARRIVED = "_tunestream_epochs_at_arrival"


def tune_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Make Faust's consumer fetch wait configurable.

    faust-streaming hard-codes ``fetch_max_wait_ms=1500`` in its aiokafka driver.
    Tansu answers a waiting fetch by polling, so end-to-end latency follows this
    wait. aiokafka reads the value when the consumer starts, so setting it on the
    freshly built consumer is enough.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tunestream_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    thread._tunestream_original_create = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def seek_epochs(consumer: Any) -> dict[Any, int]:
    """How many times each partition was sought since the consumer was built."""
    epochs: dict[Any, int] | None = getattr(consumer, _EPOCHS, None)
    if epochs is None:
        epochs = {}
        setattr(consumer, _EPOCHS, epochs)
    return epochs


def _bump(consumer: Any, tps: Iterable[Any]) -> None:
    epochs = seek_epochs(consumer)
    for tp in tps:
        epochs[tp] = epochs.get(tp, 0) + 1


def drop_records_fetched_before_a_seek(consumer_cls: Any = faust_aiokafka.Consumer) -> None:
    """Never hand over a record that arrived before its partition was sought.

    Faust hands a fetched batch over record by record, awaiting between them;
    a seek can happen meanwhile (recovery ends with one). The rest of that batch
    was still handed over after the seek, each record moving Faust's read offset
    forward, so the records the seek fetched again were dropped as already read:
    a run of messages was lost. Kafka's rule is that a seek discards what was
    fetched before it; this restores it for Faust's batches. Every seek bumps a
    per-partition epoch, the epochs are noted when a batch arrives, and the
    batch yields only records of partitions whose epoch has not moved since.
    Skipped records are fetched again from the sought position.

    The epochs are noted on arrival, not on request: a seek to the position a
    fetch already started from does not make aiokafka discard that fetch, so
    its records are the sought ones and must be kept.
    """
    if consumer_cls.__dict__.get("_tunestream_seek_guard", False):
        return
    getmany = consumer_cls.getmany
    wait_next_records = consumer_cls._wait_next_records
    perform_seek = consumer_cls.perform_seek
    seek = consumer_cls.seek
    seek_wait = consumer_cls.seek_wait

    async def noted_wait_next_records(self: Any, timeout: float) -> Any:
        batch = await wait_next_records(self, timeout)
        setattr(self, _ARRIVED, dict(seek_epochs(self)))
        return batch

    async def guarded_getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        epochs = seek_epochs(self)
        async for tp, message in getmany(self, timeout):
            if epochs.get(tp, 0) == getattr(self, _ARRIVED, {}).get(tp, 0):
                yield tp, message

    async def guarded_perform_seek(self: Any) -> None:
        _bump(self, self.assignment())
        await perform_seek(self)

    async def guarded_seek(self: Any, partition: Any, offset: int) -> None:
        _bump(self, [partition])
        await seek(self, partition, offset)

    async def guarded_seek_wait(self: Any, partitions: Mapping[Any, int]) -> None:
        _bump(self, partitions)
        await seek_wait(self, partitions)

    consumer_cls._wait_next_records = noted_wait_next_records
    consumer_cls.getmany = guarded_getmany
    consumer_cls.perform_seek = guarded_perform_seek
    consumer_cls.seek = guarded_seek
    consumer_cls.seek_wait = guarded_seek_wait
    consumer_cls._tunestream_seek_guard = True


def commit_only_contiguous_offsets(
    consumer_cls: Any = faust_aiokafka.Consumer, refetch_after_s: float = 5.0
) -> None:
    """Never commit a stream partition past a message its agent has not handled.

    Three changes to Faust's consumer (:mod:`streams.kafka.contiguous` has the rule
    and why Faust's own one lost events):

    * every seek to the committed offsets also seeks the partitions aiokafka
      leaves alone, those committed at 0 or never (to their first offset): a
      batch fetched before that seek is dropped (the seek guard) and must be
      fetched again from somewhere;
    * a jump in the offsets delivered on a stream partition is not recorded as a
      gap: it is a message not handled yet;
    * the offset to commit comes from :class:`ContiguousCommits`, which holds a
      partition whose start was not handled and, if it stays held, seeks it
      back to its start;
    * every seek of a stream partition is noted, so the agents' order check
      (:meth:`ContiguousCommits.arrived`) knows the offset that comes next;
    * Faust's own check, dropping a fetched record below the last offset it handed
      over, is off on stream partitions: that offset is written after a hand-over a
      seek can overtake, so the records a seek back fetched again were dropped
      (seen: a partition fetched again from 255 after 261 came first, and 262..269
      never handled). aiokafka returns records from its position on, in order; the
      order check does the rest.

    Only partitions of topics agents acknowledge (the streams) are changed; table
    changelogs are read by recovery and keep Faust's ways.
    """
    if consumer_cls.__dict__.get("_tunestream_contiguous", False):
        return
    init = consumer_cls.__init__
    seek_to_committed = consumer_cls.seek_to_committed
    seek = consumer_cls.seek
    seek_wait = consumer_cls.seek_wait
    new_offset = consumer_cls._new_offset
    add_gap = consumer_cls._add_gap

    async def seek_to_committed_or_start(self: Any) -> Mapping[Any, int]:
        committed = await seek_to_committed(self)
        streams = {tp: at for tp, at in committed.items() if _is_stream(self, tp)}
        never = [tp for tp, at in streams.items() if at is None]
        earliest = await self.earliest_offsets(*never) if never else {}
        commits = contiguous_commits(self, refetch_after_s)
        starts = {tp: earliest.get(tp, 0) if at is None else at for tp, at in streams.items()}
        # aiokafka's seek_to_committed skips 0 and never-committed: sought here
        unsought = {tp: start for tp, start in starts.items() if not streams[tp]}
        if unsought:
            await self.seek_wait(unsought)
        for tp, start in starts.items():
            commits.sought(tp, start)
        return committed

    async def no_gap_in_streams(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        if not _is_stream(self, tp):
            await add_gap(self, tp, offset_from, offset_to)

    def contiguous_new_offset(self: Any, tp: Any) -> int | None:
        if not _is_stream(self, tp):
            return new_offset(self, tp)  # type: ignore[no-any-return]
        acked = self._acked[tp]
        acked.sort()
        commits = contiguous_commits(self, refetch_after_s)
        decision = commits.decide(tp, acked, self._committed_offset[tp], time.monotonic())
        if decision.refetch_from is not None:
            log.warning(
                "offset %d of %s was not handled while later ones were: fetching it again",
                decision.refetch_from,
                tp,
            )
            _refetch(self, tp, decision.refetch_from)
        if decision.gap is not None:
            log.warning(
                "offsets %d..%d of %s never came after %d fetches: passed as a gap",
                decision.gap[0],
                decision.gap[1] - 1,
                tp,
                commits.max_refetches,
            )
        if decision.commit is None:
            return None
        done = [offset for offset in acked if offset < decision.commit]
        del acked[: len(done)]
        self._acked_index[tp].difference_update(done)
        return decision.commit

    async def noted_seek(self: Any, partition: Any, offset: int) -> None:
        await seek(self, partition, offset)
        noted(self, {partition: offset})

    async def noted_seek_wait(self: Any, partitions: Mapping[Any, int]) -> None:
        await seek_wait(self, partitions)
        noted(self, partitions)

    def noted(self: Any, partitions: Mapping[Any, int]) -> None:
        commits = contiguous_commits(self, refetch_after_s)
        for tp, offset in partitions.items():
            if _is_stream(self, tp):
                commits.sought(tp, offset, committed=False)

    def init_with_streams_unread(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._read_offset = _StreamsUnread(self)

    consumer_cls.__init__ = init_with_streams_unread
    consumer_cls.seek_to_committed = seek_to_committed_or_start
    consumer_cls.seek = noted_seek
    consumer_cls.seek_wait = noted_seek_wait
    consumer_cls._add_gap = no_gap_in_streams
    consumer_cls._new_offset = contiguous_new_offset
    consumer_cls._tunestream_contiguous = True


def contiguous_commits(consumer: Any, refetch_after_s: float = 5.0) -> ContiguousCommits:
    """The consumer's :class:`ContiguousCommits` (made on first use)."""
    commits: ContiguousCommits | None = getattr(consumer, _COMMITS, None)
    if commits is None:
        commits = ContiguousCommits(refetch_after_s)
        setattr(consumer, _COMMITS, commits)
    return commits


class _StreamsUnread(defaultdict[Any, "int | None"]):
    """Faust's last-handed-over offsets, read as unknown on stream partitions."""

    def __init__(self, consumer: Any) -> None:
        super().__init__(lambda: None)
        self.consumer = consumer

    def __getitem__(self, tp: Any) -> int | None:
        return None if _is_stream(self.consumer, tp) else super().__getitem__(tp)


def _next_offsets(consumer: Any) -> dict[Any, int] | None:
    """Each assigned stream partition's next offset for its agent, if all are known."""
    commits: ContiguousCommits | None = getattr(consumer, _COMMITS, None)
    if commits is None:
        return None
    nexts = {}
    for tp in consumer.assignment():
        if _is_stream(consumer, tp):
            offset = commits.next_offset(tp)
            if offset is None:
                return None
            nexts[tp] = offset
    return nexts


def _is_stream(consumer: Any, tp: Any) -> bool:
    return bool(consumer.app.topics.acks_enabled_for(tp.topic))


async def seek_stream(consumer: Any, positions: Mapping[Any, int]) -> None:
    """Seek partitions from the app's side: in the consumer's own thread.

    Faust's ``Consumer.seek`` changes aiokafka's fetcher from the calling thread while
    the consumer thread may be reading it (seen: ``KeyError`` in aiokafka's
    ``fetched_records``, and the worker's fetcher crashed); ``seek_wait`` hands the
    seek to the consumer thread.
    """
    await consumer.seek_wait(positions)


def _refetch(consumer: Any, tp: Any, offset: int) -> None:
    """Seek ``tp`` to ``offset`` soon (the commit path that asks is not async)."""
    tasks: set[asyncio.Task[None]] | None = getattr(consumer, _REFETCHES, None)
    if tasks is None:
        tasks = set()
        setattr(consumer, _REFETCHES, tasks)
    task = asyncio.ensure_future(seek_stream(consumer, {tp: offset}))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def hand_over_without_tasks(consumer_cls: Any = faust_aiokafka.Consumer) -> None:
    """Hand a fetched record to the agents without four tasks per record.

    Faust's fetcher passes each record on with ``wait_first(callback(message),
    suspend_flow.wait())``: four tasks (the callback, the flow, stopped and crashed
    events) and an ``asyncio.wait``, so that a callback blocked on a full agent
    queue can be abandoned when a rebalance suspends the flow. Most callbacks
    finish at once, and that machinery was a tenth of the worker's CPU. While the
    flow runs and the consumer is not stopping, the callback is awaited directly;
    otherwise Faust's own ``wait_first`` decides. A callback that blocks still
    ends when the agent takes from its queue (a rebalance's stale messages are
    skipped by the stream), or when the fetcher is cancelled at shutdown.
    """
    if consumer_cls.__dict__.get("_tunestream_direct_hand_over", False):
        return
    wait_first = consumer_cls.wait_first

    async def hand_over(self: Any, *coros: Any, timeout: Any = None) -> Any:
        first = coros[0] if coros else None
        if (
            len(coros) == 2
            and timeout is None
            and asyncio.iscoroutine(first)
            and asyncio.iscoroutine(coros[1])
            and not self.suspend_flow.is_set()
            and not self.should_stop
        ):
            coros[1].close()  # the flow's wait, never started
            await first
            return None  # the fetcher, the only caller with these arguments, ignores it
        return await wait_first(self, *coros, timeout=timeout)

    consumer_cls.wait_first = hand_over
    consumer_cls._tunestream_direct_hand_over = True


def seek_again_after_recovery(recovery_cls: Any = faust_recovery.Recovery) -> None:
    """Seek the stream partitions once more when table recovery has finished.

    Faust ends recovery by seeking the stream partitions to their committed
    offsets and *then* resuming flow control, which clears the agents' queues.
    Records fetched in between (the fetcher runs while the seek is awaited)
    are cleared from the queue although Faust counts them as read, so a killed
    worker's successor skipped a run of messages (seen as partition 3 offset 16
    processed, then 44). Seeking again after the clear re-fetches them. Where
    :func:`commit_only_contiguous_offsets` knows the offset each stream partition's
    agent handles next, that is where it seeks, so nothing an agent already
    handled comes again; otherwise it seeks to the committed offsets (a replay,
    which dedupe recognises by its offset). Costs one seek per rebalance.
    """
    if recovery_cls.__dict__.get("_tunestream_seek_again", False):
        return
    on_recovery_completed = recovery_cls.on_recovery_completed

    async def completed_then_seek(self: Any, generation_id: int = 0) -> None:
        await on_recovery_completed(self, generation_id)
        consumer = self.app.consumer
        if self.app.consumer_generation_id != generation_id or not consumer.assignment():
            return
        nexts = _next_offsets(consumer)
        if nexts is None:
            await consumer.perform_seek()
            return
        await seek_stream(consumer, nexts)

    recovery_cls.on_recovery_completed = completed_then_seek
    recovery_cls._tunestream_seek_again = True


def probe_end_offsets_by_fetching(consumer_options: Mapping[str, Any]) -> None:
    """Check the end offsets table recovery stops at by fetching the last batch.

    Faust restores a table by reading its changelog up to the end offsets that
    ListOffsets reports. Tansu reports the last record batch's *base* offset + 1,
    so recovery stopped one batch short: a worker killed right after a few
    table writes came back without them (seen: a track's statistics missing the
    last two events applied before a SIGKILL, whose input offsets had been
    committed). A fetch from the reported end - 1 returns that last batch, and
    its response carries the true high water mark; the larger of the two is
    used. On Apache Kafka both agree, and the probe costs one fetch per recovery.
    """
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tunestream_original_highwaters", thread._highwaters)

    async def highwaters(self: Any, partitions: Any) -> Mapping[Any, int]:
        reported = dict(await original(self, partitions))
        return await fetched_end_offsets(consumer_options, reported)

    thread._tunestream_original_highwaters = original  # type: ignore[attr-defined]
    thread._highwaters = highwaters  # type: ignore[method-assign]


async def fetched_end_offsets(
    consumer_options: Mapping[str, Any], reported: dict[Any, int], timeout_s: float = 5.0
) -> dict[Any, int]:
    """``reported`` end offsets, raised to the high water marks a fetch returns."""
    probe = {tp: offset for tp, offset in reported.items() if offset > 0}
    if not probe:
        return reported
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **consumer_options)
    await consumer.start()
    try:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in probe}
        consumer.assign(list(tps))
        for kafka_tp, tp in tps.items():
            consumer.seek(kafka_tp, probe[tp] - 1)
        deadline = asyncio.get_running_loop().time() + timeout_s
        pending = set(tps)
        while pending and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(timeout_ms=200)
            pending = {tp for tp in pending if consumer.highwater(tp) is None}
        corrected = dict(reported)
        for kafka_tp, tp in tps.items():
            corrected[tp] = max(reported[tp], consumer.highwater(kafka_tp) or 0)
        return corrected
    finally:
        await consumer.stop()


def stop_when_the_broker_lost_our_data(stop: Any) -> None:
    """Turn Faust's ``ConsistencyError`` in table recovery into one line and an exit.

    The error means a changelog now ends before offsets this worker had
    already applied: the broker lost data (an embedded broker restarted empty,
    a cluster rebuilt without its volumes). Faust would log a traceback and
    leave a crashed worker behind; ``stop(reason)`` ends the process instead.
    """
    from faust.exceptions import ConsistencyError

    recovery_cls = faust_recovery.Recovery
    original = getattr(recovery_cls, "_tunestream_original_crash", recovery_cls.crash)

    async def crash(self: Any, reason: BaseException) -> None:
        if isinstance(reason, ConsistencyError):
            stop(
                "the broker no longer holds data this worker had applied "
                f"({str(reason).splitlines()[0][:300]}); an embedded broker keeps nothing "
                "across a restart: start the worker again with a fresh state directory"
            )
        await original(self, reason)

    recovery_cls._tunestream_original_crash = original  # type: ignore[attr-defined]
    recovery_cls.crash = crash  # type: ignore[method-assign]
