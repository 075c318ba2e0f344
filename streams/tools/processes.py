"""The child processes the client tools start (workers, samplers): started, watched and
stopped by their own PID only, their output in a log file.

A child starts in a session of its own, so Ctrl-C reaches the tool alone, which
then stops its children in order; and it asks the kernel to send it SIGTERM if
the tool dies first (Linux), so no child outlives a killed tool.

>>> http_get(1, "/readyz", timeout_s=0.5)  # nothing listens on port 1
(0, b'')
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams.kafka.broker import die_with_parent


class Child:
    """A subprocess of a tool, its output in a log file, signalled by its PID only.

    ``error`` is the exception type :meth:`check_alive` raises: the tool's own, so
    its command line reports it in one line.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        error: type[Exception] = RuntimeError,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.error = error
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Child:
        with open(self.log, "ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the tool only; it stops us in order
                preexec_fn=die_with_parent,  # and if the tool is killed, we go too
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise self.error(f"{self.name} was not started")
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """``error`` naming the exit status and the log's tail if the child has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise self.error(
                f"{self.name} (pid {self.process.pid}) exited with {self.process.returncode}; "
                f"its log: {self.log_tail()}"
            )

    def kill(self) -> None:
        """SIGKILL: no commit, no goodbye to a consumer group."""
        if self.alive:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM to our PID, then SIGKILL if it is still there after ``timeout_s``; the
        exit status, None if it had to be killed (or was never started)."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-chars:].strip() or "(empty)"


def http_get(port: int, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET on a loopback port; ``(0, b"")`` while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""
