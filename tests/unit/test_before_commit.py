"""The step run before each commit, and the Faust behaviour it relies on.

By-track records held back for batching are safe only if they reach the
producer before the offsets of their source messages are committed. Faust
gives that order today; these tests fail if an upgrade changes it.
"""

from __future__ import annotations

import inspect

import faust
from faust.transport.consumer import Consumer

from streams.kafka.before_commit import BeforeCommit


def test_the_step_runs_when_a_commit_starts() -> None:
    calls: list[int] = []
    sensor = BeforeCommit(lambda: calls.append(1))
    assert isinstance(sensor, faust.Sensor)
    sensor.on_commit_initiated(consumer=None)
    assert calls == [1]


def test_faust_tells_sensors_before_it_picks_the_offsets_to_commit() -> None:
    source = inspect.getsource(Consumer.force_commit)
    assert source.index("on_commit_initiated") < source.index("_commit_tps")


def test_faust_flushes_the_producer_before_it_commits_offsets() -> None:
    source = inspect.getsource(Consumer._commit_offsets)
    assert source.index("producer.flush()") < source.index("self._commit(")
