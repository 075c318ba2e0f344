"""Whether the brokers answer, and whether they still hold what this worker has seen.

While no broker answers, a worker can neither fetch nor publish: it is not
ready (``/readyz`` 503), though it is live (restarting it would not help).
When a broker comes back *empty* (the embedded broker keeps nothing across a
restart; a Kafka cluster rebuilt without its volumes does the same), the
offsets this worker committed and the changelogs its tables restore from are
gone; going on would silently lose or double-count state. The worker then
stops with one line (:func:`streams.ops.fatal.stop_worker_now`) instead of
failing later inside Faust with a traceback.

The decision is pure (:class:`BrokerWatch` with an injected probe);
:meth:`BrokerWatch.run` is the background task, and the worker's ``on_return``
hook asks the returned broker whether it still has the worker's topics.

>>> answers = iter([True, False, False, True])
>>> watch = BrokerWatch(probe=lambda: next(answers), interval_s=1.0)
>>> [watch.check(now_s=t).ok for t in (0.0, 1.0, 2.0, 3.0)]
[True, False, False, True]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from streams.kafka.broker import kafka_answers
from streams.ops.health import Verdict

Probe = Callable[[], bool]


def probe_any(bootstrap_servers: str, timeout_s: float = 1.0, handshake: bool = True) -> Probe:
    """A probe: does any of the bootstrap servers answer (ApiVersions, or TCP under TLS)?"""
    addresses = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        addresses.append((host.strip("[]"), int(port)))

    def probe() -> bool:
        return any(_answers(host, port, timeout_s, handshake) for host, port in addresses)

    return probe


def _answers(host: str, port: int, timeout_s: float, handshake: bool) -> bool:
    if handshake:
        return kafka_answers(host, port, timeout_s)
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class BrokerWatch:
    """The last probe's answer, and since when the brokers have been silent."""

    def __init__(self, probe: Probe, interval_s: float = 2.0) -> None:
        self.probe = probe
        self.interval_s = interval_s
        self.reachable = True  # until a probe says otherwise: startup has its own checks
        self.silent_since_s: float | None = None
        self.outages = 0

    def record(self, answered: bool, now_s: float) -> None:
        if answered:
            self.reachable, self.silent_since_s = True, None
        elif self.reachable:
            self.reachable, self.silent_since_s = False, now_s
            self.outages += 1

    def check(self, now_s: float) -> Verdict:
        """Probe once (blocking) and return the verdict."""
        self.record(self.probe(), now_s)
        return self.verdict(now_s)

    def verdict(self, now_s: float) -> Verdict:
        if self.reachable:
            return Verdict(True, "a broker answers")
        silent = now_s - (self.silent_since_s or now_s)
        return Verdict(False, f"no broker has answered for {silent:.0f} s")

    async def run(self, on_return: Callable[[], Awaitable[None]] | None = None) -> None:
        """Probe every ``interval_s`` in a thread; await ``on_return`` after an outage."""
        while True:
            was_reachable = self.reachable
            answered = await asyncio.to_thread(self.probe)
            self.record(answered, time.monotonic())
            if answered and not was_reachable and on_return is not None:
                await on_return()
            await asyncio.sleep(self.interval_s)
