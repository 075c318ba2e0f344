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


def test_a_record_round_trips() -> None:
    track = TrackInfo.from_record(GOOD)
    assert track.genres == ("jazz", "soul") and track.content_vector == (0.5, -1.0)
    assert TrackInfo.from_record(track.to_record()) == track


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"track_id": None}, "track_id: missing"),
        ({"artist_id": ""}, "artist_id: expected a non-empty string"),
        ({"genres": "jazz"}, "genres: expected a list of strings"),
        ({"duration_ms": -5}, "duration_ms: must be >= 1"),
        ({"duration_ms": 1.5}, "duration_ms: expected a whole number"),
        ({"explicit": "yes"}, "explicit: expected true or false"),
        ({"content_vector": ["x"]}, "content_vector: expected a list of numbers"),
    ],
)
def test_a_bad_record_names_its_field_and_problem(change: dict[str, Any], message: str) -> None:
    record = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        TrackInfo.from_record(record)


def test_csv_and_json_lines_give_the_same_tracks(tmp_path: Path) -> None:
    csv = tmp_path / "catalog.csv"
    csv.write_text(
        "track_id,artist_id,genres,duration_ms,release_year,explicit,content_vector\n"
        "t1,a1,jazz|soul,200000,2019,true,0.5 -1\n"
        "t2,a2,,,,,\n"
    )
    jsonl = tmp_path / "catalog.jsonl"
    jsonl.write_bytes(
        orjson.dumps(GOOD) + b"\n\n" + orjson.dumps({"track_id": "t2", "artist_id": "a2"})
    )
    assert load_catalog(csv) == load_catalog(jsonl)
    assert load_catalog(csv)[1] == TrackInfo("t2", "a2")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("c.csv", "track_id,artist_id,duration_ms\nt1,a1,200000\nt2,a2,long\n", "c.csv:3"),
        ("c.jsonl", '{"track_id": "t1", "artist_id": "a1"}\n{oops\n', "c.jsonl:2"),
        ("c.jsonl", '{"track_id": "t1"}\n', "c.jsonl:1: artist_id: missing"),
        ("c.xml", "", "unknown catalog format"),
    ],
)
def test_a_bad_file_names_the_line(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CatalogError, match=where):
        load_catalog(path)
