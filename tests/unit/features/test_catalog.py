"""Catalog records and files: clear errors that name the field, the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from features import CatalogError, TrackInfo, load_catalog

GOOD = {
    "track_id": "t1",
    "artist_id": "a1",
    "genres": ["jazz", "soul"],
    "duration_ms": 200_000,
    "release_year": 2019,
    "explicit": True,
    "content_vector": [0.5, -1],
}
FULL = TrackInfo("t1", "a1", ("jazz", "soul"), 200_000, 2019, True, False, False, (0.5, -1.0))


def test_a_record_round_trips() -> None:
    track = TrackInfo.from_record(GOOD)
    assert track == FULL
    assert TrackInfo.from_record(track.to_record()) == track
    assert orjson.loads(orjson.dumps(track.to_record())) == track.to_record()


def test_the_smallest_record_takes_every_default_and_writes_no_none() -> None:
    track = TrackInfo.from_record({"track_id": "t2", "artist_id": "a2", "title": "ignored"})
    assert track == TrackInfo("t2", "a2")
    assert track.to_record() == {
        "track_id": "t2",
        "artist_id": "a2",
        "genres": [],
        "explicit": False,
        "editorial": False,
        "blocked": False,
    }


def test_a_simulator_record_is_read() -> None:
    record = {
        "track_id": "t00042",
        "artist_id": "a0007",
        "genres": ["jazz"],
        "duration_ms": 200_000,
        "release_year": 2019,
        "explicit": False,
        "editorial": True,
    }
    track = TrackInfo.from_record(record)
    assert track.editorial and not track.blocked and track.release_year == 2019


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"track_id": None}, "track_id: missing"),
        ({"artist_id": None}, "artist_id: missing"),
        ({"artist_id": ""}, "artist_id: expected a non-empty string"),
        ({"track_id": 7}, "track_id: expected a non-empty string, got 7"),
        ({"genres": "jazz"}, "genres: expected a list of non-empty strings"),
        ({"genres": ["jazz", 3]}, "genres: expected a list of non-empty strings"),
        ({"genres": ["jazz", ""]}, "genres: expected a list of non-empty strings"),
        ({"duration_ms": -5}, "duration_ms: must be >= 1, got -5"),
        ({"duration_ms": 0}, "duration_ms: must be >= 1, got 0"),
        ({"duration_ms": 1.5}, "duration_ms: expected a whole number, got 1.5"),
        ({"duration_ms": "200000"}, "duration_ms: expected a whole number"),
        ({"duration_ms": True}, "duration_ms: expected a whole number, got True"),
        ({"release_year": -1}, "release_year: must be >= 0"),
        ({"explicit": "yes"}, "explicit: expected true or false, got 'yes'"),
        ({"editorial": 1}, "editorial: expected true or false, got 1"),
        ({"blocked": "false"}, "blocked: expected true or false"),
        ({"content_vector": ["x"]}, "content_vector: expected a list of finite numbers"),
        ({"content_vector": [float("nan")]}, "content_vector: expected a list of finite"),
        ({"content_vector": [True]}, "content_vector: expected a list of finite numbers"),
        ({"content_vector": "0.5 1"}, "content_vector: expected a list of finite numbers"),
    ],
)
def test_a_bad_record_names_its_field_and_problem(change: dict[str, Any], message: str) -> None:
    record = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message) as raised:
        TrackInfo.from_record(record)
    assert "\n" not in str(raised.value)


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="record: expected an object, got list"):
        TrackInfo.from_record(["t1", "a1"])  # type: ignore[arg-type]


def test_csv_and_json_lines_give_the_same_tracks(tmp_path: Path) -> None:
    csv = tmp_path / "catalog.csv"
    csv.write_text(
        "track_id,artist_id,genres,duration_ms,release_year,explicit,content_vector\n"
        "t1,a1,jazz|soul,200000,2019,true,0.5 -1\n"
        "t2,a2,,,,,\n"
    )
    jsonl = tmp_path / "catalog.jsonl"
    jsonl.write_bytes(
        orjson.dumps(GOOD) + b"\n\n" + orjson.dumps({"track_id": "t2", "artist_id": "a2"}) + b"\n"
    )
    assert load_catalog(csv) == load_catalog(jsonl) == [FULL, TrackInfo("t2", "a2")]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_every_json_lines_suffix_reads_a_written_catalog(tmp_path: Path, suffix: str) -> None:
    tracks = [FULL, TrackInfo("t2", "a2", blocked=True), TrackInfo("t3", "a2", ("pop",), 1)]
    path = tmp_path / f"catalog{suffix}"
    path.write_bytes(b"\n".join(orjson.dumps(t.to_record()) for t in tracks))
    assert load_catalog(str(path)) == tracks


def test_csv_reads_every_spelling_of_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "flags.csv"
    path.write_text(
        # A byte-order mark first, as spreadsheet exports write.
        "\ufefftrack_id,artist_id,explicit,editorial,blocked\n"
        "t1,a1,TRUE,yes,1\n"
        "t2,a1,false,No,0\n"
        "t3,a1, , ,\n"
    )
    flags = [(t.explicit, t.editorial, t.blocked) for t in load_catalog(path)]
    assert flags == [(True, True, True), (False, False, False), (False, False, False)]


def test_csv_round_trips_what_to_record_writes(tmp_path: Path) -> None:
    tracks = [FULL, TrackInfo("t2", "a2", ("a b", "c"), 1, 0, False, True, True, (1e-9, 3.0))]
    columns = "track_id,artist_id,genres,duration_ms,release_year,explicit,editorial,blocked"
    lines = [f"{columns},content_vector"]
    for t in tracks:
        r = t.to_record()
        cells = [r[name] for name in ("track_id", "artist_id")]
        cells += ["|".join(r["genres"]), str(r["duration_ms"]), str(r["release_year"])]
        cells += [str(r[flag]).lower() for flag in ("explicit", "editorial", "blocked")]
        cells.append(" ".join(repr(x) for x in r["content_vector"]))
        lines.append(",".join(cells))
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join(lines) + "\n")
    assert load_catalog(path) == tracks


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("c.csv", "track_id,artist_id,duration_ms\nt1,a1,200000\nt2,a2,long\n",
         "c.csv:3: duration_ms: expected a whole number, got 'long'"),
        ("c.csv", "track_id,artist_id,explicit\nt1,a1,maybe\n",
         "c.csv:2: explicit: expected true or false, got 'maybe'"),
        ("c.csv", "track_id,artist_id\nt1,a1\nt2,a2,extra\n",
         "c.csv:3: more cells than the header has columns"),
        ("c.csv", "track_id,genres\nt1,jazz\n", "c.csv:2: artist_id: missing"),
        ("c.csv", "track_id,artist_id,content_vector\nt1,a1,0.5 x\n",
         "c.csv:2: content_vector: expected numbers separated by spaces"),
        ("c.csv", "track_id,artist_id,content_vector\nt1,a1,0.5 nan\n",
         "c.csv:2: content_vector: expected a list of finite numbers"),
        ("c.jsonl", '{"track_id": "t1", "artist_id": "a1"}\n{oops\n', "c.jsonl:2: not JSON"),
        ("c.jsonl", '\n\n{"track_id": "t1"}\n', "c.jsonl:3: artist_id: missing"),
        ("c.ndjson", '["t1", "a1"]\n', "c.ndjson:1: record: expected an object"),
        ("c.json", '{"track_id": "t1", "artist_id": "a1", "duration_ms": -1}\n',
         "c.json:1: duration_ms: must be >= 1, got -1"),
        ("c.xml", "", "c.xml: unknown catalog format '.xml'"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_line(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CatalogError, match=where) as raised:
        load_catalog(path)
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)


def test_an_empty_file_is_an_empty_catalog(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("track_id,artist_id\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    assert load_catalog(tmp_path / "empty.csv") == load_catalog(tmp_path / "empty.jsonl") == []
