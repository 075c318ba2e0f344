"""Public log formats become events the worker accepts, in event-time order, by documented rules."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.catalog import TrackInfo
from features.errors import TunestreamError
from streams.contracts.events import EVENT_SCHEMA_FILE, EventDecoder, load_schema
from streams.tools.loaders import (
    FORMATS,
    MOVIELENS_DURATION_MS,
    MOVIELENS_SHIFT_S,
    MOVIELENS_SKIP_MS,
    MSSD_SKIP_1_MS,
    MSSD_SKIP_2_MS,
    MSSD_SLOT_S,
    MSSD_UNKNOWN_DURATION_MS,
    SCROBBLE_MS_PLAYED,
    LoadedLog,
    LoaderError,
    load,
    scrobble_time_ms,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "loaders"
LASTFM_1K = FIXTURES / "lastfm" / "userid-timestamp-artid-artname-traid-traname.tsv"
#: Each format's fixture, as a user would name it.
SOURCES = {
    "jsonl": FIXTURES / "jsonl" / "events.jsonl",
    "movielens": FIXTURES / "movielens",
    "lastfm": LASTFM_1K,
    "lastfm-csv": FIXTURES / "lastfm-csv",
    "mssd": FIXTURES / "mssd",
}
SCHEMA = load_schema(EVENT_SCHEMA_FILE)


@pytest.fixture(scope="module")
def logs() -> dict[str, LoadedLog]:
    return {fmt: load(path, fmt) for fmt, path in SOURCES.items()}


def loader_error(*args: Any, **kwargs: Any) -> str:
    """The message of the LoaderError that ``load(*args, **kwargs)`` raises; it is one line."""
    with pytest.raises(LoaderError) as caught:
        load(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- every format -------------------------------------------------------------------------------


def test_every_format_has_a_fixture() -> None:
    assert sorted(SOURCES) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_event_is_accepted_by_the_worker_decoder_and_the_published_schema(
    fmt: str, logs: dict[str, LoadedLog]
) -> None:
    decoder = EventDecoder(now_ms=lambda: 2**50)  # logs lie in the past of any clock
    events = logs[fmt].events
    assert len(events) >= 18
    for event in events:
        jsonschema.validate(event, SCHEMA)
        accepted, rejected = decoder.decode(event["user_id"].encode(), orjson.dumps(event))
        assert rejected == [] and accepted == [event]


@pytest.mark.parametrize("fmt", FORMATS)
def test_events_are_in_event_time_order_with_unique_ids(
    fmt: str, logs: dict[str, LoadedLog]
) -> None:
    stamps = [event["ts"] for event in logs[fmt].events]
    assert stamps == sorted(stamps)
    ids = [event["event_id"] for event in logs[fmt].events]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("fmt", ["movielens", "lastfm", "lastfm-csv", "mssd"])
def test_catalog_records_are_read_by_trackinfo_and_cover_the_events(
    fmt: str, logs: dict[str, LoadedLog]
) -> None:
    tracks = {TrackInfo.from_record(record).track_id for record in logs[fmt].catalog}
    assert len(tracks) == len(logs[fmt].catalog)
    unknown = {event["track_id"] for event in logs[fmt].events} - tracks
    # The last MSSD row plays a track that tf_mini.csv does not describe, on purpose.
    assert len(unknown) == (1 if fmt == "mssd" else 0)


def test_a_loader_error_is_a_tunestream_error_and_a_value_error() -> None:
    assert issubclass(LoaderError, TunestreamError) and issubclass(LoaderError, ValueError)


def test_an_unknown_format_names_the_file_and_the_formats() -> None:
    message = loader_error(SOURCES["jsonl"], "spotify-wrapped")
    assert message.startswith(f"{SOURCES['jsonl']}: unknown log format 'spotify-wrapped'")
    assert "lastfm-csv" in message


def test_a_missing_file_or_an_empty_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert loader_error(missing, "jsonl") == f"{missing}: no such file or directory"
    assert loader_error(tmp_path, "lastfm").startswith(f"{tmp_path}: no *.tsv file")


def test_options_that_do_not_apply_are_refused() -> None:
    assert "lastfm-csv format only" in loader_error(SOURCES["movielens"], "movielens", user_id="x")
    assert "lastfm and lastfm-csv only" in loader_error(SOURCES["mssd"], "mssd", skip_gap_s=30)
    assert "(0, 3600]" in loader_error(LASTFM_1K, "lastfm", skip_gap_s=0)
    assert "errors must be one of" in loader_error(LASTFM_1K, "lastfm", errors="ignore")


# --- jsonl ----------------------------------------------------------------------------------------


def test_jsonl_events_come_back_as_written_sorted_by_ts(logs: dict[str, LoadedLog]) -> None:
    lines = SOURCES["jsonl"].read_text().splitlines()
    written = [json.loads(line) for line in lines if line.strip()]
    log = logs["jsonl"]
    assert log.events == sorted(written, key=lambda e: e["ts"])
    assert (log.lines_read, log.skipped, log.catalog) == (len(lines), {"blank": 1}, [])


def test_jsonl_takes_its_catalog_from_a_catalog_file() -> None:
    log = load(SOURCES["jsonl"], "jsonl", catalog=FIXTURES / "jsonl" / "tracks.csv")
    by_id = {record["track_id"]: TrackInfo.from_record(record) for record in log.catalog}
    assert {e["track_id"] for e in log.events} <= set(by_id)
    assert by_id["t-moss-01"].content_vector == (0.1, -0.2, 0.3)


def test_a_bad_jsonl_line_names_file_line_and_reason(tmp_path: Path) -> None:
    good = orjson.dumps(json.loads(SOURCES["jsonl"].read_text().splitlines()[0])).decode()
    no_user = good.replace('"user_id":"ana",', "")
    path = write(tmp_path / "bad.jsonl", f"{good}\n\n{no_user}\n{{oops\n")
    assert loader_error(path, "jsonl") == (
        f"{path}:3: event 'fx-001': missing_field: user_id is required"
    )
    log = load(path, "jsonl", errors="skip")
    assert len(log.events) == 1
    assert log.skipped == {"blank": 1, "missing_field": 1, "not_json": 1}
    assert log.lines_read == 4 == len(log.events) + log.lines_skipped


def test_jsonl_refuses_what_the_worker_refuses(tmp_path: Path) -> None:
    event = json.loads(SOURCES["jsonl"].read_text().splitlines()[0])
    cases = {"type": "like", "ts": 1_000, "ms_played": -1}
    lines = [orjson.dumps({**event, field: value}).decode() for field, value in cases.items()]
    path = write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    log = load(path, "jsonl", errors="skip")
    assert log.skipped == {"unknown_event_type": 1, "out_of_range": 1, "negative_ms_played": 1}


# --- movielens ------------------------------------------------------------------------------------


def ratings() -> list[tuple[int, int, int, int]]:
    rows = (FIXTURES / "movielens" / "u.data").read_text().split("\n")
    return [tuple(int(f) for f in row.split("\t")) for row in rows if row]  # type: ignore[misc]


def test_movielens_ratings_follow_the_mapping_rule(logs: dict[str, LoadedLog]) -> None:
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in logs["movielens"].events:
        by_pair.setdefault((event["user_id"], event["track_id"]), []).append(event)
    rows = ratings()
    assert len(by_pair) == len(rows)
    expected_kinds = {
        1: ["skip"],
        2: ["skip"],
        3: ["play"],
        4: ["play", "save"],
        5: ["play", "save"],
    }
    for user, item, rating, _ in rows:
        events = by_pair[(f"ml-u{user}", f"ml-m{item}")]
        assert [e["type"] for e in events] == expected_kinds[rating], (user, item, rating)
        played = {"skip": MOVIELENS_SKIP_MS, "play": MOVIELENS_DURATION_MS, "save": 0}
        assert [e["ms_played"] for e in events] == [played[e["type"]] for e in events]
        assert len({e["ts"] for e in events}) == 1


def test_movielens_time_moves_by_whole_weeks_and_keeps_weekday_and_hour(
    logs: dict[str, LoadedLog],
) -> None:
    user, item, _, seconds = ratings()[0]  # 3 4 5 884562011
    event = next(e for e in logs["movielens"].events if e["event_id"] == f"ml-{user}-{item}")
    original = datetime.fromtimestamp(seconds, UTC)
    shifted = datetime.fromtimestamp(event["ts"] / 1000, UTC)
    assert shifted - original == timedelta(seconds=MOVIELENS_SHIFT_S)
    assert (shifted.weekday(), shifted.hour, shifted.minute) == (
        original.weekday(),
        original.hour,
        original.minute,
    )
    assert original.year == 1998 and shifted.year == 2018


def test_movielens_catalog_reads_latin1_titles_genres_and_years(
    logs: dict[str, LoadedLog],
) -> None:
    catalog = {record["track_id"]: record for record in logs["movielens"].catalog}
    assert len(catalog) == 10
    assert catalog["ml-m2"]["title"] == "Café Méridien (1996)"
    assert catalog["ml-m8"]["title"] == "Noël à Tromsø (1992)"
    assert TrackInfo.from_record(catalog["ml-m10"]) == TrackInfo(
        "ml-m10", "ml-a10", ("drama", "film-noir", "war", "western"), 200_000, 1996
    )
    # The "unknown" movie: its only flag is the unknown genre, and it has no date.
    assert TrackInfo.from_record(catalog["ml-m7"]) == TrackInfo("ml-m7", "ml-a7", (), 200_000)


def test_movielens_finds_u_item_next_to_u_data_or_takes_it_given(tmp_path: Path) -> None:
    alone = tmp_path / "u1.base"
    alone.write_bytes((FIXTURES / "movielens" / "u.data").read_bytes())
    assert load(alone, "movielens").catalog == []
    given = load([alone, FIXTURES / "movielens" / "u.item"], "movielens")
    beside = load(FIXTURES / "movielens" / "u.data", "movielens")
    assert given.catalog == beside.catalog and len(beside.catalog) == 10


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("1\t2\t3", "expected 4 tab-separated fields (user item rating timestamp), got 3"),
        ("1\t2\t6\t881250949", "rating: expected 1 to 5, got 6"),
        ("1\tx\t3\t881250949", "item id: expected a whole number, got 'x'"),
    ],
)
def test_a_bad_rating_line_names_file_and_line(tmp_path: Path, line: str, detail: str) -> None:
    path = write(tmp_path / "u.data", f"1\t1\t3\t881250949\n{line}\n")
    assert loader_error(path, "movielens") == f"{path}:2: {detail}"


def test_a_bad_u_item_line_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t1\t3\t881250949\n")
    flags = "|".join(["0"] * 18 + ["2"])
    (tmp_path / "u.item").write_bytes(f"1|Été (1990)|01-Jan-1990||url|{flags}\n".encode("latin-1"))
    message = loader_error(tmp_path, "movielens")
    assert message == f"{tmp_path / 'u.item'}:1: western flag: expected true or false, got '2'"


# --- lastfm ---------------------------------------------------------------------------------------


def lastfm_rows() -> list[list[str]]:
    return [line.split("\t") for line in LASTFM_1K.read_text().splitlines()]


def test_lastfm_every_scrobble_is_a_play_and_a_verbatim_repeat_is_dropped(
    logs: dict[str, LoadedLog],
) -> None:
    log = logs["lastfm"]
    rows = lastfm_rows()
    assert {(e["type"], e["ms_played"]) for e in log.events} == {("play", SCROBBLE_MS_PLAYED)}
    assert len(log.events) == len(rows) - 1 and log.skipped == {"duplicate": 1}
    first = log.events[0]  # the oldest: user_000003's last row
    assert first["user_id"] == "user_000003"
    assert first["ts"] == int(datetime(2006, 7, 31, 23, 47, 15, tzinfo=UTC).timestamp()) * 1000


def test_lastfm_ids_are_mbids_else_stable_hashes_of_the_names(
    logs: dict[str, LoadedLog],
) -> None:
    catalog = {r["title"]: r for r in logs["lastfm"].catalog}
    paper = next(row for row in lastfm_rows() if row[5] == "Paper Lanterns")
    assert catalog["Paper Lanterns"]["track_id"] == paper[4]
    assert catalog["Paper Lanterns"]["artist_id"] == paper[2]
    blues = catalog["Porch Light Blues"]
    assert blues["track_id"].startswith("lfm-t-") and blues["artist_id"].startswith("lfm-a-")
    # The CSV export of another user names the same MBID-less track: same ids.
    csv_catalog = {(r["artist_name"], r["title"]): r for r in logs["lastfm-csv"].catalog}
    assert csv_catalog[('Dusty "Doc" Harlan', "Porch Light Blues")] == blues


def test_lastfm_skip_gap_turns_quick_successors_into_skips() -> None:
    log = load(LASTFM_1K, "lastfm", skip_gap_s=30)
    skips = {(e["user_id"], e["ms_played"]) for e in log.events if e["type"] == "skip"}
    # Glass Orchard 23:04:52 -> Moth to Flame 23:05:10; Tidewater 12:26:11 -> 12:26:31.
    assert skips == {("user_000001", 18_000), ("user_000002", 20_000)}
    # The repeated Tidewater row (gap 0) was dropped first, so it did not become a skip.
    assert log.skipped == {"duplicate": 1}


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("u1\t2009-05-04T23:08:57Z\t\tA\t\t", "no track MBID and no track name"),
        ("u1\t2009-05-04T23:08:57Z\t\tA\tT", "expected 6 tab-separated fields"),
        ("u1\tyesterday\t\tA\t\tT", "time: expected ISO-8601 such as 2009-05-04T23:08:57Z"),
        ("u1\t1999-05-04T23:08:57Z\t\tA\t\tT", "out_of_range"),
    ],
)
def test_a_bad_lastfm_line_names_file_and_line(tmp_path: Path, line: str, detail: str) -> None:
    path = write(tmp_path / "log.tsv", f"u1\t2009-05-04T23:08:57Z\t\tA\t\tT\n{line}\n")
    assert loader_error(path, "lastfm").startswith(f"{path}:2: ")
    assert detail in loader_error(path, "lastfm")


def test_a_line_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_bytes(b"u1\t2009-05-04T23:08:57Z\t\tA\t\tT\nu1\t2009-05-04T23:09:57Z\t\t\xe9\t\tT\n")
    assert loader_error(path, "lastfm").startswith(f"{path}:2: not utf-8 text")
    assert load(path, "lastfm", errors="skip").skipped == {"not_utf8": 1}


# --- lastfm-csv -----------------------------------------------------------------------------------


def test_a_headerless_export_is_read_as_artist_album_track_date() -> None:
    log = load(FIXTURES / "lastfm-csv" / "bo.csv", "lastfm-csv")
    assert log.skipped == {"undated": 1} and log.lines_read == 12
    newest = log.events[-1]
    assert (newest["user_id"], newest["ts"]) == ("bo", 1_612_096_440_000)  # 31 Jan 2021 12:34
    titles = {r["title"] for r in log.catalog}
    assert {"Mule Train, Part 2", "夜明けの信号", "Static Bloom (Live)"} <= titles


def test_an_export_with_a_header_is_read_by_column_name() -> None:
    log = load(FIXTURES / "lastfm-csv" / "scrobbles-ana.csv", "lastfm-csv", user_id="ana")
    assert log.skipped == {"header": 1, "undated": 1} and len(log.events) == 9
    assert {e["user_id"] for e in log.events} == {"ana"}
    newest = log.events[-1]
    assert newest["ts"] == 1_612_096_440_000
    assert newest["track_id"] == "92c3517c-4150-5832-891e-02ed3286d50d"  # the track_mbid column
    # Times come from `uts` (to the second), the first column, behind a byte-order mark.
    assert log.events[-2]["ts"] == 1_612_096_230_000  # utc_time says only "12:30"


def test_the_file_name_is_the_user_unless_one_is_given(logs: dict[str, LoadedLog]) -> None:
    assert Counter(e["user_id"] for e in logs["lastfm-csv"].events) == {
        "bo": 11,
        "scrobbles-ana": 9,
    }


def test_a_header_without_a_time_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "me.csv", "artist,album,track\nA,B,C\n")
    assert loader_error(path, "lastfm-csv") == f"{path}:1: header names no time column"


def test_a_short_csv_row_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "me.csv", "A,B,C,31 Jan 2021 12:34\n\nA,B,C\n")
    assert loader_error(path, "lastfm-csv") == f"{path}:3: expected 4 cells, got 3"


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_every_export_time_spelling_gives_the_same_instant(moment: datetime) -> None:
    moment = moment.replace(second=0, microsecond=0)
    ms = int(moment.timestamp()) * 1000
    spellings = [
        moment.strftime("%d %b %Y %H:%M"),
        moment.strftime("%d %b %Y, %H:%M"),
        moment.isoformat(),
        str(ms // 1000),
        str(ms),
    ]
    assert [scrobble_time_ms(text) for text in spellings] == [ms] * len(spellings)


# --- mssd -----------------------------------------------------------------------------------------


def mssd_rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / "mssd" / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_mssd_sessions_are_users_and_skip_2_is_a_skip(logs: dict[str, LoadedLog]) -> None:
    durations = {
        r["track_id"]: round(float(r["duration"]) * 1000) for r in mssd_rows("tf_mini.csv")
    }
    events = {e["event_id"]: e for e in logs["mssd"].events}
    rows = mssd_rows("log_mini.csv")
    assert len(events) == len(rows)
    for row in rows:
        event = events[f"{row['session_id']}-{row['session_position']}"]
        assert event["user_id"] == event["session_id"] == row["session_id"]
        assert event["context"] == {
            "hour": int(row["hour_of_day"]),
            "context_type": row["context_type"],
        }
        duration = durations.get(row["track_id_clean"], MSSD_UNKNOWN_DURATION_MS)
        if row["skip_2"] == "true":
            brief = MSSD_SKIP_1_MS if row["skip_1"] == "true" else MSSD_SKIP_2_MS
            assert (event["type"], event["ms_played"]) == ("skip", min(brief, duration))
        elif row["not_skipped"] == "true":
            assert (event["type"], event["ms_played"]) == ("play", duration)
        else:
            assert (event["type"], event["ms_played"]) == ("play", round(0.75 * duration))


def test_mssd_time_is_date_hour_and_position(logs: dict[str, LoadedLog]) -> None:
    for row in mssd_rows("log_mini.csv"):
        day = datetime.fromisoformat(row["date"]).replace(tzinfo=UTC)
        offset = timedelta(
            hours=int(row["hour_of_day"]),
            seconds=(int(row["session_position"]) - 1) * MSSD_SLOT_S,
        )
        event = next(
            e
            for e in logs["mssd"].events
            if e["event_id"] == f"{row['session_id']}-{row['session_position']}"
        )
        assert event["ts"] == int((day + offset).timestamp()) * 1000


def test_a_session_keeps_its_order_across_midnight(logs: dict[str, LoadedLog]) -> None:
    radio = [e for e in logs["mssd"].events if e["context"]["context_type"] == "radio"]
    assert [int(e["event_id"].rsplit("-", 1)[1]) for e in radio] == list(range(1, 8))
    assert [e["context"]["hour"] for e in radio] == [23] * 5 + [0] * 2


def test_mssd_catalog_has_played_tracks_with_their_acoustic_vectors(
    logs: dict[str, LoadedLog],
) -> None:
    features = {r["track_id"]: r for r in mssd_rows("tf_mini.csv")}
    played = {e["track_id"] for e in logs["mssd"].events}
    for record in logs["mssd"].catalog:
        row = features[record["track_id"]]
        track = TrackInfo.from_record(record)
        assert track.content_vector == tuple(float(row[f"acoustic_vector_{i}"]) for i in range(8))
        assert track.duration_ms == round(float(row["duration"]) * 1000)
        assert track.release_year == int(row["release_year"])
        assert track.artist_id == f"mssd-a-{track.track_id}"
    unplayed = set(features) - played
    assert len(unplayed) == 1
    assert logs["mssd"].skipped == {"header": 2, "track_not_in_log": 1}


def test_a_bad_track_features_row_names_file_and_line(tmp_path: Path) -> None:
    source = FIXTURES / "mssd"
    (tmp_path / "log_mini.csv").write_bytes((source / "log_mini.csv").read_bytes())
    lines = (source / "tf_mini.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",nan"
    write(tmp_path / "tf_mini.csv", "\n".join(lines) + "\n")
    message = loader_error(tmp_path, "mssd")
    assert message == (
        f"{tmp_path / 'tf_mini.csv'}:4: catalog record: "
        "content_vector: expected a list of finite numbers"
    )


def test_mssd_needs_its_columns_and_its_file_names(tmp_path: Path) -> None:
    log = write(tmp_path / "log_0.csv", "session_id,session_position\ns1,1\n")
    message = loader_error(log, "mssd")
    assert message.startswith(f"{log}:1: header lacks column(s) track_id_clean, skip_1")
    other = write(tmp_path / "sessions.csv", "")
    assert loader_error(other, "mssd") == (
        f"{other}: not an MSSD file: expected log_*.csv or tf_*.csv"
    )
