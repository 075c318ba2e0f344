"""Worker logs: one JSON object per line with the Kafka coordinates, or plain text."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from streams.ops.logs import JsonFormatter, configure_logging


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "tunestream.worker", logging.ERROR, __file__, 1, "boom %s", ("x",), None
    )
    rec.__dict__.update(extra)
    return rec


def test_json_line_carries_message_level_and_kafka_coordinates() -> None:
    line = JsonFormatter().format(
        record(topic="listening-events", partition=1, offset=9, event_id="e1", model_version="m")
    )
    entry = orjson.loads(line)
    assert entry["message"] == "boom x" and entry["level"] == "ERROR"
    assert (entry["topic"], entry["partition"], entry["offset"]) == ("listening-events", 1, 9)
    assert entry["event_id"] == "e1" and entry["model_version"] == "m"
    assert "\n" not in line


def test_json_line_leaves_out_coordinates_it_does_not_have() -> None:
    entry = orjson.loads(JsonFormatter().format(record()))
    assert set(entry) == {"ts", "level", "logger", "message"}


def test_an_exception_stays_inside_one_json_line() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        import sys

        rec = record()
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line and "ValueError: bad value" in orjson.loads(line)["exception"]


def test_configure_logging_sets_the_root_level_and_one_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging("warning", "json")
        assert root.level == logging.WARNING and len(root.handlers) == 1
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("faust.worker").warning("hello")
        assert orjson.loads(stream.getvalue())["logger"] == "faust.worker"
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        configure_logging("info", "xml")
