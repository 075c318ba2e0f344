"""Which offset of a partition may be committed: never one past a message not yet handled.

Kafka's commit says "everything before this offset is done". Faust picks that
offset from the offsets its agents acknowledged, and two of its habits could
put it past a message no agent ever saw (both seen losing events in the fault
suite, after a kill -9 and a rebalance):

* it takes a jump in delivered offsets for a *gap* (what compaction or
  transaction markers leave) and counts the missing offsets as done;
* it checks where the acknowledged run starts only against a committed offset
  it knows, and it forgets an offset of 0 (a partition never committed, or
  rewound to its start), so a run starting anywhere was taken.

:class:`ContiguousCommits` is the rule instead: per partition, where the run
must start (the committed offset, else where the partition was sought to), and
a commit only of the run that starts there. When later offsets are acknowledged
but the start is not, the partition is *held*: nothing is committed for it, and
after ``refetch_after_s`` it asks to be fetched again from its start (a message
skipped on delivery comes back). Offsets that never come, after ``max_refetches``
fetches from the same start, are taken for a real gap (a transactional
producer's markers) and passed, with a warning: the one case where an offset is
committed unseen, and only once the broker has shown three times that nothing
is there.

The same rule keeps delivery in order: :meth:`ContiguousCommits.arrived` tells
an agent to skip a message that comes before the ones ahead of it in its
partition (a skipped message would otherwise be handled late, out of order
with its user's later events), and to have the partition fetched again from the
first one missing.

Memory bound: per assigned partition, one start, one next offset and one hold.

>>> commits = ContiguousCommits(refetch_after_s=5.0)
>>> commits.sought("p0", 10)
>>> commits.decide("p0", [12, 13], committed=None, now_s=0.0)  # 10 and 11 not handled
Decision(commit=None, refetch_from=None, gap=None)
>>> commits.decide("p0", [12, 13], committed=None, now_s=6.0)  # held too long: fetch again
Decision(commit=None, refetch_from=10, gap=None)
>>> commits.decide("p0", [10, 11, 12, 13], committed=None, now_s=7.0)
Decision(commit=14, refetch_from=None, gap=None)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final

#: Fetches from one held start before its missing offsets are taken for a gap.
MAX_REFETCHES: Final = 3


@dataclass(frozen=True)
class Decision:
    """What to do for one partition at a commit."""

    #: the offset to commit (the next one to read), or None: nothing new is done
    commit: int | None
    #: fetch the partition again from here (a held start waited too long)
    refetch_from: int | None = None
    #: ``(first, end)``: offsets never delivered, passed as a gap (end excluded)
    gap: tuple[int, int] | None = None


@dataclass(frozen=True)
class Arrival:
    """What an agent does with a message: handle it, or skip it (and maybe fetch again)."""

    handle: bool
    #: seek the partition back here first (only asked once per ``refetch_after_s``)
    refetch_from: int | None = None
    #: ``(first, end)``: offsets never delivered, passed as a gap (end excluded)
    gap: tuple[int, int] | None = None


HANDLE: Final = Arrival(True)
SKIP: Final = Arrival(False)


@dataclass
class _Hold:
    start: int
    since_s: float
    refetches: int = 0
    asked_s: float = 0.0


class ContiguousCommits:
    """The start each partition's acknowledged run must begin at, and its holds."""

    def __init__(
        self, refetch_after_s: float = 5.0, max_refetches: int = MAX_REFETCHES
    ) -> None:
        self.refetch_after_s = refetch_after_s
        self.max_refetches = max_refetches
        self._starts: dict[Hashable, int] = {}
        self._holds: dict[Hashable, _Hold] = {}
        self._next: dict[Hashable, int] = {}
        self._waits: dict[Hashable, _Hold] = {}
        #: offsets an agent passed as a gap, so commits pass them too
        self._passed: dict[Hashable, tuple[int, int]] = {}

    def sought(self, tp: Hashable, offset: int, committed: bool = True) -> None:
        """The partition is read from ``offset`` next: a seek to its committed offset or
        its start (``committed``), or a seek back to fetch a skipped message again."""
        if committed:
            self._starts[tp] = offset
        self._next[tp] = offset

    def next_offset(self, tp: Hashable) -> int | None:
        """The offset of ``tp`` agents handle next (None before its first seek)."""
        return self._next.get(tp)

    def arrived(self, tp: Hashable, offset: int, now_s: float) -> Arrival:
        """Whether an agent handles the message at ``offset`` now.

        >>> order = ContiguousCommits(refetch_after_s=1.0)
        >>> order.sought("p0", 5)
        >>> order.arrived("p0", 5, 0.0).handle, order.arrived("p0", 7, 0.0)
        (True, Arrival(handle=False, refetch_from=6, gap=None))
        >>> order.arrived("p0", 8, 0.5), order.arrived("p0", 5, 0.5).handle  # 5 again: a replay
        (Arrival(handle=False, refetch_from=None, gap=None), True)
        """
        expected = self._next.get(tp)
        if expected is None or offset <= expected:
            self._waits.pop(tp, None)
            self._next[tp] = max(offset + 1, expected or 0)
            return HANDLE
        wait = self._waits.get(tp)
        if wait is None or wait.start != expected:
            self._waits[tp] = _Hold(expected, since_s=now_s, refetches=1, asked_s=now_s)
            return Arrival(False, refetch_from=expected)
        if now_s - wait.asked_s < self.refetch_after_s:
            return SKIP
        if wait.refetches >= self.max_refetches:
            del self._waits[tp]
            self._next[tp] = offset + 1
            self._passed[tp] = (expected, offset)
            return Arrival(True, gap=(expected, offset))
        wait.refetches += 1
        wait.asked_s = now_s
        return Arrival(False, refetch_from=expected)

    def start_of(self, tp: Hashable, committed: int | None) -> int | None:
        """Where ``tp``'s next committable run starts: the committed offset if one is
        known (0 and never-committed read as None), else where it was sought to; past
        a gap the agent passed."""
        start = committed if committed else self._starts.get(tp)
        passed = self._passed.get(tp)
        if start is not None and passed is not None and passed[0] <= start < passed[1]:
            return passed[1]
        return start

    def decide(
        self, tp: Hashable, acked: Sequence[int], committed: int | None, now_s: float
    ) -> Decision:
        """What may be committed for ``tp`` given its acknowledged offsets (sorted)."""
        if not acked:
            return Decision(None)
        start = self.start_of(tp, committed)
        first = acked[0]
        if start is None or first <= start:
            self._holds.pop(tp, None)
            return Decision(_run_end(acked))
        return self._held(tp, start, first, acked, now_s)

    def _held(
        self, tp: Hashable, start: int, first: int, acked: Sequence[int], now_s: float
    ) -> Decision:
        hold = self._holds.get(tp)
        if hold is None or hold.start != start:
            hold = self._holds[tp] = _Hold(start, since_s=now_s, asked_s=now_s)
        if now_s - hold.asked_s < self.refetch_after_s:
            return Decision(None)
        if hold.refetches >= self.max_refetches:
            del self._holds[tp]
            self._starts[tp] = first
            return Decision(_run_end(acked), gap=(start, first))
        hold.refetches += 1
        hold.asked_s = now_s
        return Decision(None, refetch_from=start)

    def held(self) -> dict[Hashable, int]:
        """The partitions held now, with the start each waits for."""
        return {tp: hold.start for tp, hold in self._holds.items()}


def _run_end(acked: Sequence[int]) -> int:
    """The offset after the consecutive run ``acked`` (sorted, distinct) starts with.

    >>> _run_end([4, 5, 6, 9]), _run_end([7])
    (7, 8)
    """
    end = acked[0] + 1
    for offset in acked[1:]:
        if offset != end:
            break
        end += 1
    return end
