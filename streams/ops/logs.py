"""Logging for workers: one JSON object per line, or plain text for a terminal.

Log calls pass the Kafka coordinates and ids they know as ``extra``; the JSON
formatter lifts exactly those keys (:data:`CONTEXT_FIELDS`) into the object, so
a log search for ``"offset": 56`` or an event id finds every line about it.

>>> import logging, orjson
>>> record = logging.LogRecord("tunestream.worker", logging.WARNING, __file__, 1,
...                            "rejected %d events", (2,), None)
>>> record.topic, record.partition, record.offset = "listening-events", 3, 56
>>> line = orjson.loads(JsonFormatter().format(record))
>>> line["level"], line["message"], line["topic"], line["partition"], line["offset"]
('WARNING', 'rejected 2 events', 'listening-events', 3, 56)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

import orjson

#: Keys taken from a record's ``extra`` into the JSON object, in this order.
CONTEXT_FIELDS: Final = (
    "topic",
    "partition",
    "offset",
    "event_id",
    "user_id",
    "model_version",
    "reason",
)
LOG_FORMATS: Final = ("json", "text")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <context>..., "exception"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RepeatLimiter(logging.Filter):
    """At most one line per ``interval_s`` for each repeating warning of a noisy library.

    While a broker is down aiokafka logs ~100 connection errors a second. Lines
    of the loggers named in ``noisy`` at WARNING or above are let through once
    per interval per (logger, message template); the next one that passes
    says how many were held back. Memory bound: one entry per distinct
    template, at most ``max_templates``.

    >>> limiter = RepeatLimiter(interval_s=10.0, clock=iter([0.0, 1.0, 2.0, 11.0]).__next__)
    >>> def record():
    ...     return logging.LogRecord("aiokafka", logging.ERROR, "", 1, "down %s", ("b1",), None)
    >>> passed = [limiter.filter(r) and r.getMessage() for r in (record() for _ in range(4))]
    >>> passed
    ['down b1', False, False, 'down b1 (2 similar lines held back in the last 10 s)']
    """

    def __init__(
        self,
        interval_s: float = 10.0,
        noisy: tuple[str, ...] = ("aiokafka", "kafka", "faust", "mode"),
        max_templates: int = 1_000,
        clock: Any = None,
    ) -> None:
        super().__init__()
        import time

        self.interval_s = interval_s
        self.noisy = noisy
        self.max_templates = max_templates
        self.clock = clock or time.monotonic
        self._seen: dict[tuple[str, Any], list[float]] = {}  # -> [last passed, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.noisy):
            return True
        now = self.clock()
        key = (record.name, record.msg)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval_s:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            held = int(entry[1])
            record.msg = f"{record.msg} ({held} similar lines held back in the last "
            record.msg += f"{self.interval_s:.0f} s)"
        if entry is None and len(self._seen) >= self.max_templates:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = [now, 0]
        return True


def configure_logging(level: str, log_format: str = "json") -> None:
    """Install one stderr handler on the root logger, at an explicit level.

    The explicit level matters: Faust's terminal spinner otherwise switches the
    root logger to DEBUG, and every debug call in Faust and aiokafka then builds
    a record (~25% of CPU).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.NOTSET)  # the CLI quiets it for clients
