"""``tunestream evaluate --report DIR``: an evaluation report as files a person can read.

:func:`write_report` writes, into one folder:

- ``report.json``: the whole report, as ``tunestream evaluate --json`` prints it;
- ``report.md``: what was replayed, the engagement and ranking tables (the same
  rows as the terminal's, :func:`streams.tools.evaluate.report_tables`), the taste
  model's hit-rate as a multiple of the baselines', the published lists' table
  (when the report has a ``lists`` section), and the plots;
- ``curve.csv``: the figures over the replay, one row per point of the curve;
- with matplotlib (``pip install 'tunestream[report]'``), four PNG plots:
  ``engagement_auc.png``, ``engagement_log_loss.png``, ``ranking_hit_rate.png``
  (each over the replay, one line per model) and ``ranking_bars.png`` (the
  rankers' final figures). Without it the rest is written and ``report.md``
  says how to get them.

Plots are drawn on matplotlib's non-interactive Agg canvas, without pyplot: no
window, no global figure state, nothing to close.

>>> print(markdown_table(("model", "ROC AUC"), [("logistic", "0.785"), ("tree", "0.649")]))
| model | ROC AUC |
|:--|--:|
| logistic | 0.785 |
| tree | 0.649 |
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.errors import TunestreamError
from online_models.evaluation import POPULARITY_ONLY
from streams.tools.console import Table
from streams.tools.evaluate import report_tables
from streams.tools.plots import FIGSIZE, NO_PLOTS, label, legend_outside, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
#: Drawn dashed: what the models are compared against.
BASELINES = frozenset({POPULARITY_ONLY, "popularity", "random", "BiasedMF"})
#: The plots over the replay, by file name: (curve section, metric prefix, title, y label).
_CURVE_PLOTS = {
    "engagement_auc.png": (
        "engagement",
        "roc_auc",
        "Engagement models: ROC AUC of the last {window} events",
        "ROC AUC (higher is better)",
    ),
    "engagement_log_loss.png": (
        "engagement",
        "log_loss",
        "Engagement models: log loss of the last {window} events",
        "log loss (lower is better)",
    ),
    "ranking_hit_rate.png": (
        "ranking",
        "hit_rate@",
        "Taste rankers: {metric} of the positives ranked in the last {window} events",
        "{metric} (higher is better)",
    ),
}
_BARS = "ranking_bars.png"
#: The alt text of each plot in report.md.
CAPTIONS = {
    "engagement_auc.png": "Rolling ROC AUC of each engagement model over the replay",
    "engagement_log_loss.png": "Rolling log loss of each engagement model over the replay",
    "ranking_hit_rate.png": "Rolling hit-rate of each taste ranker over the replay",
    _BARS: "Hit-rate and NDCG of each taste ranker over the whole replay",
}


class ReportError(TunestreamError, ValueError):
    """The report cannot be written where it was asked to be; the message names the path."""


def prepare_dir(path: str | Path) -> Path:
    """``path`` as a folder to write a report into, created with its parents if missing.

    Called before a replay, so a bad path fails at once rather than after it.
    """
    out_dir = Path(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out_dir}: cannot create the folder: {exc.strerror}") from exc
    return out_dir


def write_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write the report's files into ``out_dir``; the paths written, ``report.md`` second.

    Plots are drawn only when matplotlib can be imported: check for ``.png`` paths
    (or :data:`NO_PLOTS`) to tell.
    """
    out_dir = prepare_dir(out_dir)
    json_path, md_path, csv_path = (out_dir / n for n in ("report.json", "report.md", "curve.csv"))
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    header, rows = curve_table(report)
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([header, *rows])
    plots = draw_plots(report, out_dir)
    md_path.write_text(markdown(report, [p.name for p in plots]), encoding="utf-8")
    return [json_path, md_path, csv_path, *plots]


def markdown(report: Mapping[str, Any], plots: Sequence[str] | None) -> str:
    """The Markdown report; ``plots`` are the PNG file names to link, None or empty
    when matplotlib was missing."""
    engagement, ranking, *lists = report_tables(report)
    window = report.get("curve_window")
    lines = [
        "# tunestream evaluate: prequential replay",
        "",
        f"Replayed: {report['events']:,} events of the {report.get('source', 'log')}, "
        f"{_percent(report['positive_share'])} of them positive, in event-time order. "
        "Every event is scored before any model learns it (test-then-train), so every "
        "figure is out-of-sample.",
        "",
        "## Engagement models",
        "",
        "ROC AUC, log loss and expected calibration error (ECE) over the whole replay; "
        "µs / event is the time to predict and learn one event.",
        "",
        markdown_table(engagement[1], engagement[2]),
        "",
        "## Taste rankers, next positive event",
        "",
        f"Was the track of a sampled positive event in the ranker's top {_k(report)} "
        "just before it (hit-rate), and how high (NDCG)?",
        "",
        markdown_table(ranking[1], ranking[2]),
        "",
        *_multiples_sentence(report),
        *(_lists_section(report, lists[0]) if lists else []),
        "## Over the replay",
        "",
        f"Each point covers the last {window:,} events (for the rankers, the sampled "
        "positive events among them: `events_ranked` in curve.csv)."
        if window
        else "",
        "",
    ]
    if plots:
        lines += [f"![{CAPTIONS.get(name, name)}]({name})\n" for name in plots]
    else:
        lines += [f"Plots were not drawn: {NO_PLOTS}, then run the evaluation again.", ""]
    lines.append("Data: [curve.csv](curve.csv) (the points), [report.json](report.json) (all).")
    return "\n".join(lines) + "\n"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the first column left-aligned, the figures right-aligned."""
    align = ["|:--|", *("--:|" for _ in headers[1:])]
    lines = ["| " + " | ".join(headers) + " |", "".join(align)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def hit_rate_multiples(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The taste model's hit-rate as a multiple of each other ranker's (None when
    either is unknown or the other's is 0).

    >>> hit_rate_multiples({"ranking": {"taste": {"hit_rate@10": 0.2},
    ...     "popularity": {"hit_rate@10": 0.16}, "random": {"hit_rate@10": 0.0}}})
    {'popularity': 1.25, 'random': None}
    """
    ranking = report["ranking"]
    key = _hit_rate_key(ranking)
    taste = ranking.get("taste", {}).get(key)
    multiples: dict[str, float | None] = {}
    for name, figures in ranking.items():
        if name != "taste":
            other = figures.get(key)
            multiples[name] = taste / other if taste is not None and other else None
    return multiples


def curve_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The curve as a header and rows: ``events``, then ``<model>.<metric>`` columns;
    an unknown figure is an empty cell."""
    curve = report.get("curve") or []
    if not curve:
        return ["events"], []
    columns = [
        (section, name, metric)
        for section in ("engagement", "ranking")
        for name, figures in curve[0][section].items()
        for metric in figures
    ]
    header = ["events", *(f"{name}.{metric}" for _, name, metric in columns)]
    rows = [
        [str(point["events"]), *(_cell(point[s][n].get(m)) for s, n, m in columns)]
        for point in curve
    ]
    return header, rows


def draw_plots(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """The PNG plots written into ``out_dir``; none when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    window = f"{report.get('curve_window', 0):,}"
    hit_key = _hit_rate_key(report["ranking"])
    metric = _display(hit_key)
    written = []
    for name, (section, prefix, title, ylabel) in _CURVE_PLOTS.items():
        figure = Figure(figsize=FIGSIZE, layout="constrained")
        FigureCanvasAgg(figure)  # the non-interactive canvas: PNG bytes, no window
        axes = figure.subplots()
        _curve_lines(axes, report.get("curve") or [], section, prefix)
        label(axes, title.format(window=window, metric=metric), ylabel.format(metric=metric))
        if name == "engagement_auc.png":
            axes.axhline(0.5, color="grey", linewidth=1, linestyle=":", label="chance (0.5)")
        legend_outside(axes)
        written.append(save(figure, out_dir / name))
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(figure)
    _ranking_bars(figure.subplots(), report["ranking"], hit_key)
    written.append(save(figure, out_dir / _BARS))
    return written


def _curve_lines(axes: Axes, curve: Sequence[Mapping[str, Any]], section: str, prefix: str) -> None:
    names = list(curve[0][section]) if curve else []
    events = [point["events"] for point in curve]
    for name in names:
        values = [_metric(point[section][name], prefix) for point in curve]
        axes.plot(
            events,
            [math.nan if v is None else v for v in values],  # a gap where it is unknown
            label=name,
            marker="o",
            markersize=3,
            linewidth=1.2 if name in BASELINES else 2.0,
            linestyle="--" if name in BASELINES else "-",
        )
    axes.set_xlim(left=0)
    axes.xaxis.set_major_formatter("{x:,.0f}")


def _ranking_bars(axes: Axes, ranking: Mapping[str, Any], hit_key: str) -> None:
    names = list(ranking)
    ndcg_key = hit_key.replace("hit_rate", "ndcg")
    width = 0.38
    for offset, key in ((-width / 2, hit_key), (width / 2, ndcg_key)):
        values = [ranking[name].get(key) or 0.0 for name in names]
        positions = [i + offset for i in range(len(names))]
        bars = axes.bar(positions, values, width, label=_display(key))
        axes.bar_label(bars, fmt="%.3f", padding=2, fontsize=9)
    axes.set_xticks(range(len(names)), names)
    axes.set_axisbelow(True)  # the grid behind the bars
    axes.margins(y=0.15)  # room for the value labels above the tallest bar
    title = "Taste rankers over the whole replay: the next positive event"
    label(axes, title, "higher is better", None)
    axes.legend(loc="upper right")


def _multiples_sentence(report: Mapping[str, Any]) -> list[str]:
    multiples = hit_rate_multiples(report)
    if "taste" not in report["ranking"]:
        return []
    key = _hit_rate_key(report["ranking"])
    parts = [
        f"**{_times(multiples.get('popularity'))}** the popularity baseline's",
        f"**{_times(multiples.get('BiasedMF'))}** River BiasedMF's",
    ]
    return [f"The taste model's {_display(key)} is {' and '.join(parts)}.", ""]


def _lists_section(report: Mapping[str, Any], table: Table) -> list[str]:
    """The published lists: how they were sampled, what each figure means, the table."""
    lists = report["lists"]
    size = lists["size"]
    return [
        "## Published lists",
        "",
        f"Just before each of {lists['lists_made']:,} positive events (one in "
        f"{lists['sample_every']:,}, after the first {lists['warmup_events']:,} events, which "
        f"only train), each policy built the list of {size} it would have shown the user, "
        "from what it knew then. Hit-rate and NDCG: was the event's track in the list, and "
        "how high. *Not recent*: the same over the events whose track the user had not "
        f"played or liked recently ({_percent(lists['repeat_share'])} had), which the list "
        "builder leaves out of every list. Coverage: distinct tracks shown / catalogue. "
        "Artists and genres per list: intra-list diversity. Artist Gini: how concentrated "
        "the exposure of the catalogue's artists is (0 even, towards 1 a few artists). "
        "Discovery: items by an artist new to the user.",
        "",
        markdown_table(table[1], table[2]),
        "",
    ]


def _hit_rate_key(ranking: Mapping[str, Any]) -> str:
    first: Mapping[str, Any] = next(iter(ranking.values()), {})
    return next((key for key in first if key.startswith("hit_rate@")), "hit_rate@10")


def _k(report: Mapping[str, Any]) -> str:
    return _hit_rate_key(report["ranking"]).partition("@")[2]


def _display(key: str) -> str:
    """A metric's key as people write it: ``hit_rate@10`` is hit-rate@10, ``ndcg@10`` NDCG@10."""
    return key.replace("hit_rate", "hit-rate").replace("ndcg", "NDCG")


def _metric(figures: Mapping[str, Any], prefix: str) -> float | None:
    return next((value for key, value in figures.items() if key.startswith(prefix)), None)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


__all__ = [
    "NO_PLOTS",
    "ReportError",
    "curve_table",
    "draw_plots",
    "hit_rate_multiples",
    "markdown",
    "markdown_table",
    "prepare_dir",
    "write_report",
]
