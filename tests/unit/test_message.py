"""One message's effects: all built before any is applied; bounded dead letters.

The defects these guard against (issue "Nothing stops a worker"): a dead letter
larger than the producer's request limit stopped the worker; a state change
applied before a failing step lost the event (re-publishing it was then a
duplicate); an event orjson can read but not write back.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import orjson
import pytest

from online_models.trending import TrendingBoard
from streams.contracts.events import EventDecoder
from streams.pipeline import message as message_module
from streams.pipeline.ingest import Source, dead_letter
from streams.pipeline.message import MessagePlanner
from streams.pipeline.refresh import RefreshThrottle
from streams.state.codec import decode_state
from streams.state.keyed_state import UserState
from tests.factories import NOW_MS, make_event, planner_config

SOURCE = Source("listening-events", 2, 40)
LIMIT = 1_048_576


def planner(**config: Any) -> MessagePlanner:
    return MessagePlanner(
        planner_config(**config),
        EventDecoder(now_ms=lambda: NOW_MS, max_message_bytes=4 * LIMIT),
        TrendingBoard(),
        RefreshThrottle(interval_s=2.0),
        now_ms=lambda: NOW_MS,
        now_s=lambda: 0.0,
    )


def stored_state_after(*events: dict[str, Any]) -> dict[str, Any]:
    p = planner()
    effects = p.plan(b"u1", orjson.dumps(list(events)), Source("e", 0, 1), None)
    assert effects.state is not None
    return effects.state


def test_a_batch_yields_the_clean_forward_track_items_by_partition_and_a_list() -> None:
    events = [make_event(track_id="t1"), make_event(track_id="t2")]  # partitions 3 and 0 of 4
    effects = planner().plan(b"u1", orjson.dumps(events), SOURCE, None)
    assert [o.topic for o in effects.outputs] == ["clean", "recs"]
    assert orjson.loads(effects.outputs[0].value) == events
    assert list(effects.track_items) == [0, 3]
    items = {p: [orjson.loads(i) for i in batch] for p, batch in effects.track_items.items()}
    assert items == {0: [[2, 40, 1, events[1]]], 3: [[2, 40, 0, events[0]]]}


def test_planning_never_modifies_the_stored_state() -> None:
    stored = stored_state_after(make_event(event_id="a"))
    before = copy.deepcopy(stored)
    planner().plan(b"u1", orjson.dumps(make_event(event_id="b")), SOURCE, stored)
    assert stored == before


STEPS = [
    ("ingest_message", "streams.pipeline.message.ingest_message"),
    ("encode", "streams.pipeline.message.encode"),
    ("build_list", "online_models.recommender.ListBuilder.build"),
    ("to_state", "streams.state.keyed_state.UserState.to_state"),
    ("dead_letter", "streams.pipeline.message.dead_letter"),
]


@pytest.mark.parametrize(("name", "target"), STEPS, ids=[name for name, _ in STEPS])
def test_a_failure_at_any_step_raises_before_anything_is_applied(
    name: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = stored_state_after(make_event(event_id="a"))
    before = copy.deepcopy(stored)
    p = planner()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"injected failure in {name}")

    monkeypatch.setattr(target, fail)
    # One good event and one bad one, so that the dead-letter step runs too.
    value = orjson.dumps([make_event(event_id="b"), make_event(event_id="c", type="pause")])
    with pytest.raises(RuntimeError, match="injected"):
        p.plan(b"u1", value, SOURCE, stored)
    monkeypatch.undo()
    assert stored == before
    assert len(p.throttle) == 0  # no list marked as sent
    # The message can then be planned (or dead-lettered) from the untouched state.
    retried = p.plan(b"u1", value, SOURCE, stored)
    assert [e["event_id"] for e in retried.outcome.folded] == ["b"]


def test_memory_effects_wait_for_applied() -> None:
    p = planner()
    effects = p.plan(b"u1", orjson.dumps(make_event(track_id="t7")), SOURCE, None)
    assert len(p.throttle) == 0
    p.applied(b"u1", effects)
    assert len(p.throttle) == 1


def test_an_event_nested_past_what_orjson_writes_is_refused_before_any_state_changes() -> None:
    levels = 300  # orjson reads 1,024 levels, writes 255: this one could not be forwarded
    value = orjson.dumps(make_event())[:-1] + b',"x":' + b'{"a":' * levels + b"1" + b"}" * levels
    value += b"}"
    effects = planner().plan(b"u1", value, SOURCE, None)
    assert effects.state is None
    (rejection,) = effects.outcome.rejections
    assert rejection.reason == "too_deep"
    assert [o.topic for o in effects.outputs] == ["dlq"]


def test_valid_events_whose_forward_would_not_fit_are_refused_as_oversize_unapplied() -> None:
    big = make_event(context={"device": "mobile"}, padding="é" * 600_000)  # 1.2 MB re-encoded
    stored = stored_state_after(make_event(event_id="a"))
    before = copy.deepcopy(stored)
    effects = planner().plan(b"u1", orjson.dumps(big), SOURCE, stored)
    assert effects.state is None and stored == before
    (rejection,) = effects.outcome.rejections
    assert rejection.reason == "oversize" and "at most" in rejection.detail
    assert all(o.size <= LIMIT - message_module.RECORD_OVERHEAD_BYTES for o in effects.outputs)


@pytest.mark.parametrize(
    "value",
    [b"\x01" * 430_000, b'"' + b"\\u0001" * 150_000 + b'"', bytes(range(256)) * 4000],
    ids=["control-bytes", "escaped-text", "binary"],
)
def test_a_dead_letter_always_fits_one_request(value: bytes) -> None:
    effects = planner().plan(b"u1", value, SOURCE, None)
    (output,) = effects.outputs
    assert output.size <= LIMIT - message_module.RECORD_OVERHEAD_BYTES
    record = orjson.loads(output.value)
    assert record["original_bytes"] == len(value) and record["original_truncated"]
    assert record["original_sha256"] == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(record["original_b64"])
    assert value.startswith(kept) and len(kept) == 16_384


def test_a_truncated_utf8_original_loses_at_most_the_character_it_split() -> None:
    value = ("€" * 10_000).encode()  # 3 bytes each: a 16 KiB cut splits one
    rejection = planner().plan(b"u1", value, SOURCE, None).outcome.rejections[0]
    record = dead_letter(rejection, SOURCE, b"u1", value, NOW_MS, original_max_bytes=16_384)
    assert record["original"] == "€" * (16_384 // 3)


def test_an_over_long_key_is_cut_in_the_record_and_dropped_as_the_message_key() -> None:
    key = b"k" * 5_000
    (output,) = planner().plan(key, b"not json", SOURCE, None).outputs
    record = orjson.loads(output.value)
    assert output.key is None
    assert record["source"]["key"] == "k" * 1_024 and record["source"]["key_bytes"] == 5_000


def test_a_processing_error_dead_letter_is_bounded_too() -> None:
    value = b"x" * 900_000
    output = planner().processing_error(RuntimeError("y" * 50_000), SOURCE, b"u1", value)
    record = orjson.loads(output.value)
    assert output.size < 200_000
    assert record["reason"] == "processing_error" and len(record["detail"]) <= 1_000


def test_replayed_message_goes_out_again_from_the_stored_state() -> None:
    value = orjson.dumps(make_event(event_id="a"))
    p = planner()
    first = p.plan(b"u1", value, SOURCE, None)
    again = p.plan(b"u1", value, SOURCE, first.state)
    assert [o.topic for o in again.outputs][:1] == ["clean"]
    assert again.track_items == first.track_items
    assert again.outcome.folded == []
    assert again.state is not None
    state = UserState.from_state(decode_state(again.state))
    assert state.features.events_seen == 1
