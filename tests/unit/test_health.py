"""Liveness and readiness rules, on a clock moved by hand.

Liveness timeline (stall_after_s = 10)::

    t=0 start ── t=5 message in ── t=14 still in (live) ── t=16 still in (not live)
"""

from __future__ import annotations

import pytest

from streams.ops.health import Progress, readiness


def test_a_message_in_processing_longer_than_the_limit_makes_the_worker_not_live() -> None:
    progress = Progress(stall_after_s=10.0, now_s=0.0)
    progress.started(now_s=5.0)
    assert progress.liveness(now_s=14.0, waiting_messages=0).ok
    verdict = progress.liveness(now_s=16.0, waiting_messages=0)
    assert not verdict.ok and "in processing for 11 s" in verdict.reason


def test_an_idle_worker_with_nothing_waiting_stays_live() -> None:
    progress = Progress(stall_after_s=10.0, now_s=0.0)
    assert progress.liveness(now_s=3600.0, waiting_messages=0).ok


def test_waiting_input_with_no_progress_makes_the_worker_not_live() -> None:
    progress = Progress(stall_after_s=10.0, now_s=0.0)
    progress.started(now_s=1.0)
    progress.finished(now_s=2.0)
    assert progress.liveness(now_s=11.0, waiting_messages=40).ok
    verdict = progress.liveness(now_s=13.0, waiting_messages=40)
    assert not verdict.ok and "40 messages waiting" in verdict.reason


def test_progress_of_another_kind_resets_the_idle_clock() -> None:
    progress = Progress(stall_after_s=10.0, now_s=0.0)
    progress.idle(now_s=20.0)  # e.g. a rebalance just finished
    assert progress.liveness(now_s=25.0, waiting_messages=40).ok


def test_stall_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stall_after_s"):
        Progress(stall_after_s=0.0, now_s=0.0)


@pytest.mark.parametrize(
    ("joined", "recovered", "rebalancing", "ready", "reason"),
    [
        (False, False, False, False, "waiting for the consumer group"),
        (True, False, True, False, "restoring tables"),
        (True, True, True, False, "rebalancing"),
        (True, True, False, True, "tables restored"),
    ],
)
def test_readiness_names_what_it_waits_for(
    joined: bool, recovered: bool, rebalancing: bool, ready: bool, reason: str
) -> None:
    verdict = readiness(joined=joined, recovered=recovered, rebalancing=rebalancing, partitions=2)
    assert verdict.ok is ready and reason in verdict.reason


def test_a_worker_without_partitions_is_ready_as_a_standby() -> None:
    assert readiness(joined=True, recovered=True, rebalancing=False, partitions=0).ok
