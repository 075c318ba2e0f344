"""The bench's Faust no-op worker: ``python -m streams.tools.bench_worker noop``.

A tiny ``faust.App`` whose one agent only iterates its stream: the framework's
per-message ceiling, to compare the real worker with (``tunestream bench``). It
reads the same settings as a worker (``TUNESTREAM_*``), consumes the events
topic as the worker does (raw bytes, ``stream.events()``, concurrency 1, the
same consumer fetch wait, commit interval and record hand-over) and does nothing with a message
but note when it saw it. ``GET /count`` answers
``{"messages": n, "first_s": t0, "last_s": t1}`` (Unix times of the first and
the latest message).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import faust

from streams.kafka.faust_fixes import hand_over_without_tasks, tune_fetch_wait
from streams.settings import Settings
from streams.worker.app import faust_app_options


class Count:
    """Messages seen, and when the first and the latest were."""

    def __init__(self) -> None:
        self.messages = 0
        self.first_s = 0.0
        self.last_s = 0.0

    def seen(self, at_s: float) -> None:
        """One more message.

        >>> count = Count()
        >>> count.seen(5.0); count.seen(7.5)
        >>> count.as_dict()
        {'messages': 2, 'first_s': 5.0, 'last_s': 7.5}
        """
        if not self.messages:
            self.first_s = at_s
        self.messages += 1
        self.last_s = at_s

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "first_s": self.first_s, "last_s": self.last_s}


def create_noop_app(settings: Settings) -> faust.App:
    """A Faust app with one agent that iterates ``settings.events_topic`` and nothing else."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    tune_fetch_wait(settings.fetch_max_wait_ms)
    hand_over_without_tasks()  # the worker's hand-over: the ceiling it works under
    app = faust.App(settings.app_id, **faust_app_options(settings), store="memory://")
    topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")
    count = Count()

    async def noop(stream: Any) -> None:
        async for _event in stream.events():
            count.seen(time.time())

    app.agent(topic, name="noop", concurrency=1)(noop)

    @app.page("/count")
    async def answer(view: Any, request: Any) -> Any:
        return view.json(count.as_dict())

    return app


def main(argv: list[str]) -> int:
    if argv != ["noop"]:
        print("usage: python -m streams.tools.bench_worker noop", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    worker = faust.Worker(
        create_noop_app(settings),
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
