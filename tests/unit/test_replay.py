"""``tunestream replay`` without a broker: re-based times, the in-process lists, the reader's
bookkeeping and the command line's one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features import TrackInfo
from streams.settings import Settings
from streams.tools.cli import main
from streams.tools.in_process import planned_lists
from streams.tools.loaders import load
from streams.tools.replay import ListReader, ReplayOptions, rebase, start_of

FIXTURES = Path(__file__).parents[1] / "fixtures"
START = 1_800_000_000_000


@given(
    st.lists(st.integers(0, 10**10), min_size=1, max_size=50),
    st.floats(0.01, 1_000.0),
    st.integers(946_684_800_000, 2_000_000_000_000),
)
def test_rebased_times_start_at_the_start_keep_order_and_divide_gaps_by_speed(
    offsets: list[int], speed: float, start: int
) -> None:
    events = [
        {"event_id": str(i), "ts": 1_000_000_000_000 + o} for i, o in enumerate(sorted(offsets))
    ]
    rebased = rebase(events, speed, start)
    times = [e["ts"] for e in rebased]
    assert times[0] == start
    assert times == sorted(times)
    span = events[-1]["ts"] - events[0]["ts"]
    assert abs((times[-1] - start) - span / speed) <= 0.5
    assert [e["event_id"] for e in rebased] == [e["event_id"] for e in events]


def test_unpaced_replays_end_at_now_so_no_event_lies_in_the_future() -> None:
    events = [{"ts": 0}, {"ts": 86_400_000}]  # a day
    start = start_of(events, speed=1.0, paced=False, now=START)
    assert rebase(events, 1.0, start)[-1]["ts"] == START


def test_the_loaders_give_the_same_event_ids_at_every_run_so_a_rerun_is_deduplicated() -> None:
    for fmt in ("movielens", "lastfm", "mssd", "jsonl"):
        ids = [
            [e["event_id"] for e in load(FIXTURES / "loaders" / fmt, fmt).events] for _ in (1, 2)
        ]
        assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0]), fmt


def test_in_process_lists_follow_the_events_clock_debounce() -> None:
    catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i}", ("rock",), 200_000) for i in range(10)}
    # one user, a play every second; the debounce lets one list through per 2 s
    events = [
        {
            "event_id": f"e{i}",
            "user_id": "u1",
            "track_id": f"t{i}",
            "type": "play",
            "ts": START + i * 1_000,
            "ms_played": 200_000,
        }
        for i in range(8)
    ]
    records = planned_lists(events, catalog, Settings(refresh_interval_s=2.0))
    assert [r["trigger_event_id"] for r in records] == ["e0", "e2", "e4", "e6"]
    slower = rebase(events, 0.5, START)  # half speed: gaps of 2 s, every event lists
    assert len(planned_lists(slower, catalog, Settings(refresh_interval_s=2.0))) == 8


def test_the_reader_keeps_only_the_replays_lists_and_counts_accepted_and_refused_events() -> None:
    settings = Settings()
    reader = ListReader(settings, frozenset({"e1", "e2", "e3"}))
    reader._list({"trigger_event_id": "e1", "items": []})
    reader._list({"trigger_event_id": "old", "items": []})
    reader._forwarded([{"event_id": "e1"}, {"event_id": "e2"}, {"event_id": "zz"}])
    reader._forwarded([{"event_id": "e1"}])  # a replayed forward: counted once
    reader._dead_letter({"event_id": "e3", "reason": "too_late"})
    assert list(reader.lists) == ["e1"]
    assert reader.accounted == 3 and dict(reader.refused) == {"too_late": 1}


def test_options_refuse_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplayOptions(log=("x",), speed=0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["replay", "x", "--speed", "0"], "must be > 0"),
        (["replay", "x", "--format", "csv"], "invalid choice"),
        (["replay", "x", "--compare"], "--compare needs --score"),
        (["replay"], "the following arguments are required: log"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_missing_log_gives_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/nonexistent/log.jsonl", "--broker", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no such file or directory" in err and len(err.splitlines()) == 1, err


def test_evaluate_published_scores_a_log_as_its_replay_at_speed_1_is_planned() -> None:
    # replay --compare plans the re-based events; evaluate --published the log as it is:
    # a whole number of days apart, the same events give the same lists and figures
    from streams.tools.console import Reporter
    from streams.tools.evaluate import EvaluateOptions, evaluate
    from streams.tools.in_process import score_planned
    from streams.tools.replay import catalog_of

    folder = FIXTURES / "replay"
    log = load(folder / "listens.jsonl", "jsonl", catalog=folder / "tracks.jsonl")
    settings = Settings()
    options = EvaluateOptions(
        log=(str(folder / "listens.jsonl"),),
        catalog=str(folder / "tracks.jsonl"),
        models=("logistic",),
        list_samples=0,
        published=settings,
    )
    offline = evaluate(options, Reporter(enabled=False))["published"]
    week_later = rebase(log.events, 1.0, int(log.events[0]["ts"]) + 7 * 86_400_000)
    replayed = score_planned(week_later, catalog_of(log), settings)
    assert offline["judged"] > 200 and offline["lists_used"] > 100
    assert offline == replayed
