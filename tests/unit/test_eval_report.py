"""``tunestream evaluate --report DIR``: the curve over the replay and the report's files.

The replays are small simulated streams (a few hundred events, one engagement
candidate), so each takes about a second; the figures checked are the report's
own, never numbers written into the test.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from online_models.evaluation import PrequentialReplay, _recent_figures
from online_models.quality import RollingAUC, RollingLogLoss
from streams.tools.cli import main
from streams.tools.eval_report import NO_PLOTS, hit_rate_multiples, write_report
from streams.tools.evaluate import engagement_rows, ranking_rows
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import catalog_of
from tests.unit.test_cli_errors import one_line_error

FIXTURES = Path(__file__).parents[1] / "fixtures" / "loaders" / "jsonl"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = [
    "engagement_auc.png",
    "engagement_log_loss.png",
    "ranking_hit_rate.png",
    "ranking_bars.png",
]


def simulated_replay(events: int = 650, **options: Any) -> dict[str, Any]:
    population = Population(
        PopulationConfig(seed=3, n_users=20, n_tracks=120, n_artists=20, clock="story")
    )
    run = PrequentialReplay(catalog_of(population), engagement=["logistic"], **options)
    for event in population.take(events):
        run.process(event)
    return {"source": "simulator (test)", **run.report()}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return simulated_replay(curve_every=100)


def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import matplotlib`` (and any of its modules) raises ImportError."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk, which follows the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# The curve --------------------------------------------------------------------


def test_the_curve_has_a_point_every_curve_every_events_and_one_at_the_last(
    report: dict[str, Any],
) -> None:
    assert [point["events"] for point in report["curve"]] == [
        100,
        200,
        300,
        400,
        500,
        600,
        650,
    ]
    for point in report["curve"]:
        assert set(point["engagement"]) == set(report["engagement"])
        assert set(point["ranking"]) == set(report["ranking"])


def test_the_report_with_its_curve_is_strict_json(report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_the_curve_leaves_the_whole_replay_figures_unchanged(report: dict[str, Any]) -> None:
    other = simulated_replay(curve_every=7, curve_window=21)
    for key in ("events", "positive_share", "ranking"):
        assert other[key] == report[key]
    for name, figures in report["engagement"].items():
        assert {k: v for k, v in other["engagement"][name].items() if k != "us_per_event"} == {
            k: v for k, v in figures.items() if k != "us_per_event"
        }


def test_a_window_as_long_as_the_replay_ends_on_the_whole_replay_figures() -> None:
    full = simulated_replay(events=600, curve_every=100, curve_window=600)
    last = full["curve"][-1]
    for name, figures in full["engagement"].items():
        assert last["engagement"][name]["roc_auc"] == pytest.approx(figures["roc_auc"])
        assert last["engagement"][name]["log_loss"] == pytest.approx(figures["log_loss"])
    for name, figures in full["ranking"].items():
        assert last["ranking"][name] == {
            "hit_rate@10": figures["hit_rate@10"],
            "events_ranked": figures["events_ranked"],
        }


def test_one_step_windows_count_each_ranked_event_in_exactly_one_point(
    report: dict[str, Any],
) -> None:
    steps = simulated_replay(curve_every=100, curve_window=100)
    for name, figures in steps["ranking"].items():
        ranked = [point["ranking"][name]["events_ranked"] for point in steps["curve"]]
        assert sum(ranked) == figures["events_ranked"] > 0


def test_the_curves_figures_are_those_of_the_live_quality_metrics_ties_included() -> None:
    rng = random.Random(11)
    # Probabilities in tenths: many ties; 0.0 and 1.0 exercise the log loss clip.
    pairs = [(rng.random() < 0.7, rng.randint(0, 10) / 10) for _ in range(500)]
    auc, loss = RollingAUC(window=500), RollingLogLoss(window=500)
    for y, p in pairs:
        auc.update(y, p)
        loss.update(y, p)
    figures = _recent_figures(pairs)
    assert figures["roc_auc"] == pytest.approx(auc.get())
    assert figures["log_loss"] == pytest.approx(loss.get())
    assert _recent_figures([(True, 0.9), (True, 0.2)])["roc_auc"] is None  # one class only
    assert _recent_figures([]) == {"roc_auc": None, "log_loss": None}


@pytest.mark.parametrize(("option", "value"), [("curve_every", 0), ("curve_window", 0)])
def test_a_curve_option_that_is_not_a_whole_number_above_0_is_refused(
    option: str, value: int
) -> None:
    with pytest.raises(ValueError, match=option):
        options: dict[str, Any] = {option: value}
        PrequentialReplay({}, **options)


# The report's files --------------------------------------------------------------


def test_write_report_writes_every_file(report: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "new" / "report"
    written = write_report(report, out_dir)
    names = ["report.json", "report.md", "curve.csv", *PLOTS]
    assert written == [out_dir / name for name in names]
    assert all(path.stat().st_size > 0 for path in written)
    assert json.loads((out_dir / "report.json").read_text()) == report


def test_the_markdown_holds_the_figures_of_both_tables_and_the_multiples(
    report: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)  # the plots are not what is checked here, and cost a second
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    for row in [*engagement_rows(report), *ranking_rows(report)]:
        assert "| " + " | ".join(row) + " |" in md
    multiples = hit_rate_multiples(report)
    for name in ("popularity", "BiasedMF"):
        value = multiples[name]
        assert (f"{value:.2f}×" if value is not None else "n/a") in md
    assert f"{report['events']:,} events of the simulator (test)" in md


def test_the_csv_has_a_row_per_point_with_the_curve_figures(
    report: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)  # the plots are not what is checked here, and cost a second
    write_report(report, tmp_path)
    header, *rows = [line.split(",") for line in (tmp_path / "curve.csv").read_text().split()]
    assert header[:3] == ["events", "logistic.roc_auc", "logistic.log_loss"]
    assert "taste.hit_rate@10" in header
    assert [int(row[0]) for row in rows] == [point["events"] for point in report["curve"]]
    column = header.index("taste.hit_rate@10")
    last = report["curve"][-1]["ranking"]["taste"]["hit_rate@10"]
    assert rows[-1][column] == ("" if last is None else str(last))


def test_with_matplotlib_the_plots_are_png_images_linked_from_the_markdown(
    report: dict[str, Any], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    for name in PLOTS:
        path = tmp_path / name
        width, height = png_size(path)
        assert 800 <= width <= 1600 and 400 <= height <= 1000
        assert path.stat().st_size > 10_000  # axes, lines and text, not a blank canvas
        assert f"]({name})" in md
    assert "pip install" not in md


def test_the_bar_plot_draws_the_reports_final_ranking_figures(report: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from streams.tools.eval_report import _ranking_bars

    axes = Figure().subplots()
    _ranking_bars(axes, report["ranking"], "hit_rate@10")
    heights = [bar.get_height() for bar in axes.patches if isinstance(bar, Rectangle)]
    ranking = report["ranking"].values()
    expected = [f["hit_rate@10"] or 0.0 for f in ranking] + [f["ndcg@10"] or 0.0 for f in ranking]
    assert heights == pytest.approx(expected)


def test_without_matplotlib_the_markdown_says_how_to_get_plots_and_no_png_is_written(
    report: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    written = write_report(report, tmp_path)
    assert [path.name for path in written] == ["report.json", "report.md", "curve.csv"]
    assert list(tmp_path.glob("*.png")) == []
    md = (tmp_path / "report.md").read_text()
    assert "pip install 'tunestream[report]'" in md
    assert ".png" not in md


# The command line ----------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_evaluate_with_report_writes_it_into_a_new_folder_and_says_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, as_json: bool
) -> None:
    out_dir = tmp_path / "reports" / "jsonl"
    argv = [
        "evaluate",
        str(FIXTURES / "events.jsonl"),
        "--catalog",
        str(FIXTURES / "tracks.csv"),
        "--models",
        "logistic",
        "--report",
        str(out_dir),
        *(["--json"] if as_json else []),
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    if as_json:
        assert (
            json.loads(out)["events"] == json.loads((out_dir / "report.json").read_text())["events"]
        )
    assert f"report written to {out_dir / 'report.md'}" in err
    assert {"report.json", "report.md", "curve.csv"} <= {p.name for p in out_dir.iterdir()}


def test_evaluate_without_matplotlib_prints_how_to_get_plots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    argv = ["evaluate", str(FIXTURES / "events.jsonl"), "--catalog", str(FIXTURES / "tracks.csv")]
    assert main([*argv, "--models", "logistic", "--report", str(tmp_path)]) == 0
    assert NO_PLOTS in capsys.readouterr().err


def test_a_report_folder_that_is_a_file_is_one_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    taken = tmp_path / "report.txt"
    taken.write_text("not a folder")
    message = one_line_error(capsys, ["evaluate", "--events", "100", "--report", str(taken)])
    assert f"--report {taken} is a file, not a folder" in message
    assert taken.read_text() == "not a folder"
