"""A whole pipeline on this machine for a tool's run: the broker, a learner and a worker.

``tunestream demo``, ``replay`` and ``simulate --closed-loop --live`` need the
same thing when no broker is given: an embedded Tansu broker on a free loopback
port, the topics, and a learner and a worker as child processes
(:class:`~streams.tools.processes.Child`) sharing a temporary data folder,
free web ports and one snapshot signing key. :func:`local_pipeline` starts them
in that order and stops them in reverse on the way out, whatever happens.

The children get every setting as its ``TUNESTREAM_*`` variable
(:func:`role_environment`), so a flag given to the tool (a refresh interval,
the partitions) reaches them as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.topics import ensure_topics
from streams.settings import Settings, env_name
from streams.tools.processes import Child, http_get

#: How long a worker may take to answer ``/readyz`` 200 (it waits for the catalog,
#: a model snapshot and the editorial sets; some 6 s here).
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LocalPipeline:
    """The running pipeline: the settings that reach it, and its two children."""

    #: the broker's address, the worker's web port, the data folder, the signing key
    settings: Settings
    learner: Child
    worker: Child


def role_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (this process's environment by default) with every setting as its
    ``TUNESTREAM_*`` variable.

    >>> env = role_environment(Settings(partitions=2), base={})
    >>> env["TUNESTREAM_PARTITIONS"], env["TUNESTREAM_BROKER"]
    ('2', 'embedded')
    """
    env = dict(os.environ if base is None else base)
    env.update({env_name(name): str(value) for name, value in vars(settings).items()})
    return env


def start_role(
    role: str, settings: Settings, workdir: Path, error: type[Exception] = RuntimeError
) -> Child:
    """``tunestream ROLE`` as a child process, logging to ``workdir/ROLE.log``;
    ``error`` is what :meth:`Child.check_alive` raises if it dies."""
    argv = [sys.executable, "-m", "streams", role]
    log = workdir / f"{role}.log"
    return Child(role, argv, role_environment(settings), log, error=error).start()


def wait_ready(
    worker: Child,
    port: int,
    timeout_s: float = READY_TIMEOUT_S,
    on_wait: Callable[[float], None] | None = None,
) -> None:
    """Until the worker's ``/readyz`` answers 200; the worker's ``error`` if it dies
    or takes longer than ``timeout_s``. ``on_wait`` is told the seconds since it
    started, at each try."""
    deadline = time.monotonic() + timeout_s
    while http_get(port, "/readyz", timeout_s=2.0)[0] != 200:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise worker.error(
                f"the worker was not ready within {timeout_s:g} s; its log: {worker.log_tail()}"
            )
        if on_wait is not None:
            on_wait(time.monotonic() - worker.started_at)
        time.sleep(0.2)


@contextlib.contextmanager
def local_pipeline(
    settings: Settings,
    *,
    error: type[Exception] = RuntimeError,
    before_start: Callable[[Settings], None] | None = None,
    ready: bool = True,
    on_wait: Callable[[float], None] | None = None,
    on_new_key: Callable[[], None] | None = None,
) -> Iterator[LocalPipeline]:
    """A learner and a worker on ``settings``' broker (an embedded one started here
    when ``settings.embedded``), the topics created first and ``before_start`` called
    before the children start (to publish a catalog the worker waits for). With
    ``ready`` it returns once the worker is ready (:func:`wait_ready`). Without a
    snapshot key or key file in ``settings`` it makes one for this run and calls
    ``on_new_key``. Everything it started is stopped on the way out, children first."""
    with contextlib.ExitStack() as stack:
        if settings.embedded:
            broker = stack.enter_context(EmbeddedBroker())
            settings = settings.replace(broker=broker.bootstrap_servers)
        asyncio.run(ensure_topics(settings))
        if before_start is not None:
            before_start(settings)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tunestream-")))
        settings = settings.replace(
            data_dir=str(workdir / "data"),
            web_port=free_port(),
            learner_web_port=free_port(),
            snapshot_key=local_snapshot_key(settings, on_new_key),
        )
        learner = start_role("learner", settings, workdir, error)
        stack.callback(learner.stop)
        worker = start_role("worker", settings, workdir, error)
        stack.callback(worker.stop)
        if ready:
            wait_ready(worker, settings.web_port, on_wait=on_wait)
        yield LocalPipeline(settings, learner, worker)


def local_snapshot_key(settings: Settings, on_new_key: Callable[[], None] | None = None) -> str:
    """The configured snapshot key; without one (and without a key file) a new key for
    this run, after calling ``on_new_key``.

    >>> local_snapshot_key(Settings(snapshot_key="ab" * 32)) == "ab" * 32
    True
    """
    if settings.snapshot_key or settings.snapshot_key_file:
        return settings.snapshot_key
    if on_new_key is not None:
        on_new_key()
    return secrets.token_hex(32)


__all__ = [
    "READY_TIMEOUT_S",
    "LocalPipeline",
    "local_pipeline",
    "local_snapshot_key",
    "role_environment",
    "start_role",
    "wait_ready",
]
