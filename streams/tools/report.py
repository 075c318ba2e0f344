"""``tunestream report --out DIR``: the evidence in one folder, a Markdown report with plots.

Its inputs are JSON files as the commands write them with ``--json``:

- the offline evaluation (``tunestream evaluate --json``); when none is given it
  is run here, on :data:`DEFAULT_EVENTS` events of the simulator's stream;
- the benchmark (``tunestream bench --json``): the lists' latency;
- the closed-loop simulation (``tunestream simulate --closed-loop --json``):
  per policy, per simulated day, skip, save and return rates, diversity and
  satisfaction.

A bench or closed-loop input not given leaves its section out, and ``report.md``
says in one line which command makes it. :func:`write_report` writes
``report.md`` (a headline table first, then a section per input with its tables
and plots, each plot with a caption), ``report.json`` (every input, merged:
:func:`merge`) and, with matplotlib (``pip install 'tunestream[report]'``), the
PNG plots of :data:`PLOTS`. The plots are drawn with the helpers of
:mod:`streams.tools.plots`, shared with ``tunestream evaluate --report``.

>>> merged = merge({"ranking": {}, "engagement": {}, "events": 10}, None, None)
>>> sorted(merged), merged["bench"]
(['bench', 'closed_loop', 'evaluation', 'inputs'], None)
>>> xs, ys = lorenz_curve([3, 1], population=4)  # two artists never shown
>>> xs, ys
([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.0, 0.25, 1.0])
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from streams.tools.console import Reporter
from streams.tools.eval_report import (
    BASELINES,
    ReportError,
    hit_rate_multiples,
    markdown_table,
    prepare_dir,
)
from streams.tools.evaluate import EvaluateOptions, evaluate, report_tables
from streams.tools.plots import (
    NO_PLOTS,
    have_matplotlib,
    label,
    legend_outside,
    new_figure,
    save,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Simulated events evaluated when no evaluation file is given (about 25 s).
DEFAULT_EVENTS: Final = 10_000

#: Per input: its name in report.json, the flag, what it is, the command that makes it,
#: and the keys a file of it must hold.
INPUTS: Final = {
    "evaluation": (
        "--evaluation",
        "offline evaluation",
        "tunestream evaluate --json > evaluation.json",
        ("engagement", "ranking"),
    ),
    "bench": (
        "--bench",
        "benchmark",
        "tunestream bench --json > bench.json",
        ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"),
    ),
    "closed_loop": (
        "--closed-loop",
        "closed-loop simulation",
        "tunestream simulate --closed-loop --json > closed_loop.json",
        ("policies",),
    ),
}

#: The PNG plots, by file name, with their captions (``{...}`` filled from the report).
PLOTS: Final = {
    "model_versions.png": "Metrics over the replay, per model version",
    "policy_bars.png": "Hit-rate@10 and catalogue coverage of each list policy",
    "lorenz.png": "Artist exposure Lorenz curves of each list policy",
    "latency_histogram.png": "Histogram of the lists' end-to-end latency",
    "satisfaction.png": "Closed-loop satisfaction per day, per policy",
    "closed_loop_rates.png": "Closed-loop skip, save, return rates and diversity per day",
}

#: How each list policy (offline) and closed-loop policy is named in tables and legends.
DISPLAY: Final = {
    "biasedmf": "BiasedMF",
    "tunestream-no-rerank": "tunestream, no re-ranking",
    "no-exploration-rerank": "no exploration, no re-ranking",
}
#: The closed-loop series drawn as small multiples: (key, title, y label).
RATES: Final = (
    ("skip_rate", "skip rate", "skips / tracks started"),
    ("save_rate", "save rate", "saves / tracks started"),
    ("return_rate", "return rate", "listeners with a session / all"),
    ("diversity", "diversity", "distinct artists per session"),
)
#: The closed-loop summary's columns: (key, header).
SUMMARY_COLUMNS: Final = (
    ("satisfaction", "satisfaction"),
    ("satisfaction_last_week", "satisfaction, last week"),
    ("skip_rate", "skip rate"),
    ("save_rate", "save rate"),
    ("return_rate", "return rate"),
    ("diversity", "diversity"),
)
_OURS: Final = "tunestream"
#: Drawn and listed in this order (others after them): ours, then the baselines.
_ORDER: Final = (
    "tunestream",
    "tunestream-no-rerank",
    "no-exploration-rerank",
    "taste",
    "popularity",
    "biasedmf",
    "BiasedMF",
    "random",
    "oracle",
)
#: Short names under the bars.
_TICKS: Final = {"tunestream-no-rerank": "tunestream\nno re-rank"}
_COLOURS: Final = {
    "tunestream": "#1f77b4",
    "tunestream-no-rerank": "#9ecae1",
    "no-exploration-rerank": "#9ecae1",
    "popularity": "#ff7f0e",
    "biasedmf": "#2ca02c",
    "BiasedMF": "#2ca02c",
    "random": "#7f7f7f",
    "oracle": "#000000",
    "taste": "#1f77b4",
}


@dataclass(frozen=True)
class ReportOptions:
    """Where to write, and the input files (None: run the evaluation / leave the section out)."""

    out: str
    evaluation: str | None = None
    bench: str | None = None
    closed_loop: str | None = None
    #: simulated events when the evaluation is run here
    events: int = DEFAULT_EVENTS


def load_input(path: str | Path, name: str) -> dict[str, Any]:
    """The JSON object in ``path``, checked to be the ``name`` input of :data:`INPUTS`.

    Raises :class:`ReportError` naming the file: it cannot be read, is not JSON, or
    lacks a key its command writes.
    """
    flag, _, command, keys = INPUTS[name]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportError(f"{flag} {path}: cannot read it: {reason}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{flag} {path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    missing = [key for key in keys if key not in data] if isinstance(data, dict) else list(keys)
    if missing:
        raise ReportError(
            f"{flag} {path}: not what `{command.partition(' >')[0]}` writes "
            f"(no {', '.join(missing)})"
        )
    return data


def merge(
    evaluation: Mapping[str, Any],
    bench: Mapping[str, Any] | None,
    closed_loop: Mapping[str, Any] | None,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every input in one JSON object (report.json); ``inputs`` says where each came from."""
    return {
        "inputs": dict(inputs or {}),
        "evaluation": dict(evaluation),
        "bench": None if bench is None else dict(bench),
        "closed_loop": None if closed_loop is None else dict(closed_loop),
    }


def make_report(options: ReportOptions, reporter: Reporter | None = None) -> list[Path]:
    """Read the inputs (every file first, so a bad one fails before a long evaluation),
    run the evaluation when none is given, and write the report; the paths written."""
    out_dir = prepare_dir(options.out)
    files = {
        "evaluation": options.evaluation,
        "bench": options.bench,
        "closed_loop": options.closed_loop,
    }
    loaded = {name: load_input(path, name) for name, path in files.items() if path is not None}
    # the file's name only: a report is shared, its reader's machine has other paths
    sources = {name: f"file {Path(path).name}" for name, path in files.items() if path is not None}
    evaluation = loaded.get("evaluation")
    if evaluation is None:
        run = EvaluateOptions(simulated_events=options.events)
        evaluation = evaluate(run, reporter or Reporter(prefix="report"))
        sources["evaluation"] = f"run in process: {options.events:,} simulated events"
    merged = merge(evaluation, loaded.get("bench"), loaded.get("closed_loop"), sources)
    return write_report(merged, out_dir)


def write_report(merged: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write ``report.json``, the plots and ``report.md`` into ``out_dir``; the paths
    written, ``report.md`` second. Check for ``.png`` paths to tell whether plots were drawn."""
    out_dir = prepare_dir(out_dir)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    plots = draw_plots(merged, out_dir) if have_matplotlib() else None
    md_path.write_text(markdown(merged, plots), encoding="utf-8")
    return [json_path, md_path, *(plots or [])]


# --- figures --------------------------------------------------------------------------------


def lorenz_curve(
    counts: Sequence[float], population: int | None = None
) -> tuple[list[float], list[float]]:
    """The Lorenz curve of exposure ``counts``: for the least exposed share ``x`` of
    the ``population`` (``len(counts)`` when None; the rest count 0), the share ``y``
    of all exposure they got. Points from (0, 0) to (1, 1); equal exposure is the
    diagonal, and ``1 - 2 * area under the curve`` is the Gini coefficient.

    >>> lorenz_curve([5, 5])
    ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    >>> lorenz_curve([])
    ([0.0, 1.0], [0.0, 1.0])
    """
    values = sorted(float(c) for c in counts)
    n = max(len(values), population or 0)
    values = [0.0] * (n - len(values)) + values
    total = sum(values)
    if n == 0 or total <= 0:
        return [0.0, 1.0], [0.0, 1.0]
    xs, ys, running = [0.0], [0.0], 0.0
    for i, value in enumerate(values, 1):
        running += value
        xs.append(i / n)
        ys.append(running / total)
    return xs, ys


def lorenz_gini(xs: Sequence[float], ys: Sequence[float]) -> float:
    """``1 - 2 * area`` under a Lorenz curve (trapezoids): its Gini coefficient.

    >>> lorenz_gini(*lorenz_curve([0, 0, 0, 8]))
    0.75
    """
    points = pairwise(zip(xs, ys, strict=True))
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in points)
    return 1.0 - 2.0 * area


def headline_rows(merged: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(figure, tunestream, against)`` rows: the hit-rate@10 against popularity and
    BiasedMF with the multiples, the artist exposure Gini, the latency at the bench's
    rate, the closed-loop satisfaction; a row only for what the inputs hold.

    >>> rows = headline_rows({"evaluation": {"lists": {"lists_made": 9, "policies": {
    ...     "tunestream": {"hit_rate_at_10": 0.2, "artist_gini": 0.7},
    ...     "popularity": {"hit_rate_at_10": 0.1, "artist_gini": 0.8}}}}})
    >>> rows[0]
    ('hit-rate@10, published lists (9 lists)', '0.200', 'popularity 0.100 (2.00×)')
    """
    rows: list[tuple[str, str, str]] = []
    evaluation = merged["evaluation"]
    lists = (evaluation.get("lists") or {}).get("policies")
    if lists and _OURS in lists:
        ours = lists[_OURS]
        others = [name for name in ("popularity", "biasedmf") if name in lists]
        against = ", ".join(
            f"{_name(n)} {_fixed(lists[n].get('hit_rate_at_10'))} "
            f"({_times(ours.get('hit_rate_at_10'), lists[n].get('hit_rate_at_10'))})"
            for n in others
        )
        made = evaluation["lists"].get("lists_made")
        what = f"hit-rate@10, published lists ({made:,} lists)" if made else "hit-rate@10"
        rows.append((what, _fixed(ours.get("hit_rate_at_10")), against))
        gini_against = ", ".join(
            f"{_name(n)} {_fixed(lists[n].get('artist_gini'))}"
            for n in _ordered(lists)
            if n != _OURS
        )
        rows.append(
            (
                "artist exposure Gini (0 even, 1 concentrated)",
                _fixed(ours.get("artist_gini")),
                gini_against,
            )
        )
    elif "taste" in evaluation.get("ranking", {}):
        ranking, multiples = evaluation["ranking"], hit_rate_multiples(evaluation)
        key = next((k for k in ranking["taste"] if k.startswith("hit_rate@")), "hit_rate@10")
        against = ", ".join(
            f"{n} {_fixed(ranking[n].get(key))} ({_times(multiples.get(n), 1.0)})"
            for n in ("popularity", "BiasedMF")
            if n in ranking
        )
        rows.append(
            (f"{key.replace('_', '-')}, taste ranker", _fixed(ranking["taste"][key]), against)
        )
    bench = merged.get("bench")
    if bench and bench.get("latency_p50_ms") is not None:
        rate = bench.get("latency_rate")
        at = f" at {rate:,.0f} events/s" if rate else ""
        rows.append(
            (
                f"latency p50 / p99, event → list published{at}",
                f"{bench['latency_p50_ms']:,.0f} / {bench['latency_p99_ms']:,.0f} ms",
                f"p95 {bench['latency_p95_ms']:,.0f} ms over {bench.get('latency_lists', 0):,} "
                "lists, one worker",
            )
        )
    closed = merged.get("closed_loop")
    if closed and closed.get("policies"):
        policies = closed["policies"]
        days = _days(policies)
        ours = policies.get(_OURS, {}).get("summary", {})
        rows.append(
            (
                f"closed-loop satisfaction, mean over {days} days (last week)",
                _satisfaction(ours),
                ", ".join(
                    f"{_name(n)} {_satisfaction(policies[n].get('summary', {}))}"
                    for n in _ordered(policies)
                    if n != _OURS
                ),
            )
        )
    return rows


def _headline_table(rows: Sequence[tuple[str, str, str]]) -> str:
    """The headline rows as Markdown: the figures right-aligned, the comparisons left."""
    lines = ["| figure | tunestream | against |", "|:--|--:|:--|"]
    return "\n".join([*lines, *(f"| {a} | {b} | {c} |" for a, b, c in rows)])


def notes(merged: Mapping[str, Any]) -> list[str]:
    """One line per input left out: which command makes it."""
    lines = []
    for name in ("bench", "closed_loop"):
        if merged.get(name) is None:
            flag, what, command, _ = INPUTS[name]
            lines.append(
                f"Not in this report: the {what} section. Make it with `{command}`, "
                f"then pass `{flag} {command.rpartition('> ')[2]}`."
            )
    return lines


def markdown(merged: Mapping[str, Any], plots: Sequence[Path] | None) -> str:
    """The Markdown report, linking the ``plots`` drawn; None: matplotlib is missing,
    and the report says how to get them."""
    drawn = {path.name for path in plots or ()}
    evaluation = merged["evaluation"]
    sources = merged.get("inputs") or {}
    lines = [
        "# tunestream report",
        "",
        "Inputs: "
        + "; ".join(f"{INPUTS[n][1]}: {sources[n]}" for n in INPUTS if n in sources)
        + "."
        if sources
        else "",
        "",
        "## Headline",
        "",
        _headline_table(headline_rows(merged)),
        "",
    ]
    for line in notes(merged):
        lines += [f"*{line}*", ""]
    if plots is None:
        lines += [f"*Plots were not drawn: {NO_PLOTS}, then run the report again.*", ""]
    lines += _evaluation_section(merged, drawn)
    if merged.get("bench") is not None:
        lines += _bench_section(merged["bench"], drawn)
    if merged.get("closed_loop") is not None:
        lines += _closed_loop_section(merged["closed_loop"], drawn)
    events = evaluation.get("events")
    lines.append(
        "Data: [report.json](report.json) holds every input, merged"
        + (f" (the evaluation replayed {events:,} events)." if events else ".")
    )
    return "\n".join(lines) + "\n"


def _evaluation_section(merged: Mapping[str, Any], drawn: set[str]) -> list[str]:
    evaluation = merged["evaluation"]
    engagement, ranking, *lists = report_tables(evaluation)
    lines = ["## Models over time, per model version", ""]
    lines += _figure("model_versions.png", _versions_caption(evaluation), drawn)
    if lists:
        made = evaluation["lists"]["lists_made"]
        lines += [
            "## Published lists against each baseline",
            "",
            f"Each policy's list of {evaluation['lists'].get('size', 10)} just before "
            f"{made:,} sampled positive events; see `tunestream evaluate` in the README for "
            "each figure's definition.",
            "",
            markdown_table(lists[0][1], lists[0][2]),
            "",
        ]
        lines += _figure(
            "policy_bars.png",
            "Left: the share of lists that held the track the listener played through or "
            "saved next (hit-rate@10); right: the share of the catalogue's tracks shown in "
            "some list (coverage). The dashed line is tunestream's level, to read each "
            "baseline against it.",
            drawn,
        )
        lines += _figure(
            "lorenz.png",
            "Exposure Lorenz curves: the catalogue's artists sorted from least to most "
            "shown (x, including those never shown) against their cumulative share of all "
            "list items (y). The diagonal is equal exposure; the further below it, the more "
            "a few artists take the slots. The legend gives each policy's artist Gini.",
            drawn,
        )
    lines += [
        "## Engagement models and taste rankers (prequential)",
        "",
        markdown_table(engagement[1], engagement[2]),
        "",
        markdown_table(ranking[1], ranking[2]),
        "",
    ]
    return lines


def _versions_caption(evaluation: Mapping[str, Any]) -> str:
    lists = evaluation.get("lists") or {}
    window = evaluation.get("curve_window")
    bottom = (
        f"the taste ranker's and its baselines' hit-rate@10 over the last {window:,} "
        "events (prequential: ranked before the model learns the event)"
        if window
        else "the taste ranker's and its baselines' rolling hit-rate@10"
    )
    if not lists.get("by_snapshot"):
        return f"No per-version lists in this evaluation (an older file). The plot: {bottom}."
    versions = lists["by_snapshot"]
    mean = sum(v["lists"] for v in versions) / len(versions)
    return (
        f"Top: one step per model version, the learner snapshot the tunestream lists were "
        f"built with (a new one every {lists['refresh_every']:,} events; shaded bands "
        f"alternate between versions, v0 is untrained): the hit-rate@10 of the lists made "
        f"while it served (about {mean:,.0f} lists each) and, on the same events, the "
        f"baselines'. Bottom, on the same axis: {bottom}; the bands still mark the lists' "
        "versions, the prequential taste ranker keeps snapshots of its own."
    )


def _bench_section(bench: Mapping[str, Any], drawn: set[str]) -> list[str]:
    if bench.get("latency_p50_ms") is None:
        return ["## Latency", "", "*The bench ran with `--skip-latency`: no latency.*", ""]
    rows = [
        ("p50", f"{bench['latency_p50_ms']:,.0f} ms"),
        ("p95", f"{bench['latency_p95_ms']:,.0f} ms"),
        ("p99", f"{bench['latency_p99_ms']:,.0f} ms"),
        ("lists measured", f"{bench.get('latency_lists', 0):,}"),
    ]
    if bench.get("lists_per_s") is not None:
        rows.append(("lists / s", f"{bench['lists_per_s']:,.1f}"))
    for stage, us in (bench.get("list_stage_us") or {}).items():
        rows.append((f"µs per list: {stage}", f"{us:,.0f}"))
    rate, duration = bench.get("latency_rate"), bench.get("latency_duration_s")
    lines = [
        "## Latency",
        "",
        "Event time to recommendation list published, one worker on the embedded broker"
        + (f", {rate:,.0f} events/s for {duration:g} s" if rate and duration else "")
        + f" (`tunestream bench`, {bench.get('cpu_count', '?')} cores).",
        "",
        markdown_table(("figure", "measured"), rows),
        "",
    ]
    if not bench.get("latency_histogram_ms"):
        lines += [
            "*No latency histogram: this bench file has no `latency_histogram_ms` (an "
            "older bench); a new `tunestream bench --json` run writes one.*",
            "",
        ]
    else:
        lines += _figure(
            "latency_histogram.png",
            "How many measured lists took each latency (fixed buckets, 1 ms wide up to 50 ms, "
            "wider beyond: the height is lists per ms of latency), with the p50, p95 and p99.",
            drawn,
        )
    return lines


def _closed_loop_section(closed: Mapping[str, Any], drawn: set[str]) -> list[str]:
    policies = closed.get("policies") or {}
    headers = ("policy", *(header for _, header in SUMMARY_COLUMNS))
    rows = [
        (_name(name), *(_fixed(p.get("summary", {}).get(key)) for key, _ in SUMMARY_COLUMNS))
        for name, p in policies.items()
    ]
    days = _days(policies)
    lines = [
        "## Closed loop",
        "",
        f"Simulated listeners answer each policy's lists for {days} days, and each "
        "session's reward moves their satisfaction (`tunestream simulate --closed-loop`). "
        "Means over the run (satisfaction also over its last week):",
        "",
        markdown_table(headers, rows),
        "",
    ]
    lines += _figure(
        "satisfaction.png",
        "The mean satisfaction state of all simulated listeners at each day's end, one "
        "line per policy; oracle and random are the simulator's reference policies "
        "(dotted: oracle; dashed: the baselines).",
        drawn,
    )
    lines += _figure(
        "closed_loop_rates.png",
        "Per simulated day and policy: skips and saves per track started (own picks "
        "included), the share of listeners who had a session that day, and distinct "
        "artists heard through per session. A gap: nobody listened that day.",
        drawn,
    )
    return lines


def _figure(name: str, caption: str, drawn: set[str]) -> list[str]:
    if name not in drawn:
        return []
    return [f"![{PLOTS[name]}]({name})", "", f"*{caption}*", ""]


# --- plots ----------------------------------------------------------------------------------


def draw_plots(merged: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """The PNG plots the inputs allow, written into ``out_dir`` (matplotlib needed)."""
    evaluation = merged["evaluation"]
    written = [_model_versions(evaluation, out_dir / "model_versions.png")]
    lists = evaluation.get("lists")
    if lists and lists.get("policies"):
        written.append(_policy_bars(lists, out_dir / "policy_bars.png"))
        written.append(_lorenz(lists, out_dir / "lorenz.png"))
    bench = merged.get("bench")
    if bench and bench.get("latency_histogram_ms") and bench.get("latency_p50_ms") is not None:
        written.append(_latency_histogram(bench, out_dir / "latency_histogram.png"))
    closed = merged.get("closed_loop")
    if closed and closed.get("policies"):
        written.append(_satisfaction_plot(closed["policies"], out_dir / "satisfaction.png"))
        written.append(_rates_plot(closed["policies"], out_dir / "closed_loop_rates.png"))
    return written


def _style(name: str) -> dict[str, Any]:
    ours = name in (_OURS, "taste")
    baseline = name in BASELINES or name in ("biasedmf", "oracle")
    return {
        "color": _COLOURS.get(name),
        "linewidth": 2.4 if ours else 1.4,
        "linestyle": ":" if name == "oracle" else "--" if baseline else "-",
        "label": _name(name),
    }


def _model_versions(evaluation: Mapping[str, Any], path: Path) -> Path:
    versions = (evaluation.get("lists") or {}).get("by_snapshot") or []
    figure = new_figure((9.5, 7.5) if versions else (9.5, 4.8))
    if versions:
        top, bottom = figure.subplots(2, 1, sharex=True)
    else:
        bottom = figure.subplots()
    end = evaluation.get("events") or 0
    if versions:
        lists = evaluation["lists"]
        every = lists["refresh_every"]
        first, last = versions[0]["snapshot"], versions[-1]["snapshot"]
        by_version = {v["snapshot"]: v for v in versions}
        edges = [v * every for v in range(first, last + 1)] + [min((last + 1) * every, end)]
        for name in _ordered(lists["policies"]):
            values = [
                by_version[v]["hit_rate_at_10"].get(name, math.nan) if v in by_version else math.nan
                for v in range(first, last + 1)
            ]
            style = _style(name)
            top.stairs(values, edges, baseline=None, **style)
        served = range(max(1, -(-end // every)))  # every version that served an event
        step = max(1, -(-len(served) // 20))  # at most 20 labels
        for axes in (top, bottom):
            _version_bands(axes, served, every, end)
        for v in served[::step]:
            top.annotate(
                f"v{v}",
                ((v + 0.5) * every if (v + 1) * every <= end else (v * every + end) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -12),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="#555555",
            )
        top.set_ylim(bottom=0, top=_headroom(top))
        warmup = lists.get("warmup_events") or 0
        if warmup:
            top.annotate(
                "warm-up:\nthe models learn,\nno lists scored",
                (warmup / 2, 0.5),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="center",
                fontsize=9,
                color="#555555",
            )
        label(
            top,
            "Published lists, per model version (learner snapshot) in force",
            "hit-rate@10 of its lists",
            None,
        )
        legend_outside(top)
    curve = evaluation.get("curve") or []
    points = [p["events"] for p in curve]
    names = _ordered(curve[0]["ranking"]) if curve else []
    for name in names:
        values = [_hit_of(p["ranking"][name]) for p in curve]
        bottom.plot(points, values, marker="o", markersize=3, **_style(name))
    window = evaluation.get("curve_window")
    label(
        bottom,
        "Taste rankers, prequential"
        + (f": hit-rate@10 of the last {window:,} events" if window else ""),
        "hit-rate@10",
        "events replayed",
    )
    bottom.set_xlim(0, max(end, points[-1] if points else 1))
    bottom.set_ylim(bottom=0)
    bottom.xaxis.set_major_formatter("{x:,.0f}")
    legend_outside(bottom)
    return save(figure, path)


def _version_bands(axes: Axes, versions: range, every: int, end: int) -> None:
    """Shade every other version's span, so each version's stretch of events shows."""
    for v in versions:
        if v % 2:
            axes.axvspan(v * every, min((v + 1) * every, end), color="#000000", alpha=0.05, lw=0)


def _headroom(axes: Axes) -> float:
    """The y limit leaving room above the data for the version labels."""
    return float(axes.get_ylim()[1]) * 1.15


def _policy_bars(lists: Mapping[str, Any], path: Path) -> Path:
    policies = lists["policies"]
    order = _ordered(policies)
    figure = new_figure((10.0, 4.8))
    panels = figure.subplots(1, 2)
    specs = (
        (
            "hit_rate_at_10",
            "hit-rate@10 (higher is better)",
            "share of lists holding the next track",
        ),
        ("coverage", "catalogue coverage", "distinct tracks shown ÷ catalogue"),
    )
    for axes, (key, title, ylabel) in zip(panels, specs, strict=True):
        values = [policies[n].get(key) or 0.0 for n in order]
        bars = axes.bar(
            range(len(order)),
            values,
            color=[_COLOURS.get(n, "#7f7f7f") for n in order],
            edgecolor="black",
            linewidth=0.6,
        )
        labels = axes.bar_label(bars, fmt="%.3f", padding=2, fontsize=9)
        for text in labels:  # readable where the reference line crosses them
            text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        ours = policies.get(_OURS, {}).get(key)
        if ours is not None:
            axes.axhline(
                ours,
                color=_COLOURS[_OURS],
                linestyle="--",
                linewidth=1,
                zorder=0.5,
                label="tunestream's level",
            )
        axes.set_xticks(range(len(order)), [_TICKS.get(n, _name(n)) for n in order], fontsize=9)
        axes.set_axisbelow(True)
        axes.margins(y=0.15)
        label(axes, title, ylabel, "list policy")
    made = lists.get("lists_made")
    figure.suptitle(
        "Published lists against each baseline" + (f" ({made:,} lists each)" if made else "")
    )
    handles, names = panels[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="outside lower center", fontsize=9, frameon=False)
    return save(figure, path)


def _lorenz(lists: Mapping[str, Any], path: Path) -> Path:
    figure = new_figure((7.0, 6.0))
    axes = figure.subplots()
    population = lists.get("catalogue_artists")
    axes.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle=":", label="equal exposure")
    for name in _ordered(lists["policies"]):
        figures = lists["policies"][name]
        counts = figures.get("exposure_per_artist")
        if counts is None:
            continue
        xs, ys = lorenz_curve(counts, population)
        gini = figures.get("artist_gini")
        style = _style(name)
        style["label"] = f"{_name(name)} (Gini {_fixed(gini)})"
        axes.plot(xs, ys, **style)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    label(
        axes,
        "Artist exposure in the published lists",
        "cumulative share of list items",
        "cumulative share of the catalogue's artists, least shown first",
    )
    axes.legend(loc="upper left", fontsize=9)
    return save(figure, path)


def _latency_histogram(bench: Mapping[str, Any], path: Path) -> Path:
    histogram = bench["latency_histogram_ms"]
    edges, counts = histogram["edges_ms"], histogram["counts"]
    widths = [b - a for a, b in pairwise(edges)]
    figure = new_figure()
    axes = figure.subplots()
    even = len(set(widths)) == 1
    heights = counts if even else [c / w for c, w in zip(counts, widths, strict=True)]
    axes.stairs(heights, edges, fill=True, color="#9ecae1", edgecolor="#1f77b4", label="lists")
    for q, colour in (("p50", "#2ca02c"), ("p95", "#ff7f0e"), ("p99", "#d62728")):
        value = bench[f"latency_{q}_ms"]
        axes.axvline(value, color=colour, linewidth=1.6, label=f"{q} {value:,.0f} ms")
    rate = bench.get("latency_rate")
    over = histogram.get("over", 0)
    title = "Recommendation lists: event time → list published" + (
        f", {rate:,.0f} events/s" if rate else ""
    )
    subtitle = f"{sum(counts) + over + histogram.get('under', 0):,} lists" + (
        f"; {over:,} above 60 s not drawn" if over else ""
    )
    ylabel = f"lists per {widths[0]:g} ms bucket" if even else "lists per ms of latency"
    label(axes, f"{title}\n{subtitle}", ylabel, "latency (ms)")
    axes.set_xlim(left=0)
    legend_outside(axes)
    return save(figure, path)


def _satisfaction_plot(policies: Mapping[str, Any], path: Path) -> Path:
    figure = new_figure()
    axes = figure.subplots()
    for name in _ordered(policies):
        series = policies[name]
        if series.get("days") and series.get("satisfaction"):
            axes.plot(series["days"], _gaps(series["satisfaction"]), **_style(name))
    label(
        axes,
        "Closed loop: listeners' satisfaction per day, per policy",
        "mean satisfaction at the day's end",
        "simulated day",
    )
    _whole_days(axes)
    legend_outside(axes)
    return save(figure, path)


def _rates_plot(policies: Mapping[str, Any], path: Path) -> Path:
    figure = new_figure((10.0, 6.4))
    grid = figure.subplots(2, 2, sharex=True)
    for i, (axes, (key, title, ylabel)) in enumerate(zip(grid.flat, RATES, strict=True)):
        for name in _ordered(policies):
            series = policies[name]
            if series.get("days") and series.get(key):
                axes.plot(series["days"], _gaps(series[key]), **_style(name))
        label(axes, title, ylabel, "simulated day" if i >= 2 else None)
        _whole_days(axes)
    handles, labels = grid.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=3)
    figure.suptitle("Closed loop, per policy and simulated day")
    return save(figure, path)


# --- small helpers --------------------------------------------------------------------------


def _ordered(names: Iterable[str]) -> list[str]:
    """``names`` in :data:`_ORDER`, the unknown ones last in their own order.

    >>> _ordered(["random", "oracle", "tunestream", "x"])
    ['tunestream', 'random', 'oracle', 'x']
    """
    names = list(names)
    known = [n for n in _ORDER if n in names]
    return known + [n for n in names if n not in known]


def _days(policies: Mapping[str, Any]) -> int:
    """Days the closed loop ran: the length of its first policy's series."""
    first: Mapping[str, Any] = next(iter(policies.values()), {})
    return len(first.get("days") or ())


def _name(name: str) -> str:
    return DISPLAY.get(name, name)


def _whole_days(axes: Axes) -> None:
    """Ticks on whole days only."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _gaps(values: Sequence[float | None]) -> list[float]:
    """A series with ``None`` (nobody listened that day) as NaN: a gap in its line.

    >>> _gaps([0.5, None])
    [0.5, nan]
    """
    return [math.nan if value is None else float(value) for value in values]


def _hit_of(figures: Mapping[str, Any]) -> float:
    value = next((v for k, v in figures.items() if k.startswith("hit_rate@")), None)
    return math.nan if value is None else float(value)


def _fixed(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _times(ours: float | None, other: float | None) -> str:
    """``ours / other`` as a multiple; with ``other`` 1.0, ``ours`` is the multiple."""
    if ours is None or not other:
        return "n/a"
    return f"{ours / other:.2f}×"


def _satisfaction(summary: Mapping[str, Any]) -> str:
    mean, last = summary.get("satisfaction"), summary.get("satisfaction_last_week")
    return f"{_fixed(mean)} ({_fixed(last)})"


__all__ = [
    "DEFAULT_EVENTS",
    "INPUTS",
    "PLOTS",
    "ReportError",
    "ReportOptions",
    "draw_plots",
    "headline_rows",
    "load_input",
    "lorenz_curve",
    "lorenz_gini",
    "make_report",
    "markdown",
    "merge",
    "notes",
    "write_report",
]
