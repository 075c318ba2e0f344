"""``tunestream report``: the headline, the sections and their notes, the plots, bad inputs.

The inputs are small hand-made dicts shaped as ``evaluate --json``, ``bench --json``
and ``simulate --closed-loop --json`` write them; only the command line test and
the list-evaluation tests replay (a few hundred simulated events).
"""

from __future__ import annotations

import json
import random
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from features import TrackInfo
from online_models.list_evaluation import TUNESTREAM, ListEvalConfig, ListReplay
from online_models.list_quality import gini
from streams.tools.bench import LATENCY_EDGES_MS, latency_histogram, percentile
from streams.tools.cli import main
from streams.tools.eval_report import ReportError
from streams.tools.report import (
    PLOTS,
    headline_rows,
    load_input,
    lorenz_curve,
    lorenz_gini,
    markdown,
    merge,
    write_report,
)
from tests.unit.test_cli_errors import one_line_error

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIST_POLICIES = ("random", "popularity", "biasedmf", "tunestream", "tunestream-no-rerank")
LOOP_POLICIES = ("tunestream", "no-exploration-rerank", "random", "popularity", "oracle")


def list_figures(hit: float, gini_: float, counts: list[int]) -> dict[str, Any]:
    return {
        "hit_rate_at_10": hit,
        "hit_rate_at_10_not_recent": hit,
        "ndcg_at_10": hit / 2,
        "coverage": 0.4,
        "distinct_artists": 8.0,
        "distinct_genres": 6.0,
        "artist_gini": gini_,
        "discovery_share": 0.3,
        "lists": 120,
        "artist_gini_exposed": gini_,
        "exposure_per_artist": counts,
    }


def evaluation() -> dict[str, Any]:
    """An ``evaluate --json`` answer: 3,000 events, lists from event 1,000 on."""
    ranking = {"hit_rate@10": 0.2, "ndcg@10": 0.1, "events_ranked": 50}
    return {
        "source": "simulator (hand-made)",
        "events": 3_000,
        "positive_share": 0.6,
        "engagement": {
            "logistic": {"roc_auc": 0.78, "log_loss": 0.42, "ece": 0.01, "us_per_event": 20.0}
        },
        "ranking": {
            "taste": ranking,
            "popularity": {**ranking, "hit_rate@10": 0.1},
            "BiasedMF": {**ranking, "hit_rate@10": 0.16},
            "random": {**ranking, "hit_rate@10": 0.0},
        },
        "curve": [
            {
                "events": events,
                "engagement": {"logistic": {"roc_auc": 0.7, "log_loss": 0.5}},
                "ranking": {
                    name: {"hit_rate@10": value, "events_ranked": 10}
                    for name, value in (("taste", 0.2), ("popularity", 0.1), ("random", None))
                },
            }
            for events in (1_000, 2_000, 3_000)
        ],
        "curve_window": 2_000,
        "lists": {
            "events": 3_000,
            "size": 10,
            "warmup_events": 1_000,
            "sample_every": 2,
            "max_lists": 2_000,
            "refresh_every": 1_000,
            "snapshots": 3,
            "lists_made": 120,
            "repeat_share": 0.1,
            "catalogue_tracks": 100,
            "catalogue_artists": 6,
            "policies": {
                "random": list_figures(0.01, 0.1, [180, 200, 200, 210, 210]),
                "popularity": list_figures(0.125, 0.8, [20, 1180]),
                "biasedmf": list_figures(0.1, 0.83, [1200]),
                "tunestream": list_figures(0.25, 0.5, [100, 200, 300, 600]),
                "tunestream-no-rerank": list_figures(0.3, 0.7, [100, 1100]),
            },
            "by_snapshot": [
                {
                    "snapshot": version,
                    "from_event": version * 1_000,
                    "lists": 60,
                    "hit_rate_at_10": {name: 0.1 * version for name in LIST_POLICIES},
                }
                for version in (1, 2)
            ],
        },
    }


def bench(histogram: bool = True) -> dict[str, Any]:
    latencies = [20, 21, 21, 22, 23, 25, 30, 42, 90]
    result: dict[str, Any] = {
        "events": 20_000,
        "latency_rate": 1000.0,
        "latency_duration_s": 20.0,
        "latency_p50_ms": 22.0,
        "latency_p95_ms": 37.0,
        "latency_p99_ms": 42.0,
        "latency_lists": len(latencies),
        "cpu_count": 2,
    }
    if histogram:
        result["latency_histogram_ms"] = latency_histogram(latencies)
    return result


def closed_loop() -> dict[str, Any]:
    """A ``simulate --closed-loop --json`` answer: 5 policies over 4 days."""
    days = [0, 1, 2, 3]
    policies = {}
    for rank, name in enumerate(LOOP_POLICIES):
        level = 0.3 + 0.1 * rank
        # random's listeners skip day 0 (None: nobody listened): a gap in its lines
        first = None if name == "random" else level
        series = {key: [first, *[level] * 3] for key in ("skip_rate", "save_rate", "diversity")}
        policies[name] = {
            "days": days,
            **series,
            "return_rate": [0.5] * 4,
            "satisfaction": [level + 0.01 * day for day in days],
            "summary": {
                "skip_rate": level,
                "save_rate": level,
                "diversity": level,
                "return_rate": 0.5,
                "satisfaction": level + 0.015,
                "satisfaction_last_week": level + 0.02,
            },
        }
    return {"config": {"days": 4, "seed": 1}, "policies": policies}


def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import matplotlib`` (and any of its modules) raises ImportError."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def sections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


# The markdown -------------------------------------------------------------------------------


def test_the_markdown_opens_with_the_headline_table_of_every_input_given() -> None:
    text = markdown(merge(evaluation(), bench(), closed_loop()), plots=[])
    assert sections(text)[0] == "## Headline"
    headline = text.split("## Headline")[1].split("## ")[0]
    assert "| hit-rate@10, published lists (120 lists) | 0.250 |" in headline
    assert "popularity 0.125 (2.00×), BiasedMF 0.100 (2.50×)" in headline
    assert "| artist exposure Gini (0 even, 1 concentrated) | 0.500 |" in headline
    assert "| latency p50 / p99, event → list published at 1,000 events/s | 22 / 42 ms |" in (
        headline
    )
    assert "| closed-loop satisfaction, mean over 4 days (last week) | 0.315 (0.320) |" in headline
    assert "oracle 0.715 (0.720)" in headline
    assert "Not in this report" not in text


def test_without_lists_the_headline_compares_the_taste_ranker_with_its_multiples() -> None:
    report = evaluation()
    del report["lists"]
    rows = headline_rows(merge(report, None, None))
    assert rows == [
        ("hit-rate@10, taste ranker", "0.200", "popularity 0.100 (2.00×), BiasedMF 0.160 (1.25×)")
    ]


@pytest.mark.parametrize(
    ("missing", "section", "command"),
    [
        ("bench", "## Latency", "tunestream bench --json > bench.json"),
        (
            "closed_loop",
            "## Closed loop",
            "tunestream simulate --closed-loop --json > closed_loop.json",
        ),
    ],
)
def test_an_input_not_given_leaves_its_section_out_with_a_note_naming_its_command(
    missing: str, section: str, command: str
) -> None:
    inputs = {"bench": bench(), "closed_loop": closed_loop(), missing: None}
    text = markdown(merge(evaluation(), inputs["bench"], inputs["closed_loop"]), plots=[])
    assert section not in sections(text)
    notes = [line for line in text.splitlines() if line.startswith("*Not in this report")]
    assert len(notes) == 1 and f"`{command}`" in notes[0]


def test_the_closed_loop_section_has_a_summary_row_per_policy() -> None:
    text = markdown(merge(evaluation(), None, closed_loop()), plots=[])
    loop = text.split("## Closed loop")[1]
    assert "| oracle | 0.715 | 0.720 | 0.700 | 0.700 | 0.500 | 0.700 |" in loop
    assert "| no exploration, no re-ranking |" in loop


# The plots ----------------------------------------------------------------------------------


def test_with_matplotlib_every_plot_is_a_png_linked_from_the_markdown(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = write_report(merge(evaluation(), bench(), closed_loop()), tmp_path)
    pngs = [path for path in written if path.suffix == ".png"]
    assert sorted(path.name for path in pngs) == sorted(PLOTS)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    for path in pngs:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert f"![{PLOTS[path.name]}]({path.name})" in text


def test_a_bench_file_without_a_histogram_gets_a_note_and_no_histogram(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = write_report(merge(evaluation(), bench(histogram=False), None), tmp_path)
    assert "latency_histogram.png" not in {path.name for path in written}
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "No latency histogram: this bench file has no `latency_histogram_ms`" in text
    assert "| p99 | 42 ms |" in text


def test_without_matplotlib_no_png_is_written_and_the_markdown_says_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    written = write_report(merge(evaluation(), bench(), closed_loop()), tmp_path)
    assert [path.name for path in written] == ["report.json", "report.md"]
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "pip install 'tunestream[report]'" in text and ".png" not in text


def test_report_json_holds_every_input_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    inputs = {"evaluation": "file e.json", "bench": "file b.json"}
    write_report(merge(evaluation(), bench(), None, inputs), tmp_path)
    merged = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert merged == {
        "inputs": inputs,
        "evaluation": evaluation(),
        "bench": bench(),
        "closed_loop": None,
    }


def test_the_lorenz_curve_of_equal_exposure_is_the_diagonal() -> None:
    xs, ys = lorenz_curve([7, 7, 7, 7, 7])
    assert xs == ys == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert lorenz_gini(xs, ys) == pytest.approx(0.0)


def test_artists_never_shown_bend_the_lorenz_curve_to_the_gini_of_every_artist() -> None:
    draws = random.Random(3)
    for _ in range(20):
        counts = [draws.randint(1, 50) for _ in range(draws.randint(1, 12))]
        population = len(counts) + draws.randint(0, 8)
        xs, ys = lorenz_curve(counts, population)
        assert len(xs) == population + 1 and ys[-1] == pytest.approx(1.0)
        assert all(b >= a for a, b in pairwise(ys))  # never decreasing
        padded = counts + [0] * (population - len(counts))
        assert lorenz_gini(xs, ys) == pytest.approx(gini(padded))


# Bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"engagement": {}, ', "not JSON (line 1, column"),
        ("[1, 2]", "not what `tunestream evaluate --json` writes (no engagement, ranking)"),
        ('{"engagement": {}}', "not what `tunestream evaluate --json` writes (no ranking)"),
    ],
)
def test_a_file_that_is_not_the_input_is_a_report_error_naming_it(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "evaluation.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError, match="--evaluation") as caught:
        load_input(path, "evaluation")
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_a_missing_file_is_a_report_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"--bench .*nothing\.json: cannot read it"):
        load_input(tmp_path / "nothing.json", "bench")


def test_the_command_refuses_a_bad_input_in_one_line_before_evaluating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bench.json"
    bad.write_text("not json", encoding="utf-8")
    argv = ["report", "--out", str(tmp_path / "out"), "--bench", str(bad)]
    line = one_line_error(capsys, argv)
    assert "--bench" in line and "not JSON" in line
    assert not (tmp_path / "out" / "report.md").exists()


def test_the_command_refuses_an_out_path_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    assert "is a file, not a folder" in one_line_error(capsys, ["report", "--out", str(taken)])


def test_the_command_evaluates_in_process_when_no_evaluation_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    loop = tmp_path / "loop.json"
    loop.write_text(json.dumps(closed_loop()), encoding="utf-8")
    argv = ["report", "--out", str(tmp_path), "--events", "300", "--closed-loop", str(loop)]
    assert main(argv) == 0
    assert f"report: written to {tmp_path / 'report.md'}" in capsys.readouterr().err
    merged = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert merged["evaluation"]["events"] == 300
    assert merged["inputs"]["evaluation"] == "run in process: 300 simulated events"
    assert merged["closed_loop"] == closed_loop() and merged["bench"] is None


# What the report reads from the evaluation and the bench ------------------------------------


@pytest.fixture(scope="module")
def list_replay() -> ListReplay:
    catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 5}", ("rock",), 200_000) for i in range(40)}
    run = ListReplay(catalog, ListEvalConfig(size=5, warmup_events=30, refresh_every=25))
    for i in range(150):
        user = f"u{i % 4}"
        run.process(
            {"event_id": f"e{i}", "user_id": user, "track_id": f"t{(i * 7) % 40}", "ts": i * 60_000}
            | {"type": "save"}
        )
    return run


def test_by_snapshot_splits_each_policys_lists_and_hits_by_model_version(
    list_replay: ListReplay,
) -> None:
    report = list_replay.report()
    versions = report["by_snapshot"]
    assert [v["snapshot"] for v in versions] == [1, 2, 3, 4, 5]  # lists from event 30 on
    assert [v["from_event"] for v in versions] == [25, 50, 75, 100, 125]
    assert sum(v["lists"] for v in versions) == report["lists_made"]
    for name, tally in list_replay.tallies.items():
        hits = sum(round(v["hit_rate_at_10"][name] * v["lists"]) for v in versions)
        assert hits == tally.hits, name


def test_exposure_per_artist_holds_every_item_shown_and_gives_the_artist_gini(
    list_replay: ListReplay,
) -> None:
    report = list_replay.report()
    for name, figures in report["policies"].items():
        counts = figures["exposure_per_artist"]
        assert counts == sorted(counts)
        assert sum(counts) == list_replay.tallies[name].items, name
        padded = counts + [0] * (report["catalogue_artists"] - len(counts))
        assert gini(padded) == pytest.approx(figures["artist_gini"])
    assert report["policies"][TUNESTREAM]["exposure_per_artist"]


def test_the_latency_histogram_counts_each_latency_once_in_its_bucket() -> None:
    draws = random.Random(5)
    latencies = [draws.lognormvariate(3.2, 0.8) for _ in range(500)] + [-1, 60_000, 75_000]
    histogram = latency_histogram(latencies)
    edges, counts = histogram["edges_ms"], histogram["counts"]
    assert len(edges) == len(counts) + 1 and set(edges) <= set(LATENCY_EDGES_MS)
    assert (histogram["under"], histogram["over"]) == (1, 2)
    assert sum(counts) == 500 and counts[0] and counts[-1]
    for (low, high), count in zip(pairwise(edges), counts, strict=True):
        assert count == sum(1 for x in latencies if low <= x < high)
    p50 = percentile([x for x in latencies if 0 <= x < 60_000], 50)
    below = sum(c for low, c in zip(edges, counts, strict=False) if low <= p50)
    assert below >= 250  # the median's bucket and those before it hold half the lists


def test_no_latency_gives_an_empty_histogram() -> None:
    assert latency_histogram([]) == {"edges_ms": [], "counts": [], "under": 0, "over": 0}
