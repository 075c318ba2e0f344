"""Stopping a worker that must not go on: one clear line, a non-zero exit, at once.

Some failures leave nothing safe to do: a message that can be neither
processed nor dead-lettered, or a broker that has lost data this worker had
already seen. Acknowledging the message would lose it; waiting would hang the
worker (it stays "ready", ignores signals, and processes nothing). The worker
logs one critical line and exits with :data:`EXIT_FATAL`, without committing:
on restart it resumes from its last committed offset, and dedupe makes the
replay harmless. A supervisor (Kubernetes, systemd, compose) restarts it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

#: Exit status of a worker stopped by :func:`stop_worker_now` (EX_SOFTWARE).
EXIT_FATAL = 70

log = logging.getLogger("tunestream.worker")


def stop_worker_now(reason: str, **where: object) -> NoReturn:
    """Log ``reason`` as one critical line, flush the logs, and end the process."""
    log.critical("stopping the worker: %s", reason, extra=where)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_FATAL)  # not sys.exit: Faust's shutdown would wait on the stuck agent
