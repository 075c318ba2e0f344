"""The event contract: every kind of bad input gets its precise reason, never an exception."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.events import (
    EVENT_SCHEMA_FILE,
    REASONS,
    RECOMMENDATION_SCHEMA_FILE,
    EventDecoder,
    load_schema,
)
from tests.factories import NOW_MS, make_event


@pytest.fixture
def decoder() -> EventDecoder:
    return EventDecoder(
        now_ms=lambda: NOW_MS, max_message_bytes=4096, max_batch_events=5, max_future_ms=60_000
    )


def one(decoder: EventDecoder, value: Any, key: bytes | None = b"u1") -> tuple[list, list]:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return decoder.decode(key, raw)


def test_valid_event_is_accepted_unchanged(decoder: EventDecoder) -> None:
    event = make_event()
    events, rejections = one(decoder, event)
    assert rejections == []
    assert events == [event]


def test_whole_number_floats_are_normalised_to_int(decoder: EventDecoder) -> None:
    events, _ = one(decoder, make_event(ts=float(NOW_MS - 5), ms_played=1000.0))
    assert type(events[0]["ts"]) is int
    assert type(events[0]["ms_played"]) is int


def _nested(levels: int) -> bytes:
    """An event with an extra field nested ``levels`` deep: orjson reads it, cannot write it."""
    nested = b'{"a":' * levels + b"1" + b"}" * levels
    return orjson.dumps(make_event())[:-1] + b',"extra":' + nested + b"}"


EVENT_CASES: list[tuple[Any, str, str | None]] = [
    (make_event(user_id=None), "missing_field", "user_id"),
    (make_event(track_id=None), "missing_field", "track_id"),
    (make_event(ts=None), "missing_field", "ts"),
    (make_event(ts="1767225599000"), "wrong_type", "ts"),
    (make_event(ts=True), "wrong_type", "ts"),
    (make_event(ms_played=1.5), "wrong_type", "ms_played"),
    (make_event(track_id=42), "wrong_type", "track_id"),
    (make_event(context="mobile"), "wrong_type", "context"),
    (make_event(type="pause"), "unknown_event_type", "type"),
    (make_event(ms_played=-1), "negative_ms_played", "ms_played"),
    (make_event(ts=1_767_225_599), "out_of_range", "ts"),  # seconds, not ms
    (make_event(context={"hour": 24}), "out_of_range", "context.hour"),
    (make_event(event_id=""), "empty_value", "event_id"),
    (make_event(track_id="x" * 129), "too_long", "track_id"),
    (_nested(300), "too_deep", None),
    (make_event(ts=NOW_MS + 61_000), "ts_in_future", "ts"),
    (make_event(user_id="u2"), "key_mismatch", "user_id"),
    ("a string", "not_an_object", None),
    ([1], "not_an_object", None),
]


@pytest.mark.parametrize(("value", "reason", "field"), EVENT_CASES)
def test_invalid_event_gets_precise_reason(
    decoder: EventDecoder, value: Any, reason: str, field: str | None
) -> None:
    events, rejections = one(decoder, value)
    assert events == []
    assert [(r.reason, r.field) for r in rejections] == [(reason, field)]
    assert rejections[0].detail


MESSAGE_CASES: list[tuple[bytes | None, str]] = [
    (b"\xff\xfe not utf-8", "not_utf8"),
    (b'{"event_id": ', "not_json"),
    (b"", "not_json"),
    (None, "not_json"),
    (b"[]", "empty_batch"),
    (orjson.dumps([make_event() for _ in range(6)]), "too_many_events"),
    (b'{"pad": "' + b"x" * 5000 + b'"}', "oversize"),
]


@pytest.mark.parametrize(("raw", "reason"), MESSAGE_CASES)
def test_bad_message_is_refused_whole(
    decoder: EventDecoder, raw: bytes | None, reason: str
) -> None:
    events, rejections = decoder.decode(b"u1", raw)
    assert events == []
    assert [r.reason for r in rejections] == [reason]
    assert rejections[0].index is None


def test_batch_keeps_valid_events_and_rejects_bad_ones_one_by_one(decoder: EventDecoder) -> None:
    good1, good2 = make_event(), make_event()
    batch = [good1, make_event(type="pause"), good2, make_event(ms_played=-5)]
    events, rejections = one(decoder, batch)
    assert events == [good1, good2]
    assert [(r.index, r.reason) for r in rejections] == [
        (1, "unknown_event_type"),
        (3, "negative_ms_played"),
    ]
    assert rejections[0].event_id == batch[1]["event_id"]


def test_unkeyed_message_is_a_key_mismatch(decoder: EventDecoder) -> None:
    _, rejections = one(decoder, make_event(), key=None)
    assert rejections[0].reason == "key_mismatch"


def test_every_declared_reason_is_exercised_by_a_case() -> None:
    # Reasons are metric labels and DLQ contract: each one declared has a test here.
    exercised = {reason for _, reason, _ in EVENT_CASES} | {r for _, r in MESSAGE_CASES}
    not_from_the_decoder = {"invalid_value", "too_late", "processing_error"}
    assert exercised == set(REASONS) - not_from_the_decoder


def test_validator_agrees_with_the_published_schema_on_valid_events(
    decoder: EventDecoder,
) -> None:
    schema = load_schema(EVENT_SCHEMA_FILE)
    jsonschema.Draft7Validator.check_schema(schema)
    event = make_event(recommendation_id="r1")
    jsonschema.validate(event, schema)
    assert one(decoder, event)[1] == []


def test_recommendation_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(load_schema(RECOMMENDATION_SCHEMA_FILE))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


def _event_like() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.text(max_size=5) | st.integers(),
            "user_id": st.just("u1") | st.text(max_size=3),
            "track_id": st.text(max_size=3) | st.none(),
            "type": st.sampled_from(["play", "skip", "save", "pause", ""]),
            "ts": st.integers(min_value=-1, max_value=2 * NOW_MS)
            | st.floats(allow_nan=False, allow_infinity=False),
            "ms_played": st.integers(min_value=-10, max_value=10**9),
            "context": json_values,
        },
    )
    return fields


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_and_always_get_a_reason(raw: bytes) -> None:
    decoder = EventDecoder(now_ms=lambda: NOW_MS)
    events, rejections = decoder.decode(b"u1", raw)
    assert events or rejections
    assert all(r.reason in REASONS and r.detail for r in rejections)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, _event_like(), st.lists(_event_like(), max_size=4)))
def test_random_json_never_raises_and_each_event_is_accepted_or_explained(value: Any) -> None:
    decoder = EventDecoder(now_ms=lambda: NOW_MS)
    raw = json.dumps(value).encode()  # json: integers beyond 64 bits too
    events, rejections = decoder.decode(b"u1", raw)
    items = value if isinstance(value, list) else [value]
    assert len(events) + len(rejections) == max(1, len(items)) or (items == [] and rejections)
    assert all(r.reason in REASONS and r.detail for r in rejections)
    schema = load_schema(EVENT_SCHEMA_FILE)
    for event in events:  # whatever we accept, the published schema accepts
        jsonschema.validate(json.loads(orjson.dumps(event)), schema)


def test_the_schema_and_the_code_name_the_same_event_types() -> None:
    from features.event_types import ENGAGEMENT_WEIGHTS, EVENT_TYPES
    from streams.contracts.events import EVENT_SCHEMA_FILE, load_schema

    schema_types = load_schema(EVENT_SCHEMA_FILE)["properties"]["type"]["enum"]
    assert tuple(schema_types) == EVENT_TYPES
    assert set(ENGAGEMENT_WEIGHTS) == set(EVENT_TYPES)
