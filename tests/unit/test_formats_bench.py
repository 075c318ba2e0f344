"""``python -m benchmarks.formats``: honest writers, and a row for every format.

The writers are checked the only way that matters: a small simulated sample is
written in each format and read back by :func:`streams.tools.loaders.load`; the
events that come back must be the ones each format can carry, no more, no fewer.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter, defaultdict
from typing import Any

import pytest

from benchmarks.formats import (
    MOVIELENS_GENRE_OF,
    MSSD_SKIP_1_BELOW_MS,
    SIMULATOR,
    SOURCES,
    WrittenLog,
    acoustic_vector,
    main,
    mbid,
    scrobbled,
    simulated_stream,
    tables,
    write_all,
)
from features import TrackInfo
from features.event_types import engagement_label
from streams.contracts.events import Event
from streams.tools.console import write_tables
from streams.tools.evaluate import EvaluateOptions, events_and_catalog
from streams.tools.loaders import (
    FORMATS,
    MOVIELENS_GENRES,
    MSSD_SKIP_1_MS,
    MSSD_SKIP_2_MS,
    MSSD_SKIP_3_SHARE,
    SCROBBLE_MS_PLAYED,
    LoadedLog,
    load,
)
from streams.tools.simulator import GENRES, Population, PopulationConfig, Track

Sample = tuple[list[Event], list[Track], dict[str, WrittenLog]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """A small world's 800 events, written in every format once."""
    population = Population(
        PopulationConfig(seed=2, n_users=12, n_tracks=150, n_artists=30, clock="story")
    )
    events = population.take(800)
    written = write_all(events, population.tracks, tmp_path_factory.mktemp("formats"))
    return events, population.tracks, written


def loaded(written: WrittenLog) -> LoadedLog:
    return load(list(written.paths), written.fmt, catalog=written.catalog)


def kinds(events: list[Event]) -> Counter[str]:
    return Counter(e["type"] for e in events)


def test_the_sample_has_every_event_type(sample: Sample) -> None:
    events, _, _ = sample
    assert set(kinds(events)) == {"play", "skip", "save"}  # else the checks below prove less


def test_the_stream_is_the_one_tunestream_evaluate_replays() -> None:
    events, tracks = simulated_stream(300)
    theirs, catalog, _ = events_and_catalog(EvaluateOptions(simulated_events=300))
    assert events == theirs
    assert {t.track_id: TrackInfo.from_record(t.to_dict()) for t in tracks} == catalog


def test_every_format_has_a_source_and_a_writer(sample: Sample) -> None:
    assert set(SOURCES) == {SIMULATOR, *FORMATS}
    assert set(sample[2]) == set(FORMATS)


def test_simulated_genres_map_one_to_one_onto_movielens_genres() -> None:
    assert set(MOVIELENS_GENRE_OF) == set(GENRES)
    assert len(set(MOVIELENS_GENRE_OF.values())) == len(GENRES)
    assert set(MOVIELENS_GENRE_OF.values()) <= set(MOVIELENS_GENRES) - {"unknown"}


def test_jsonl_comes_back_verbatim_with_its_catalog(sample: Sample) -> None:
    events, tracks, written = sample
    log = loaded(written["jsonl"])
    assert log.events == events
    expected = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in tracks}
    assert {r["track_id"]: TrackInfo.from_record(r) for r in log.catalog} == expected


def test_movielens_keeps_every_play_skip_and_save_at_second_precision(sample: Sample) -> None:
    events, tracks, written = sample
    log = loaded(written["movielens"])
    items = {t.track_id: n for n, t in enumerate(tracks, 1)}
    users: dict[str, int] = {}
    for e in events:
        users.setdefault(e["user_id"], len(users) + 1)
    infos = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in tracks}

    def expected_type(e: Event) -> str:  # an abandoned play is rated 2: a skip
        abandoned = e["type"] == "play" and not engagement_label(e, infos[e["track_id"]])
        return "skip" if abandoned else str(e["type"])

    expected = Counter(
        (f"ml-u{users[e['user_id']]}", f"ml-m{items[e['track_id']]}", expected_type(e))
        for e in events
    )
    got = Counter((e["user_id"], e["track_id"], e["type"]) for e in log.events)
    assert got == expected
    assert len(log.events) == len(events)
    # A save sits at its play's time, a second apart at most: nothing else moves.
    assert sorted(e["ts"] // 1000 for e in log.events if e["type"] != "save") == sorted(
        e["ts"] // 1000 for e in events if e["type"] != "save"
    )


def test_movielens_items_keep_their_genres_but_lose_their_artists(sample: Sample) -> None:
    _, tracks, written = sample
    records = {r["track_id"]: r for r in loaded(written["movielens"]).catalog}
    assert len(records) == len(tracks)
    for n, track in enumerate(tracks, 1):
        record = records[f"ml-m{n}"]
        assert set(record["genres"]) == {MOVIELENS_GENRE_OF[g] for g in track.genres}
        assert record["release_year"] == track.release_year
        assert record["artist_id"] == f"ml-a{n}"


def expected_scrobbles(events: list[Event], tracks: list[Track]) -> Counter[tuple[str, str, int]]:
    by_id = {t.track_id: t for t in tracks}
    return Counter(
        (e["user_id"], mbid("track", e["track_id"]), e["ts"] // 1000 * 1000)
        for e in events
        if scrobbled(e, by_id[e["track_id"]])
    )


@pytest.mark.parametrize("fmt", ["lastfm", "lastfm-csv"])
def test_lastfm_formats_hold_the_scrobbled_plays_only(sample: Sample, fmt: str) -> None:
    events, tracks, written = sample
    log = loaded(written[fmt])
    got = Counter((e["user_id"], e["track_id"], e["ts"]) for e in log.events)
    assert got == expected_scrobbles(events, tracks)
    assert kinds(log.events) == {"play": len(log.events)}  # no skip, no save comes back
    assert {e["ms_played"] for e in log.events} == {SCROBBLE_MS_PLAYED}
    assert kinds(events)["play"] >= len(log.events) > 0
    artists = {mbid("track", t.track_id): mbid("artist", t.artist_id) for t in tracks}
    assert all(r["artist_id"] == artists[r["track_id"]] for r in log.catalog)
    assert {r["track_id"] for r in log.catalog} == {e["track_id"] for e in log.events}


def test_a_short_play_is_not_scrobbled() -> None:
    track = Track("t1", "a1", ("jazz",), 600_000, 2020, False, False, 1.0)
    assert scrobbled({"type": "play", "ms_played": 240_000}, track)  # 4 minutes
    assert not scrobbled({"type": "play", "ms_played": 239_999}, track)
    short = Track("t2", "a1", ("jazz",), 200_000, 2020, False, False, 1.0)
    assert scrobbled({"type": "play", "ms_played": 100_000}, short)  # half of it
    assert not scrobbled({"type": "skip", "ms_played": 200_000}, short)


def test_both_lastfm_formats_read_back_as_the_same_events(sample: Sample) -> None:
    _, _, written = sample
    tsv, csv = loaded(written["lastfm"]), loaded(written["lastfm-csv"])
    assert sorted(tsv.events, key=lambda e: e["event_id"]) == sorted(
        csv.events, key=lambda e: e["event_id"]
    )


def test_mssd_sessions_become_listeners_with_their_order_skips_and_tracks(sample: Sample) -> None:
    events, tracks, written = sample
    log = loaded(written["mssd"])
    by_id = {t.track_id: t for t in tracks}
    sessions: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e["type"] != "save":
            sessions[e["session_id"]].append(e)
    got: dict[str, list[Event]] = defaultdict(list)
    for e in log.events:
        got[e["user_id"]].append(e)
    assert set(got) == set(sessions)
    for session_id, heard in sessions.items():
        back = got[session_id]
        assert [(e["track_id"], e["type"]) for e in back] == [
            (e["track_id"], e["type"]) for e in heard
        ]
        for original, e in zip(heard, back, strict=True):
            duration = by_id[e["track_id"]].duration_ms
            if original["type"] == "skip":
                brief = original["ms_played"] < MSSD_SKIP_1_BELOW_MS
                assert e["ms_played"] == (MSSD_SKIP_1_MS if brief else MSSD_SKIP_2_MS)
            elif original["ms_played"] >= duration:
                assert e["ms_played"] == duration
            else:
                assert e["ms_played"] == round(MSSD_SKIP_3_SHARE * duration)
        start_hour = heard[0]["ts"] // 3_600_000 * 3_600_000
        assert back[0]["ts"] == start_hour
    assert kinds(log.events)["skip"] == kinds(events)["skip"]


def test_mssd_tracks_carry_their_duration_year_and_acoustic_vector(sample: Sample) -> None:
    events, tracks, written = sample
    records = {r["track_id"]: r for r in loaded(written["mssd"]).catalog}
    assert set(records) == {e["track_id"] for e in events if e["type"] != "save"}
    for track in tracks:
        if track.track_id in records:
            record = records[track.track_id]
            assert record["duration_ms"] == track.duration_ms
            assert record["release_year"] == track.release_year
            assert tuple(record["content_vector"]) == acoustic_vector(track)


def test_acoustic_vectors_put_a_genre_together_and_apart_from_others() -> None:
    def vector(track_id: str, genre: str) -> list[float]:
        return list(acoustic_vector(Track(track_id, "a", (genre,), 1, 2020, False, False, 0.5)))

    def distance(a: list[float], b: list[float]) -> float:
        return sum((x - y) ** 2 for x, y in zip(a[:7], b[:7], strict=True)) ** 0.5

    jazz1, jazz2, metal = vector("t1", "jazz"), vector("t2", "jazz"), vector("t3", "metal")
    assert 0 < distance(jazz1, jazz2) < distance(jazz1, metal)


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    """One ``--quick --json`` run, in process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["--quick", "--json"])
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_a_quick_run_scores_lists_for_every_source(quick: dict[str, Any]) -> None:
    assert list(quick["sources"]) == list(SOURCES)
    for source, f in quick["sources"].items():
        assert f["events"] > 0 and f["users"] > 0 and f["lists"] > 0, source
        for rate in (*f["hit_rate_at_10"].values(), *f["artist_gini"].values()):
            assert 0.0 <= rate <= 1.0, source
        assert (f["log_bytes"] > 0) == (source != SIMULATOR)
        assert f["report"]["events"] == f["events"]


def test_the_jsonl_log_scores_exactly_as_the_simulator(quick: dict[str, Any]) -> None:
    simulator, jsonl = quick["sources"][SIMULATOR], quick["sources"]["jsonl"]
    keys = ("events", "users", "tracks", "catalogue", "types", "hit_rate_at_10", "artist_gini")
    assert {k: jsonl[k] for k in keys} == {k: simulator[k] for k in keys}


def test_formats_without_skips_or_saves_load_none(quick: dict[str, Any]) -> None:
    sources = quick["sources"]
    assert set(sources["lastfm"]["types"]) == {"play"}
    assert set(sources["mssd"]["types"]) == {"play", "skip"}
    assert set(sources["movielens"]["types"]) == {"play", "skip", "save"}


def test_the_table_has_a_row_per_source(quick: dict[str, Any]) -> None:
    out = io.StringIO()
    write_tables(tables(quick), out)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[3:]] == list(SOURCES)


def test_too_few_events_is_argparses_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--events", "10"])
    assert stopped.value.code == 2
    assert "must be at least 100" in capsys.readouterr().err


def test_every_written_log_has_bytes_on_disk(sample: Sample) -> None:
    _, _, written = sample
    for log in written.values():
        assert log.bytes > 0
