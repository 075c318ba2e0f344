"""The event contract: decode Kafka message bytes into validated listening events.

The JSON Schema file ``schemas/listening_event.schema.json`` is the published
contract. The validator is compiled from that file (fastjsonschema generates
Python code from it), so the docs and the check cannot drift apart; what a
schema cannot say (the message as a whole, the clock, the key) is checked here.

A message carries one event (a JSON object) or a batch (a JSON array of events
of one user); its key must be the ``user_id``. Every problem becomes a
:class:`Rejection` with a stable ``reason`` code, the field it concerns and a
sentence for people. A batch keeps its valid events and rejects the others one
by one.

>>> decoder = EventDecoder(now_ms=lambda: 1_767_225_600_000)
>>> ok = b'{"event_id":"e1","user_id":"u1","track_id":"t1","type":"play","ts":1767225599000,'
>>> ok += b'"ms_played":1000}'
>>> events, rejected = decoder.decode(b"u1", ok)
>>> events[0]["track_id"], rejected
('t1', [])
>>> events, rejected = decoder.decode(b"u1", b'{"event_id": "e2"}')
>>> rejected[0].reason, rejected[0].field
('missing_field', 'user_id')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

import fastjsonschema
import orjson

from streams.contracts.clock import now_ms

Event = dict[str, Any]

EVENT_SCHEMA_FILE: Final = "listening_event.schema.json"
RECOMMENDATION_SCHEMA_FILE: Final = "recommendation.schema.json"

#: Every reason an input can be rejected for. Bounded: it is a metric label.
REASONS: Final = (
    "not_utf8",
    "not_json",
    "oversize",
    "too_many_events",
    "empty_batch",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "negative_ms_played",
    "out_of_range",
    "empty_value",
    "too_long",
    "too_deep",
    "invalid_value",
    "ts_in_future",
    "key_mismatch",
    "too_late",
    "processing_error",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event (or a whole message) was refused."""

    reason: str
    detail: str
    field: str | None = None
    #: position of the event in its batch; None when the whole message is refused
    index: int | None = None
    #: the event as decoded, when it got that far (None for undecodable bytes)
    event: Any = None
    event_id: str | None = None


def load_schema(filename: str) -> dict[str, Any]:
    """A published JSON Schema, parsed."""
    text = resources.files("streams.contracts").joinpath("schemas", filename).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _compiled_event_validator() -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(EVENT_SCHEMA_FILE))  # type: ignore[no-any-return]


class EventDecoder:
    """Turns one Kafka message into ``(valid events, rejections)``; never raises.

    ``now_ms`` is the injected clock that bounds how far in the future an
    event's time may lie.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 1_048_576,
        max_batch_events: int = 1000,
        max_future_ms: int = 300_000,
        max_json_depth: int = 32,
        now_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_json_depth = max_json_depth
        self.max_batch_events = max_batch_events
        self.max_future_ms = max_future_ms
        self.now_ms = now_ms
        self._validate = _compiled_event_validator()
        self._required: tuple[str, ...] = tuple(load_schema(EVENT_SCHEMA_FILE)["required"])

    def decode(self, key: bytes | None, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        """Decode and validate a message; valid events keep their batch order."""
        parsed = self._parse(value)
        if isinstance(parsed, Rejection):
            return [], [parsed]
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items:
            return [], [Rejection("empty_batch", "the message is an empty JSON array")]
        if len(items) > self.max_batch_events:
            detail = f"{len(items)} events in one message, at most {self.max_batch_events}"
            return [], [Rejection("too_many_events", detail)]
        user_key = text_or_none(key)
        deadline_ms = self.now_ms() + self.max_future_ms
        events: list[Event] = []
        rejections: list[Rejection] = []
        for index, item in enumerate(items):
            problem = self.check(item, user_key, deadline_ms)
            if problem is None:
                events.append(item)
            else:
                rejections.append(_at(problem, index if isinstance(parsed, list) else None, item))
        return events, rejections

    def check(self, item: Any, user_key: str | None, deadline_ms: int) -> Rejection | None:
        """The first problem of one decoded event, or None; normalises numbers to int."""
        if not isinstance(item, dict):
            return Rejection("not_an_object", f"an event must be a JSON object, got {_kind(item)}")
        try:
            self._validate(item)
        except fastjsonschema.JsonSchemaValueException as exc:
            return self._explain(item, exc)
        depth = json_depth(item, self.max_json_depth)
        if depth > self.max_json_depth:
            # orjson reads 1,024 levels but writes 255: refused here, before any state
            # changes, rather than failing when the accepted event is forwarded.
            return Rejection(
                "too_deep", f"nested deeper than {self.max_json_depth} levels of objects/arrays"
            )
        item["ts"] = int(item["ts"])
        item["ms_played"] = int(item["ms_played"])
        if item["ts"] > deadline_ms:
            ahead_s = (item["ts"] - deadline_ms + self.max_future_ms) / 1000
            return Rejection(
                "ts_in_future",
                f"ts is {ahead_s:.0f} s ahead of the worker clock "
                f"(at most {self.max_future_ms / 1000:.0f} s allowed)",
                "ts",
            )
        if item["user_id"] != user_key:
            return Rejection(
                "key_mismatch",
                f"message key {user_key!r} is not the event's user_id "
                f"{item['user_id']!r}; key every message by user_id",
                "user_id",
            )
        return None

    def _parse(self, value: bytes | None) -> Any:
        if value is None:
            return Rejection("not_json", "the message has no value (a tombstone)")
        if len(value) > self.max_message_bytes:
            return Rejection("oversize", f"{len(value)} bytes, at most {self.max_message_bytes}")
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as utf_exc:
                return Rejection("not_utf8", f"not UTF-8: {utf_exc.reason} at byte {utf_exc.start}")
            return Rejection("not_json", f"not JSON: {exc}")

    def _explain(
        self, item: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
    ) -> Rejection:
        field = ".".join(str(p) for p in (exc.path or [])[1:]) or None
        rule = exc.rule
        if rule == "required":
            missing = [f for f in self._required if f not in item]
            name = missing[0] if missing else field
            return Rejection("missing_field", f"{name} is required", name)
        reason = {
            "type": "wrong_type",
            "minLength": "empty_value",
            "maxLength": "too_long",
            "minimum": "out_of_range",
            "maximum": "out_of_range",
            "enum": "invalid_value",
        }.get(str(rule), "invalid_value")
        if field == "type" and rule == "enum":
            reason = "unknown_event_type"
        elif field == "ms_played" and rule == "minimum":
            reason = "negative_ms_played"
        return Rejection(reason, exc.message.removeprefix("data."), field)


def _at(problem: Rejection, index: int | None, item: Any) -> Rejection:
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return Rejection(
        problem.reason,
        problem.detail,
        problem.field,
        index,
        item,
        event_id if isinstance(event_id, str) else None,
    )


def json_depth(value: Any, stop_after: int) -> int:
    """Nesting depth of decoded JSON (a scalar is 0, ``{}`` is 1), counted up to ``stop_after + 1``.

    >>> json_depth({"a": [1, {"b": 2}]}, stop_after=10), json_depth([[[[]]]], stop_after=2)
    (3, 3)
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > stop_after:
            break
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def text_or_none(data: bytes | None) -> str | None:
    """``data`` as text, or None when absent or not UTF-8 (never a valid id)."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a number")


def encode(value: Any) -> bytes:
    """The wire encoding of everything tunestream publishes (orjson)."""
    return orjson.dumps(value)


def decode_json(data: bytes) -> Any:
    """The inverse of :func:`encode`."""
    return orjson.loads(data)
