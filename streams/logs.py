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
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.NOTSET)  # the CLI quiets it for clients
