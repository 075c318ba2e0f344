"""Liveness and readiness as pure decisions over what a worker reports about itself.

A worker is *live* while it makes progress or has nothing to do. A process that
still answers HTTP but whose agent hangs on one message, or sits idle while
input waits, is not live: restarting it is the cure (``/livez`` -> 503).
A worker is *ready* once it has partitions and its tables are restored
(``/readyz``); before that its answers would come from half-restored state.

The clock is passed in (monotonic seconds), so tests move time by hand.

>>> progress = Progress(stall_after_s=30.0, now_s=0.0)
>>> progress.started(now_s=10.0)           # the agent picks up a message ...
>>> progress.liveness(now_s=20.0, waiting_messages=0).ok
True
>>> verdict = progress.liveness(now_s=45.0, waiting_messages=0)  # ... and hangs on it
>>> verdict.ok, verdict.reason
(False, 'one message has been in processing for 35 s (limit 30 s)')
>>> progress.finished(now_s=46.0)
>>> progress.liveness(now_s=47.0, waiting_messages=500).ok
True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    """A health answer: the flag, and a sentence for whoever reads the probe body."""

    ok: bool
    reason: str


class Progress:
    """When the agent last started and finished a message; the liveness rule over them."""

    def __init__(self, stall_after_s: float, now_s: float) -> None:
        if stall_after_s <= 0:
            raise ValueError(f"stall_after_s must be > 0, got {stall_after_s!r}")
        self.stall_after_s = stall_after_s
        self.last_progress_s = now_s  # a fresh worker counts as having just progressed
        self.busy_since_s: float | None = None

    def started(self, now_s: float) -> None:
        self.busy_since_s = now_s

    def finished(self, now_s: float) -> None:
        self.busy_since_s = None
        self.last_progress_s = now_s

    def idle(self, now_s: float) -> None:
        """Progress of a kind that handles no message: a rebalance, a recovery step."""
        self.last_progress_s = now_s

    def liveness(self, now_s: float, waiting_messages: int) -> Verdict:
        limit = self.stall_after_s
        if self.busy_since_s is not None and now_s - self.busy_since_s > limit:
            busy = now_s - self.busy_since_s
            return Verdict(
                False, f"one message has been in processing for {busy:.0f} s (limit {limit:.0f} s)"
            )
        idle = now_s - self.last_progress_s
        if waiting_messages > 0 and self.busy_since_s is None and idle > limit:
            return Verdict(
                False,
                f"{waiting_messages} messages waiting and none processed for {idle:.0f} s "
                f"(limit {limit:.0f} s)",
            )
        return Verdict(True, "making progress" if waiting_messages else "caught up")


def readiness(joined: bool, recovered: bool, rebalancing: bool, partitions: int) -> Verdict:
    """Ready to serve: the group assigned this worker its partitions and tables are restored.

    A worker assigned no partitions (more workers than partitions) is ready: it is
    a healthy standby member, and failing it would stall a rolling deploy.

    >>> readiness(joined=True, recovered=False, rebalancing=False, partitions=4)
    Verdict(ok=False, reason='restoring tables from changelogs')
    """
    if not joined:
        return Verdict(False, "waiting for the consumer group to assign partitions")
    if not recovered:  # checked first: Faust counts the whole recovery as rebalancing
        return Verdict(False, "restoring tables from changelogs")
    if rebalancing:
        return Verdict(False, "consumer group rebalancing")
    return Verdict(True, f"{partitions} partitions assigned, tables restored")
