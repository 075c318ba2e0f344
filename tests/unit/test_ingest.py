"""Ingestion as a pure function: dedupe, user state, dead-letter records."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features import TrackInfo, UserFeatures
from streams.contracts.events import EventDecoder, Rejection
from streams.pipeline.ingest import Source, dead_letter, ingest_message
from streams.settings import dead_letter_bytes_at_most
from streams.state.dedupe import RecentEventIds
from streams.state.keyed_state import RECENT_TRACKS, TrackState, UserState
from tests.factories import NOW_MS, make_event
from tests.unit.features.test_user import assert_close

DECODER = EventDecoder(now_ms=lambda: NOW_MS)
SOURCE = Source("listening-events", 3, 1234)


def test_duplicate_inside_one_batch_is_dropped() -> None:
    event = make_event()
    outcome = ingest_message(DECODER, UserState.empty(), b"u1", orjson.dumps([event, event]), 1)
    assert outcome.accepted == [event]
    assert outcome.duplicates == [event]


def test_duplicate_across_messages_is_dropped_after_a_state_round_trip() -> None:
    state = UserState.empty()
    event = make_event()
    ingest_message(DECODER, state, b"u1", orjson.dumps(event), 1)
    restored = UserState.from_state(orjson.loads(orjson.dumps(state.to_state())))
    again = ingest_message(DECODER, restored, b"u1", orjson.dumps(event), 2)
    assert again.accepted == [] and again.duplicates == [event]


def test_replayed_message_is_accepted_again_once_after_a_crash() -> None:
    # The state was saved (changelog) but the worker died before committing the
    # offset: the same message comes again and its output must be produced again.
    state = UserState.empty()
    event = make_event()
    raw = orjson.dumps([event, event])
    ingest_message(DECODER, state, b"u1", raw, offset=41)
    restored = UserState.from_state(orjson.loads(orjson.dumps(state.to_state())))
    replay = ingest_message(DECODER, restored, b"u1", raw, offset=41)
    assert replay.accepted == [event]
    assert replay.duplicates == [event]


def test_skipped_tracks_are_not_remembered_as_heard() -> None:
    state = UserState.empty()
    batch = [make_event(track_id="a"), make_event(track_id="b", type="skip", ms_played=0)]
    ingest_message(DECODER, state, b"u1", orjson.dumps(batch), 1)
    assert state.recent_tracks == ["a"]


def test_recent_tracks_are_bounded_and_most_recent_last() -> None:
    state = UserState.empty()
    for i in range(RECENT_TRACKS + 10):
        state.remember_track(f"t{i}")
    state.remember_track("t20")
    assert len(state.recent_tracks) == RECENT_TRACKS
    assert state.recent_tracks[-1] == "t20"


@given(st.lists(st.text(min_size=1, max_size=6), max_size=60), st.integers(1, 16))
def test_recent_ids_flag_exactly_the_ids_within_capacity(ids: list[str], capacity: int) -> None:
    memory = RecentEventIds(capacity)
    window: list[str] = []  # brute force: the last `capacity` distinct new ids
    for event_id in ids:
        expected_new = event_id not in window
        assert (memory.add(event_id, offset=0) == "new") is expected_new
        if expected_new:
            window = [*window, event_id][-capacity:]
    assert len(memory) == len(window)


@given(st.lists(st.tuples(st.text(max_size=4), st.integers(0, 2**63 - 1) | st.integers(0, 9))))
def test_recent_ids_restore_with_their_offsets_in_any_order(ids: list[tuple[str, int]]) -> None:
    memory = RecentEventIds(capacity=16)
    for event_id, offset in ids:
        memory.add(event_id, offset)
    restored = RecentEventIds.from_state(orjson.loads(orjson.dumps(memory.to_state())), 16)
    assert restored._offsets == memory._offsets


def test_recent_ids_of_version_2_restore_and_other_versions_are_refused() -> None:
    # Version 2 packed every offset as 8 bytes; the fingerprints are the same.
    old = {"v": 2, "ids": "G11eUfVPDwT+0TUILw7/eA==", "offsets": "AAAAAAAAACkAAAAAAAAAKg=="}
    restored = RecentEventIds.from_state(old)
    assert [restored.add("e1", 41), restored.add("e2", 50)] == ["replay", "duplicate"]
    with pytest.raises(ValueError, match="RecentEventIds state has version 1; this code reads"):
        RecentEventIds.from_state({**old, "v": 1})


#: A version 4 user state as the previous release saved it: a play (offset 41,
#: phone) and a skip (offset 42) of track t1 by artist a1, a minute apart.
VERSION_4_STATE = orjson.loads(
    b'{"v":4,"seen":{"v":2,"ids":"G11eUfVPDwT+0TUILw7/eA==","offsets":"AAAAAAAAACkAAAAAAAAAKg=="},'
    b'"recent":["t1"],"features":{"v":1,"latest_ts_ms":1767225660000,"events_seen":2,'
    b'"too_late_count":0,"counts":{"plays_1h":0.9885140203528962,"plays_1d":0.9995187636226662,'
    b'"plays_7d":0.999931237762985,"skips_1h":1.0,"skips_1d":1.0,"skips_7d":1.0},'
    b'"completion":[0.5249656188814925,1.999931237762985],'
    b'"new_artist_plays":[0.999931237762985,0.999931237762985],'
    b'"first_play_ms":{"a1":1767225600000},"artists":{"a1":0.999931237762985},'
    b'"genres":{"jazz":0.999931237762985},'
    b'"last_played_ms":[{"t1":1767225600000},{"a1":1767225600000}],'
    b'"hour_of_day":{"0":1.9999828089974556},"day_of_week":{"3":1.9999828089974556},'
    b'"devices":{"phone":0.9999828089974555},"context_types":{},'
    b'"session":{"v":1,"gap_ms":1800000,"max_events":64,'
    b'"events":[[1767225600000,false,"phone",""],[1767225660000,true,"",""]],"dropped":[0,null]}}}'
)


def test_a_version_4_user_state_restores_with_the_same_features_ids_and_tracks() -> None:
    t1 = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)
    play = make_event(event_id="e1", track_id="t1", ts=NOW_MS, ms_played=100_000)
    play["context"] = {"device": "phone"}
    skip = make_event(event_id="e2", track_id="t1", type="skip", ts=NOW_MS + 60_000)
    skip.update(ms_played=5_000, context={})
    folded_now = UserFeatures()
    for event in (play, skip):
        folded_now.update(event, t1)
    restored = UserState.from_state(VERSION_4_STATE, dedupe_capacity=8)
    at = NOW_MS + 3_600_000
    assert_close(restored.features.read(at), folded_now.read(at), rel=1e-12)
    assert restored.recent_tracks == ["t1"]
    assert [restored.seen.add("e1", 41), restored.seen.add("e2", 99)] == ["replay", "duplicate"]
    assert restored.to_state()["v"] == 5


def test_a_user_state_of_an_unknown_version_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="UserState state has version 3; this code reads"):
        UserState.from_state({**VERSION_4_STATE, "v": 3})


def test_dead_letter_of_a_batch_item_carries_its_own_json_and_position() -> None:
    bad = make_event(type="pause")
    raw = orjson.dumps([make_event(), bad])
    outcome = ingest_message(DECODER, UserState.empty(), b"u1", raw, 1)
    record = dead_letter(outcome.rejections[0], SOURCE, b"u1", raw, NOW_MS)
    assert record["reason"] == "unknown_event_type"
    assert record["field"] == "type"
    assert record["batch_index"] == 1
    assert record["event_id"] == bad["event_id"]
    assert orjson.loads(record["original"]) == bad
    assert record["source"] == {
        "topic": "listening-events",
        "partition": 3,
        "offset": 1234,
        "key": "u1",
        "key_bytes": 2,
    }


def test_dead_letter_of_undecodable_bytes_keeps_them_exactly() -> None:
    raw = b"\xff\x00 broken"
    outcome = ingest_message(DECODER, UserState.empty(), None, raw, 1)
    record = dead_letter(outcome.rejections[0], SOURCE, None, raw, NOW_MS)
    assert record["reason"] == "not_utf8"
    assert record["original"] is None
    assert base64.b64decode(record["original_b64"]) == raw


def test_replayed_events_go_out_again_but_are_not_folded_twice() -> None:
    state = UserState.empty()
    raw = orjson.dumps([make_event(event_id="a"), make_event(event_id="b")])
    first = ingest_message(DECODER, state, b"u1", raw, offset=41)
    restored = UserState.from_state(orjson.loads(orjson.dumps(state.to_state())))
    replay = ingest_message(DECODER, restored, b"u1", raw, offset=41)
    assert len(first.folded) == 2 and len(replay.accepted) == 2 and replay.folded == []
    assert restored.features.events_seen == 2


def test_too_late_event_is_rejected_with_its_lag_and_a_replay_of_it_is_rejected_again() -> None:
    # ts: newest NOW-1s; the late one NOW-1s-6min; allowed lateness 5 min -> too_late
    state = UserState.empty()
    newest = make_event(event_id="new", ts=NOW_MS - 1000)
    late = make_event(event_id="late", ts=NOW_MS - 1000 - 360_000)
    ingest_message(DECODER, state, b"u1", orjson.dumps(newest), offset=1)
    for _ in range(2):  # the same message twice: a replay is refused again, not let through
        outcome = ingest_message(DECODER, state, b"u1", orjson.dumps(late), offset=2)
        (rejection,) = outcome.rejections
        assert rejection.reason == "too_late" and rejection.event_id == "late"
        assert "360000 ms older" in rejection.detail and outcome.accepted == []
    assert state.features.events_seen == 1


def test_events_are_folded_with_their_catalog_entry() -> None:
    catalog = {"t9": TrackInfo("t9", "a9", ("jazz",), duration_ms=200_000)}
    state = UserState.empty()
    event = make_event(track_id="t9", ms_played=50_000)
    ingest_message(DECODER, state, b"u1", orjson.dumps(event), 1, track_of=catalog.get)
    features = state.features.read(NOW_MS)
    assert features["artist_affinity"][0][0] == "a9"
    assert features["completion_ratio_7d"] == 0.25


def test_track_state_applies_each_source_position_once() -> None:
    track = TrackState.empty()
    assert track.first_time(0, 10, 0) and track.first_time(0, 10, 1)
    assert track.first_time(1, 3, 0)  # another source partition keeps its own position
    restored = TrackState.from_state(orjson.loads(orjson.dumps(track.to_state())))
    assert not restored.first_time(0, 10, 1) and not restored.first_time(0, 9, 5)
    assert restored.first_time(0, 11, 0)


@given(
    value=st.binary(min_size=0, max_size=2_000) | st.just(b"\x01" * 5_000),
    key=st.binary(max_size=3_000),
    detail=st.text(max_size=3_000) | st.just("\x02" * 3_000),
)
def test_a_dead_letter_never_outgrows_the_bound_the_settings_check(
    value: bytes, key: bytes, detail: str
) -> None:
    keep = 1_024
    rejection = Rejection("not_json", detail, field="\x03" * 64)
    record = dead_letter(rejection, SOURCE, key, value * 4, NOW_MS, original_max_bytes=keep)
    assert len(orjson.dumps(record)) <= dead_letter_bytes_at_most(keep)
    assert record["original_bytes"] == len(value) * 4
    assert base64.b64decode(record["original_b64"]) == (value * 4)[:keep]
