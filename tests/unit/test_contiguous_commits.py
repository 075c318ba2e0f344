"""Commits never pass a message no agent handled (:mod:`streams.kafka.contiguous` and its
Faust patch, :func:`streams.kafka.faust_fixes.commit_only_contiguous_offsets`).

The losses these guard against, one partition each::

    committed 10 ── delivered 11 12 13 ──► Faust committed 14: offset 10 never handled
    committed 0  ── delivered  2  3  4 ──► Faust committed  5: offsets 0, 1 never handled
    read 5 ── delivered 9 ──► Faust recorded 6..8 as a gap and committed past them
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.contiguous import HANDLE, MAX_REFETCHES, SKIP, ContiguousCommits, Decision
from streams.kafka.faust_fixes import commit_only_contiguous_offsets, contiguous_commits


def test_a_run_starting_at_the_committed_offset_is_committed() -> None:
    commits = ContiguousCommits()
    assert commits.decide("p0", [10, 11, 12, 15], committed=10, now_s=0.0) == Decision(13)


def test_a_run_after_an_unhandled_committed_offset_is_held() -> None:
    commits = ContiguousCommits()
    assert commits.decide("p0", [11, 12], committed=10, now_s=0.0) == Decision(None)
    assert commits.held() == {"p0": 10}


def test_a_partition_never_committed_holds_a_run_that_skips_its_first_offsets() -> None:
    commits = ContiguousCommits()
    commits.sought("p0", 0)
    assert commits.decide("p0", [2, 3, 4], committed=None, now_s=0.0) == Decision(None)
    assert commits.decide("p0", [0, 1, 2, 3, 4], committed=None, now_s=1.0) == Decision(5)
    assert commits.held() == {}


def test_a_held_partition_asks_to_be_fetched_again_from_its_start_after_the_wait() -> None:
    commits = ContiguousCommits(refetch_after_s=5.0)
    assert commits.decide("p0", [12], committed=10, now_s=0.0).refetch_from is None
    assert commits.decide("p0", [12], committed=10, now_s=4.9).refetch_from is None
    assert commits.decide("p0", [12], committed=10, now_s=5.0).refetch_from == 10
    assert commits.decide("p0", [12], committed=10, now_s=6.0).refetch_from is None  # waits again


def test_offsets_that_never_come_after_the_last_fetch_pass_as_a_gap() -> None:
    commits = ContiguousCommits(refetch_after_s=1.0)
    decisions = [
        commits.decide("p0", [12, 13], committed=10, now_s=float(t))
        for t in range(MAX_REFETCHES + 2)
    ]
    assert [d.refetch_from for d in decisions[1 : MAX_REFETCHES + 1]] == [10] * MAX_REFETCHES
    assert decisions[-1] == Decision(14, gap=(10, 12))
    assert commits.held() == {}


def test_no_known_start_commits_as_faust_would() -> None:
    assert ContiguousCommits().decide("p0", [3, 4], committed=None, now_s=0.0) == Decision(5)


@given(
    start=st.integers(0, 50),
    acked=st.sets(st.integers(0, 80), min_size=1),
)
def test_a_commit_never_passes_an_offset_that_was_not_acknowledged(
    start: int, acked: set[int]
) -> None:
    commits = ContiguousCommits()
    commits.sought("p0", start)
    decision = commits.decide("p0", sorted(acked), committed=None, now_s=0.0)
    if decision.commit is not None:
        assert set(range(min(min(acked), start), decision.commit)) <= acked | set(range(start))


def test_messages_in_order_and_replays_are_handled() -> None:
    order = ContiguousCommits()
    order.sought("p0", 10)
    assert [order.arrived("p0", o, 0.0) for o in (10, 11, 12)] == [HANDLE] * 3
    order.sought("p0", 11, committed=False)  # fetched again from 11: replays
    assert [order.arrived("p0", o, 0.0) for o in (11, 12, 13)] == [HANDLE] * 3


def test_a_message_ahead_of_a_missing_one_is_skipped_and_its_partition_fetched_again() -> None:
    order = ContiguousCommits(refetch_after_s=1.0)
    order.sought("p0", 10)
    first = order.arrived("p0", 12, 0.0)
    assert (first.handle, first.refetch_from) == (False, 10)
    order.sought("p0", 10, committed=False)
    assert order.arrived("p0", 13, 0.1) == SKIP  # queued before the seek: no second seek
    assert [order.arrived("p0", o, 0.2) for o in (10, 11, 12, 13)] == [HANDLE] * 4


def test_offsets_that_never_come_are_passed_as_a_gap_by_agents_and_commits() -> None:
    order = ContiguousCommits(refetch_after_s=1.0)
    order.sought("p0", 10)
    arrivals = [order.arrived("p0", 12, float(t)) for t in range(MAX_REFETCHES + 1)]
    assert [a.refetch_from for a in arrivals[:-1]] == [10] * MAX_REFETCHES
    assert arrivals[-1].handle and arrivals[-1].gap == (10, 12)
    assert order.decide("p0", [12], committed=10, now_s=9.0) == Decision(13)


# --- the Faust patch, on a consumer that records what Faust's would do -------------------------


class TP(NamedTuple):
    topic: str
    partition: int


EVENTS0, EVENTS1, CHANGELOG0 = TP("events", 0), TP("events", 1), TP("users-changelog", 0)


class FakeConsumer:
    """Faust's consumer as far as the patch touches it."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.sought: list[tuple[TP, int]] = []
        self.gaps: list[tuple[TP, int, int]] = []
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        topics = type("Topics", (), {"acks_enabled_for": staticmethod(lambda t: t == "events")})
        self.app = type("App", (), {"topics": topics()})()

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self.committed)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: 3 for tp in tps}  # retention removed offsets 0..2

    async def _seek(self, tp: TP, offset: int) -> None:
        self.sought.append((tp, offset))

    async def seek(self, tp: TP, offset: int) -> None:
        await self._seek(tp, offset)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        for tp, offset in partitions.items():
            await self._seek(tp, offset)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))

    def _new_offset(self, tp: TP) -> int | None:
        return -1  # Faust's own answer: only changelogs may still get it

    def ack(self, tp: TP, *offsets: int) -> None:
        self._acked[tp].extend(offsets)
        self._acked_index[tp].update(offsets)


def patched(committed: dict[TP, int | None]) -> Any:
    class Patched(FakeConsumer):
        pass

    commit_only_contiguous_offsets(Patched)
    return Patched(committed)


def test_partitions_committed_at_zero_or_never_are_sought_to_their_first_offset() -> None:
    consumer = patched({EVENTS0: 0, EVENTS1: None, CHANGELOG0: None})
    asyncio.run(consumer.seek_to_committed())
    assert consumer.sought == [(EVENTS0, 0), (EVENTS1, 3)]  # the changelog is recovery's
    assert contiguous_commits(consumer).start_of(EVENTS1, None) == 3


def test_partitions_with_a_committed_offset_are_left_to_aiokafka_s_seek() -> None:
    consumer = patched({EVENTS0: 42})
    asyncio.run(consumer.seek_to_committed())
    assert consumer.sought == []
    assert contiguous_commits(consumer).start_of(EVENTS0, None) == 42


def test_the_patched_consumer_holds_a_partition_whose_first_offsets_were_skipped() -> None:
    consumer = patched({EVENTS0: 0})
    asyncio.run(consumer.seek_to_committed())
    consumer.ack(EVENTS0, 3, 2, 4)
    assert consumer._new_offset(EVENTS0) is None
    assert consumer._acked[EVENTS0] == [2, 3, 4]  # kept for when 0 and 1 come
    consumer.ack(EVENTS0, 1, 0)
    assert consumer._new_offset(EVENTS0) == 5
    assert (consumer._acked[EVENTS0], consumer._acked_index[EVENTS0]) == ([], set())


def test_a_jump_in_a_stream_is_no_gap_but_changelog_gaps_stay_faust_s() -> None:
    consumer = patched({})
    asyncio.run(consumer._add_gap(EVENTS0, 6, 9))
    asyncio.run(consumer._add_gap(CHANGELOG0, 6, 9))
    assert consumer.gaps == [(CHANGELOG0, 6, 9)]
    assert consumer._new_offset(CHANGELOG0) == -1


def test_a_held_partition_is_sought_back_to_its_start() -> None:
    async def scenario() -> list[tuple[TP, int]]:
        consumer = patched({EVENTS0: 10})
        await consumer.seek_to_committed()
        consumer._committed_offset[EVENTS0] = 10
        contiguous_commits(consumer).refetch_after_s = 0.0
        consumer.ack(EVENTS0, 11, 12)
        assert consumer._new_offset(EVENTS0) is None
        await asyncio.sleep(0)  # the seek runs as a task
        return consumer.sought

    assert asyncio.run(scenario()) == [(EVENTS0, 10)]


def test_the_patch_is_applied_once() -> None:
    class Patched(FakeConsumer):
        pass

    commit_only_contiguous_offsets(Patched)
    new_offset = Patched._new_offset
    commit_only_contiguous_offsets(Patched)
    assert Patched._new_offset is new_offset


def test_a_seek_of_a_stream_partition_moves_the_offset_its_agent_handles_next() -> None:
    consumer = patched({})
    asyncio.run(consumer.seek_wait({EVENTS0: 17, CHANGELOG0: 3}))
    commits = contiguous_commits(consumer)
    assert (commits.next_offset(EVENTS0), commits.next_offset(CHANGELOG0)) == (17, None)
