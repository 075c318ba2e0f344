"""Run a tunestream worker process: create topics, build the app, run until stopped.

SIGTERM and Ctrl-C stop it gracefully: Faust commits what was processed and
leaves the consumer group, so the partitions move at once.
"""

from __future__ import annotations

import asyncio
import sys

import faust

from streams.kafka.topics import ensure_topics
from streams.ops.logs import configure_logging
from streams.settings import Settings
from streams.worker.app import create_app


def run_worker(settings: Settings) -> int:
    """Block running one worker; returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(ensure_topics(settings))
    app = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    if not sys.stdout.isatty():
        worker.spinner = None  # it writes cursor escape codes even into a log file
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
