"""Editorial sets: when a set fits, which set a track is picked from, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import CatalogError, EditorialSet, EditorialSets, load_editorial
from features.editorial import MAX_LINE_BYTES, MAX_SETS, MAX_TRACKS

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MONDAY = 1_767_571_200_000  # 2026-01-05T00:00:00Z
ROOT = Path(__file__).parents[3]

MORNING = {
    "name": "morning",
    "title": "Morning coffee",
    "track_ids": ["t1", "t2"],
    "boost": 0.15,
    "context": {"hours": [6, 7, 8, 9, 10], "devices": ["mobile"], "context_types": ["radio"]},
}


def at(hour: int, minute: int = 0) -> int:
    return MONDAY + hour * HOUR_MS + minute * 60_000


def test_a_morning_set_fits_only_its_hours() -> None:
    # UTC hour: 05    06    07    08    09    10    11
    #                 |<------ morning fits ------>|
    #           05:59 no; 06:00 yes ... 10:59 yes; 11:00 no
    morning = EditorialSet("morning", ("t1",), hours=frozenset(range(6, 11)))
    assert not morning.fits(at(5, 59), None)
    assert morning.fits(at(6), None)
    assert morning.fits(at(10, 59), None)
    assert not morning.fits(at(11), None)
    assert morning.fits(at(7) + 3 * DAY_MS, None), "every day, not only the first"


def test_the_hour_is_the_utc_hour_of_the_event_time_not_the_local_one() -> None:
    morning = EditorialSet("morning", ("t1",), hours=frozenset({7}))
    assert not morning.fits(at(20), {"hour": 7})
    assert morning.fits(at(7), {"hour": 20})


def test_a_set_without_context_fits_every_event() -> None:
    anywhere = EditorialSet("picks", ("t1",))
    for ts_ms in (at(0), at(13), at(23, 59)):
        for context in (None, {}, {"device": "tv", "context_type": "album"}):
            assert anywhere.fits(ts_ms, context)


def test_a_set_naming_devices_fits_only_those_devices_and_not_an_event_without_one() -> None:
    mobile = EditorialSet("commute", ("t1",), devices=frozenset({"mobile", "car"}))
    assert mobile.fits(at(8), {"device": "car"})
    assert not mobile.fits(at(8), {"device": "tv"})
    assert not mobile.fits(at(8), {"context_type": "radio"})
    assert not mobile.fits(at(8), None)
    assert not mobile.fits(at(8), {"device": ["mobile"]}), "not a string: not a device"


def test_a_set_naming_context_types_fits_only_those_types() -> None:
    radio = EditorialSet("radio", ("t1",), context_types=frozenset({"radio"}))
    assert radio.fits(at(8), {"context_type": "radio", "device": "tv"})
    assert not radio.fits(at(8), {"context_type": "album"})
    assert not radio.fits(at(8), {"device": "tv"})


def test_every_dimension_of_a_context_must_match() -> None:
    morning = EditorialSet.from_record(MORNING)
    assert morning.fits(at(7), {"device": "mobile", "context_type": "radio"})
    assert not morning.fits(at(12), {"device": "mobile", "context_type": "radio"})
    assert not morning.fits(at(7), {"device": "tv", "context_type": "radio"})
    assert not morning.fits(at(7), {"device": "mobile", "context_type": "album"})


def test_a_track_in_two_sets_takes_the_larger_boost() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("a-small", ("t1", "t2"), boost=0.05))
    sets.put(EditorialSet("z-large", ("t2", "t3"), boost=0.3))
    picks = [(track, s.name) for track, s in sets.picks(at(9), None)]
    assert picks == [("t2", "z-large"), ("t3", "z-large"), ("t1", "a-small")]


def test_on_equal_boosts_a_track_goes_to_the_name_first_alphabetically() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("beta", ("t1", "t2"), boost=0.2))
    sets.put(EditorialSet("alpha", ("t2", "t3"), boost=0.2))
    picks = [(track, s.name) for track, s in sets.picks(at(9), None)]
    assert picks == [("t2", "alpha"), ("t3", "alpha"), ("t1", "beta")]


def test_a_set_that_does_not_fit_gives_no_picks_and_no_boost_to_its_tracks() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("night", ("t1",), boost=0.9, hours=frozenset({2})))
    sets.put(EditorialSet("picks", ("t1", "t2"), boost=0.1))
    assert [(t, s.name) for t, s in sets.picks(at(14), None)] == [("t1", "picks"), ("t2", "picks")]
    assert [(t, s.name) for t, s in sets.picks(at(2), None)] == [("t1", "night"), ("t2", "picks")]


def test_picks_follow_every_put_and_remove() -> None:
    sets = EditorialSets()
    assert sets.picks(at(8), None) == []
    sets.put(EditorialSet("picks", ("t1",)))
    assert [t for t, _ in sets.picks(at(8), None)] == ["t1"]
    sets.put(EditorialSet("picks", ("t2", "t3")))  # a newer record replaces the set
    assert [t for t, _ in sets.picks(at(8), None)] == ["t2", "t3"]
    sets.put(EditorialSet("car", ("t4",), boost=0.5, devices=frozenset({"car"})))
    assert [t for t, _ in sets.picks(at(8), {"device": "car"})] == ["t4", "t2", "t3"]
    sets.remove("car")
    sets.remove("never-there")
    assert [t for t, _ in sets.picks(at(8), {"device": "car"})] == ["t2", "t3"]
    assert len(sets) == 1 and [s.name for s in sets] == ["picks"]


def test_a_device_no_set_names_picks_as_a_missing_one() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("car", ("t1",), devices=frozenset({"car"})))
    sets.put(EditorialSet("picks", ("t2",)))
    expected = sets.picks(at(8), None)
    assert sets.picks(at(8), {"device": "toaster"}) == expected
    assert sets.picks(at(8), {"device": 7}) == expected
    assert [t for t, _ in sets.picks(at(8), {"device": "car"})] == ["t1", "t2"]


def test_the_picks_list_is_the_callers_to_change() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("picks", ("t1", "t2")))
    sets.picks(at(8), None).clear()
    assert len(sets.picks(at(8), None)) == 2


def test_a_full_collection_refuses_a_new_set_but_replaces_a_live_one() -> None:
    sets = EditorialSets(max_sets=2)
    sets.put(EditorialSet("a", ("t1",)))
    sets.put(EditorialSet("b", ("t2",)))
    with pytest.raises(ValueError, match="at most 2 live sets; remove one before adding 'c'"):
        sets.put(EditorialSet("c", ("t3",)))
    sets.put(EditorialSet("b", ("t9",)))
    assert [s.track_ids for s in sets] == [("t1",), ("t9",)]
    sets.remove("a")
    sets.put(EditorialSet("c", ("t3",)))
    assert len(sets) == 2


track_ids = st.lists(st.sampled_from([f"t{i}" for i in range(12)]), min_size=1, max_size=8)
editorial_sets = st.builds(
    EditorialSet,
    name=st.sampled_from(["a", "b", "c", "d", "e"]),
    track_ids=track_ids.map(tuple),
    boost=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    hours=st.frozensets(st.integers(0, 23), max_size=4),
    devices=st.frozensets(st.sampled_from(["mobile", "tv"]), max_size=2),
    context_types=st.frozensets(st.sampled_from(["radio", "album"]), max_size=2),
    title=st.sampled_from(["", "Morning coffee", "Ünïcode ✓"]),
)
moments = st.tuples(
    st.integers(MONDAY, MONDAY + 7 * DAY_MS),
    st.none() | st.fixed_dictionaries({}, optional={"device": st.sampled_from(["mobile", "tv"])}),
)


@settings(deadline=None, max_examples=200)
@given(st.lists(editorial_sets, max_size=6), moments, st.randoms(use_true_random=False))
def test_picks_are_deterministic(
    given_sets: list[EditorialSet], moment: tuple[int, Any], rng: Any
) -> None:
    """Whatever order the sets arrive in: the same picks, and each rule holds."""
    ts_ms, context = moment
    forward, shuffled = EditorialSets(), EditorialSets()
    for s in given_sets:
        forward.put(s)
    live = {s.name: s for s in given_sets}  # the last of a name wins, in both
    reordered = list(live.values())
    rng.shuffle(reordered)
    for s in reordered:
        shuffled.put(s)
    picks = forward.picks(ts_ms, context)
    assert picks == shuffled.picks(ts_ms, context) == forward.picks(ts_ms, context)

    fitting = [s for s in live.values() if s.fits(ts_ms, context)]
    tracks = [track for track, _ in picks]
    assert len(tracks) == len(set(tracks)), "a track appears once"
    assert set(tracks) == {t for s in fitting for t in s.track_ids}
    for track, chosen in picks:
        holders = [s for s in fitting if track in s.track_ids]
        assert min(holders, key=lambda s: (-s.boost, s.name)) == chosen
    order = [(-s.boost, s.name, s.track_ids.index(track)) for track, s in picks]
    assert order == sorted(order)


@settings(deadline=None)
@given(editorial_sets)
def test_records_round_trip(editorial_set: EditorialSet) -> None:
    record = editorial_set.to_record()
    assert EditorialSet.from_record(record) == editorial_set
    assert orjson.loads(orjson.dumps(record)) == record


def test_the_smallest_record_takes_every_default_and_writes_no_empty_context() -> None:
    smallest = EditorialSet.from_record({"name": "picks", "track_ids": ["t1"], "note": "ignored"})
    assert smallest == EditorialSet("picks", ("t1",), 0.1, title="picks")
    assert smallest.to_record() == {
        "name": "picks",
        "title": "picks",
        "track_ids": ["t1"],
        "boost": 0.1,
    }
    assert EditorialSet.from_record({**smallest.to_record(), "context": {}}) == smallest


def test_a_full_record_is_read_and_written_back_in_sorted_order() -> None:
    record = {**MORNING, "context": {"hours": [9, 6], "devices": ["tv", "mobile"]}}
    morning = EditorialSet.from_record(record)
    assert morning.hours == {6, 9} and morning.devices == {"mobile", "tv"}
    assert morning.to_record()["context"] == {"hours": [6, 9], "devices": ["mobile", "tv"]}


def test_repeated_track_ids_are_dropped_keeping_the_first() -> None:
    s = EditorialSet.from_record({"name": "x", "track_ids": ["t3", "t1", "t3", "t2", "t1"]})
    assert s.track_ids == ("t3", "t1", "t2")
    assert EditorialSet("x", ("t1",) * (MAX_TRACKS + 5)).track_ids == ("t1",)


def test_a_set_built_in_code_is_checked_as_a_record_is() -> None:
    with pytest.raises(ValueError, match=r"boost: must be a finite number in 0\.\.1"):
        EditorialSet("x", ("t1",), boost=float("nan"))
    with pytest.raises(ValueError, match="track_ids: expected a list, got 't1'"):
        EditorialSet("x", "t1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": None}, "name: missing"),
        ({"name": ""}, "name: expected a non-empty string, got ''"),
        ({"name": 7}, "name: expected a non-empty string, got 7"),
        ({"name": "n" * 201}, "name: at most 200 characters, got 201"),
        ({"title": 3}, "title: expected a string of at most 200 characters, got 3"),
        ({"title": "t" * 201}, "title: expected a string of at most 200 characters"),
        ({"track_ids": None}, "track_ids: missing"),
        ({"track_ids": "t1"}, "track_ids: expected a list of track ids, got 't1'"),
        ({"track_ids": []}, "track_ids: expected at least one track id, got none"),
        ({"track_ids": ["t1", ""]}, "track_ids: expected non-empty strings, got ''"),
        ({"track_ids": ["t1", 5]}, "track_ids: expected non-empty strings, got 5"),
        ({"track_ids": ["t" * 129]}, "track_ids: a track id has at most 128 characters"),
        (
            {"track_ids": [f"t{i}" for i in range(MAX_TRACKS + 1)]},
            "track_ids: at most 1,000 tracks, got 1,001",
        ),
        ({"boost": -0.1}, "boost: must be a finite number in 0..1, got -0.1"),
        ({"boost": 1.5}, "boost: must be a finite number in 0..1, got 1.5"),
        ({"boost": float("inf")}, "boost: must be a finite number in 0..1, got inf"),
        ({"boost": "0.2"}, "boost: must be a finite number in 0..1, got '0.2'"),
        ({"boost": True}, "boost: must be a finite number in 0..1, got True"),
        ({"context": [6, 7]}, "context: expected an object, got \\[6, 7\\]"),
        ({"context": {"hour": [7]}}, "context: unknown key 'hour'; expected hours, devices"),
        ({"context": {"hours": 7}}, "context.hours: expected a list, got 7"),
        ({"context": {"hours": [24]}}, "context.hours: expected whole numbers 0..23 \\(UTC\\)"),
        ({"context": {"hours": [-1]}}, "context.hours: expected whole numbers 0..23"),
        ({"context": {"hours": [6.5]}}, "context.hours: expected whole numbers 0..23"),
        ({"context": {"hours": [True]}}, "context.hours: expected whole numbers 0..23"),
        ({"context": {"hours": [[6]]}}, "context.hours: expected whole numbers 0..23"),
        ({"context": {"devices": "mobile"}}, "context.devices: expected a list, got 'mobile'"),
        ({"context": {"devices": [""]}}, "context.devices: expected strings of 1-64"),
        ({"context": {"devices": ["d" * 65]}}, "context.devices: expected strings of 1-64"),
        ({"context": {"devices": [{"a": 1}]}}, "context.devices: expected strings of 1-64"),
        (
            {"context": {"context_types": [f"c{i}" for i in range(65)]}},
            "context.context_types: at most 64 values, got 65",
        ),
    ],
)
def test_a_bad_record_names_the_field(change: dict[str, Any], message: str) -> None:
    record = {k: v for k, v in {**MORNING, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message) as raised:
        EditorialSet.from_record(record)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 200


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="record: expected an object, got list"):
        EditorialSet.from_record(["morning", ["t1"]])  # type: ignore[arg-type]


def lines(*records: Any) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_a_file_reads_back_what_to_record_writes(tmp_path: Path, suffix: str) -> None:
    sets = [EditorialSet.from_record(MORNING), EditorialSet("picks", ("t9", "t1"), 0.05)]
    path = tmp_path / f"editorial{suffix}"
    path.write_bytes(b"\n" + lines(*(s.to_record() for s in sets)) + b"  \n")
    assert load_editorial(str(path)) == sets


def test_the_example_file_in_deploy_loads() -> None:
    sets = load_editorial(ROOT / "deploy" / "editorial.example.jsonl")
    assert len(sets) == 2 and any(s.hours for s in sets) and any(not s.hours for s in sets)


def test_an_empty_file_is_no_sets(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert load_editorial(tmp_path / "empty.jsonl") == []


def test_a_byte_order_mark_at_the_start_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines({"name": "x", "track_ids": ["t1"]}))
    assert [s.name for s in load_editorial(path)] == ["x"]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("e.jsonl", lines(MORNING) + b"{oops\n", "e.jsonl:2: not JSON"),
        ("e.jsonl", b"\n\n" + lines({"name": "x"}), "e.jsonl:3: track_ids: missing"),
        ("e.ndjson", b'["morning"]\n', "e.ndjson:1: record: expected an object, got list"),
        (
            "e.json",
            lines(MORNING, {**MORNING, "name": "late", "boost": 3}),
            "e.json:2: boost: must be a finite number in 0..1, got 3",
        ),
        ("e.jsonl", lines(MORNING) + b'{"name": "\xe9"}\n', "e.jsonl:2: not UTF-8 text"),
        ("e.csv", b"name,track_ids\n", "e.csv: unknown editorial format '.csv'"),
    ],
)
def test_a_bad_line_names_the_file_and_line(
    tmp_path: Path, name: str, content: bytes, where: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=where) as raised:
        load_editorial(path)
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)
    assert str(raised.value).startswith(str(path))


def test_a_name_used_twice_in_a_file_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    path.write_bytes(
        lines(MORNING, {"name": "picks", "track_ids": ["t1"]}) + b"\n" + lines(MORNING)
    )
    expected = "twice.jsonl:4: name: set 'morning' is already defined on line 1; one line per set"
    with pytest.raises(CatalogError, match=re.escape(expected)):
        load_editorial(path)


def test_a_line_too_long_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    huge = {"name": "huge", "track_ids": ["t1"], "note": "x" * MAX_LINE_BYTES}
    path.write_bytes(lines(MORNING, huge))
    with pytest.raises(CatalogError, match=r"long\.jsonl:2: line longer than 1,000,000 bytes"):
        load_editorial(path)


def test_a_line_at_the_limit_is_read(tmp_path: Path) -> None:
    record = orjson.dumps({"name": "x", "track_ids": ["t1"], "note": ""})
    padded = record[:-2] + b"x" * (MAX_LINE_BYTES - len(record)) + record[-2:]
    assert len(padded) == MAX_LINE_BYTES
    path = tmp_path / "full.jsonl"
    path.write_bytes(padded)  # the last line, with no newline
    assert [s.name for s in load_editorial(path)] == ["x"]
    path.write_bytes(padded + b"\n" + lines({"name": "y", "track_ids": ["t2"]}))
    assert [s.name for s in load_editorial(path)] == ["x", "y"]


def test_a_file_with_more_sets_than_a_worker_keeps_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_bytes(lines(*({"name": f"s{i}", "track_ids": ["t1"]} for i in range(MAX_SETS + 1))))
    with pytest.raises(CatalogError, match=f"many.jsonl:{MAX_SETS + 1}: more than {MAX_SETS}"):
        load_editorial(path)
