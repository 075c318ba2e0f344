"""Ingestion as a pure function: dedupe, user state, dead-letter records."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features import TrackInfo, UserFeatures
from features.base import pack_unsigned
from streams.contracts.events import EventDecoder, Rejection
from streams.pipeline.ingest import Source, dead_letter, ingest_message
from streams.settings import dead_letter_bytes_at_most
from streams.state.dedupe import RecentEventIds
from streams.state.keyed_state import STATE_VERSION, TrackState, UserState
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
    bound = state.features.config.recent_k
    plays = [
        make_event(event_id=f"e{i}", track_id=f"t{i}", ts=NOW_MS + i) for i in range(bound + 10)
    ]
    plays.append(make_event(event_id="again", track_id="t20", ts=NOW_MS + bound + 10))
    for offset, play in enumerate(plays):
        ingest_message(DECODER, state, b"u1", orjson.dumps(play), offset)
    assert len(state.recent_tracks) == bound
    assert state.recent_tracks[-1] == "t20"


@given(st.lists(st.text(min_size=1, max_size=6), max_size=60), st.integers(1, 16))
def test_recent_ids_flag_exactly_the_ids_within_capacity(ids: list[str], capacity: int) -> None:
    memory = RecentEventIds(capacity)
    window: list[str] = []  # brute force: the last `capacity` distinct new ids
    for event_id in ids:
        expected_new = event_id not in window
        assert (memory.add(event_id, offset=0, ts_ms=0) == "new") is expected_new
        if expected_new:
            window = [*window, event_id][-capacity:]
    assert len(memory) == len(window)


OFFSETS = st.integers(0, 2**63 - 1) | st.integers(0, 9)
TIMES = st.integers(NOW_MS - 10**9, NOW_MS) | st.integers(0, 2**62)


@given(
    st.lists(st.tuples(st.text(max_size=4), OFFSETS, TIMES)),
    st.none() | st.tuples(st.integers(0, 99), OFFSETS),
)
def test_recent_ids_restore_with_their_offsets_and_times_in_any_order(
    ids: list[tuple[str, int, int]], last: tuple[int, int] | None
) -> None:
    memory = RecentEventIds(capacity=16)
    for event_id, offset, ts in ids:
        memory.add(event_id, offset, ts)
    if last is not None:
        memory.applied(*last)
    restored = RecentEventIds.from_state(orjson.loads(orjson.dumps(memory.to_state())), 16)
    assert restored._seen == memory._seen
    assert restored.last_position == memory.last_position


@given(st.lists(st.tuples(st.text(max_size=3), st.integers(0, 10**6))), st.integers(0, 10**6))
def test_forgetting_keeps_exactly_the_ids_at_or_after_the_horizon(
    ids: list[tuple[str, int]], horizon: int
) -> None:
    memory = RecentEventIds(capacity=64)
    for offset, (event_id, ts) in enumerate(ids):
        memory.add(event_id, offset, ts)
    kept_before = {key: seen for key, seen in memory._seen.items() if seen[1] >= horizon}
    memory.forget_before(horizon)
    assert memory._seen == kept_before


def test_recent_ids_of_version_4_restore_their_varint_times() -> None:
    memory = RecentEventIds(capacity=8)
    for offset, ts in ((3, 1_000), (3, 1_500), (4, 300_000)):
        memory.add(f"e{ts}", offset, ts)
    deflate = zlib.compressobj(wbits=-15)
    steps = deflate.compress(struct.pack("<2B", 0, 1)) + deflate.flush()
    version_4 = {
        **memory.to_state(),
        "v": 4,
        "offsets": [3, "B" + base64.b64encode(steps).decode()],
        "times": [300_000, pack_unsigned([299_000, 298_500, 0])],
    }
    assert RecentEventIds.from_state(version_4, 8)._seen == memory._seen


def test_recent_ids_of_version_2_restore_and_other_versions_are_refused() -> None:
    # Version 2 packed every offset as 8 bytes; the fingerprints are the same.
    old = {"v": 2, "ids": "G11eUfVPDwT+0TUILw7/eA==", "offsets": "AAAAAAAAACkAAAAAAAAAKg=="}
    restored = RecentEventIds.from_state(old)
    assert [restored.add("e1", 41, 0), restored.add("e2", 50, 0)] == ["replay", "duplicate"]
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
    expected = folded_now.read(at)
    # Older states never kept the skipped and liked tracks: they restore as none.
    expected["recent_feedback"] = {"skipped": {}, "liked": {}}
    assert_close(restored.features.read(at), expected, rel=1e-12)
    assert restored.recent_tracks == ["t1"]
    assert [restored.seen.add("e1", 41, 0), restored.seen.add("e2", 99, 0)] == [
        "replay",
        "duplicate",
    ]
    assert restored.to_state()["v"] == STATE_VERSION


#: A version 5 user state as the previous release saved it: the same play (offset
#: 41) and skip (offset 42), folded by that release's ``ingest_message``.
VERSION_5_STATE = orjson.loads(
    b'{"v":5,"seen":{"v":3,"ids":"G11eUfVPDwT+0TUILw7/eA==","offsets":[41,"BYwQA"]},'
    b'"recent":["t1"],"features":{"v":2,"at":1767225660000,"seen":[2,0],"counts":{'
    b'"1h":"jLOhJ+ih7z8AAAAAAADwPwAAAAAAAAAA","1d":"Ne0vxg787z8AAAAAAADwPwAAAAAAAAAA",'
    b'"7d":"NBuOy2//7z8AAAAAAADwPwAAAAAAAAAA"},'
    b'"week":"Z9qTsoTM4D+aDcflt///PzQbjstv/+8/NBuOy2//7z8","artists":["a1"],"known":1,'
    b'"first":"4dQD","affinity":["AA","NBuOy2//7z8"],"last_artists":["AA","4NQD"],'
    b'"last_tracks":[["t1"],"4NQD"],"genres":[["jazz"],"NBuOy2//7z8"],'
    b'"hours":["AA","80xT+e3//z8"],"days":["Aw","80xT+e3//z8"],'
    b'"devices":[["phone"],"5Zmm8tv/7z8"],"context_types":[[],""],'
    b'"session":{"v":2,"start":1767225600000,"steps":"4NQD","kinds":"AAM",'
    b'"contexts":[["phone",""],["",""]],"dropped":[0,null]}}}'
)


def test_a_version_5_user_state_restores_its_ids_with_the_newest_time() -> None:
    restored = UserState.from_state(VERSION_5_STATE, dedupe_capacity=8)
    assert restored.recent_tracks == ["t1"] and restored.features.events_seen == 2
    assert restored.seen.recall("e1", 41) == "replay"
    assert restored.seen.recall("e2", 99) == "duplicate"
    # Kept until the lateness has passed the user's newest event, then forgotten.
    restored.seen.forget_before(restored.features.latest_ts_ms)
    assert len(restored.seen) == 2
    restored.seen.forget_before(restored.features.latest_ts_ms + 1)
    assert len(restored.seen) == 0


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


def test_a_replay_folds_nothing_even_after_its_ids_are_forgotten() -> None:
    # A consumer-group rewind replays messages long applied: nothing counts twice.
    state = UserState.empty()
    messages = [
        (
            offset,
            orjson.dumps(
                make_event(event_id=f"e{offset}", ts=NOW_MS - 1_200_000 + offset * 120_000)
            ),
        )
        for offset in range(10)
    ]
    for offset, raw in messages:
        ingest_message(DECODER, state, b"u1", raw, offset, partition=3)
    before = state.to_state()
    assert len(state.seen) < 10  # the early ids are past the lateness: forgotten
    replays = [ingest_message(DECODER, state, b"u1", raw, o, partition=3) for o, raw in messages]
    assert state.to_state() == before
    assert all(replay.folded == [] and replay.rejections == [] for replay in replays)
    # Remembered ids go out again; forgotten ones, now too late, are skipped.
    assert [len(r.accepted) for r in replays] == [0] * 7 + [1] * 3
    assert [len(r.replays_skipped) for r in replays] == [1] * 7 + [0] * 3


def test_a_message_of_another_partition_is_never_taken_for_a_replay() -> None:
    state = UserState.empty()
    ingest_message(DECODER, state, b"u1", orjson.dumps(make_event(event_id="a")), 50, partition=1)
    later = make_event(event_id="b", ts=NOW_MS + 1)
    outcome = ingest_message(DECODER, state, b"u1", orjson.dumps(later), 7, partition=2)
    assert outcome.folded == [later]
    assert state.seen.last_position == (2, 7)


def test_an_accepted_event_replayed_after_newer_ones_goes_out_again_not_to_the_dlq() -> None:
    state = UserState.empty()
    first = orjson.dumps(make_event(event_id="a", ts=NOW_MS))
    ingest_message(DECODER, state, b"u1", first, 1)
    newer = make_event(event_id="b", ts=NOW_MS + 240_000)
    ingest_message(DECODER, state, b"u1", orjson.dumps(newer), 2)
    replay = ingest_message(DECODER, state, b"u1", first, 1)
    assert [e["event_id"] for e in replay.accepted] == ["a"] and replay.rejections == []


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


def test_an_earlier_message_delivered_after_a_later_one_is_folded_not_lost() -> None:
    # After a seek, a worker may see offset 9 before offsets 7 and 8 of the same partition.
    state = UserState.empty()
    later = make_event(event_id="c", ts=NOW_MS - 1_000)
    ingest_message(DECODER, state, b"u1", orjson.dumps(later), 9, partition=1)
    for offset, event_id in ((7, "a"), (8, "b")):
        event = make_event(event_id=event_id, ts=NOW_MS - 60_000 + offset)
        outcome = ingest_message(DECODER, state, b"u1", orjson.dumps(event), offset, partition=1)
        assert outcome.folded == [event]
    assert state.features.events_seen == 3


def test_a_track_state_is_stored_as_json_and_read_back_as_faust_s_json_codec_wrote_it() -> None:
    state = TrackState.empty()
    assert state.first_time(0, 7, 0)
    state.features.update(make_event(track_id="t1", ts=NOW_MS))
    stored = state.to_stored()
    faust_json_codec = json.dumps(state.to_state()).encode()  # what earlier releases stored
    for value in (stored, faust_json_codec, orjson.loads(stored)):
        restored = TrackState.from_stored(value)
        assert restored.to_state() == state.to_state()
    assert TrackState.from_stored(None).to_state() == TrackState.empty().to_state()
