"""``tunestream evaluate``: a listening log replayed offline through the models, no Kafka.

The log (a file in one of :data:`streams.tools.loaders.FORMATS`, or the seeded
simulator's stream) is replayed in event-time order through the same pure
feature and model code the worker runs (:mod:`online_models.evaluation`), and
scored prequentially: each engagement candidate's ROC AUC, log loss and
calibration error and its µs per event; each taste ranker's hit-rate@10 and
NDCG@10 on the next positive event, against random, popularity and River's
``reco.BiasedMF``. The report also holds the figures over the replay (its
``curve``, about :data:`CURVE_POINTS` points whatever the log's length), which
:mod:`streams.tools.eval_report` draws.

Its ``lists`` section scores the lists each policy would have published
(:mod:`online_models.list_evaluation`): random, popularity, BiasedMF, the list
builder, and the list builder without its re-ranking rules, on the same sampled
positive events. The first :data:`LIST_WARMUP_SHARE` of the events only train;
after them at most ``list_samples`` positive events are listed, evenly spaced
(every n-th positive: :func:`~online_models.list_evaluation.sample_every`), so
the sample spans the rest of the replay. ``list_samples=0`` leaves the section out.

>>> rows = engagement_rows({"engagement": {"logistic": {"roc_auc": 0.78, "log_loss": 0.42,
...     "ece": 0.01, "us_per_event": 17.0}}})
>>> rows[0]
('logistic', '0.780', '0.420', '0.010', '17.0')
>>> list_rows({"lists": {"policies": {"tunestream": {"hit_rate_at_10": 0.09, "ndcg_at_10": 0.05,
...     "coverage": 0.25, "distinct_artists": 9.3, "distinct_genres": 8.2, "artist_gini": 0.86,
...     "discovery_share": 0.62, "lists": 1817, "hit_rate_at_10_not_recent": 0.1}}}})[0]
('tunestream', '0.090', '0.100', '0.050', '0.250', '9.3', '8.2', '0.860', '0.620', '1,817')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from features import TrackInfo
from online_models.engagement import CANDIDATES
from online_models.evaluation import PrequentialReplay
from online_models.list_evaluation import (
    ListEvalConfig,
    ListReplay,
    count_positives,
    sample_every,
)
from streams.contracts.events import Event
from streams.settings import Settings
from streams.tools.console import Reporter, Table, write_tables
from streams.tools.in_process import score_planned
from streams.tools.loaders import load
from streams.tools.simulator import Population, PopulationConfig
from streams.tools.state_size import catalog_of

#: The simulated world evaluated when no log is given.
SIMULATED_USERS = 200
SIMULATED_TRACKS = 2_000
SIMULATED_ARTISTS = 300
#: Events between two progress updates.
_PROGRESS_EVERY = 1_000
#: Points on the curve of a replay (plus one at its last event when that is not on one).
CURVE_POINTS = 40
#: Positive events whose lists are scored, at most (each costs a few ms).
LIST_SAMPLES = 2_000
#: The share of the events that only train before any list is scored.
LIST_WARMUP_SHARE = 0.2


@dataclass(frozen=True)
class EvaluateOptions:
    """What to replay and which models to compare."""

    log: Sequence[str] = ()
    fmt: str = "jsonl"
    catalog: str | None = None
    simulated_events: int = 20_000
    seed: int = 5
    models: Sequence[str] = tuple(CANDIDATES)
    hit_every: int = 10
    #: positive events whose published lists are scored, at most; 0: none
    list_samples: int = LIST_SAMPLES
    #: also plan the log with the worker's own planner under these settings and score
    #: the lists it would publish (:func:`streams.tools.in_process.score_planned`): what
    #: ``tunestream replay --score`` reads back live; None: not
    published: Settings | None = None


def events_and_catalog(options: EvaluateOptions) -> tuple[list[Event], dict[str, TrackInfo], str]:
    """The events to replay, in event-time order, their catalog, and what they are."""
    if options.log:
        loaded = load(options.log, options.fmt, catalog=options.catalog)
        catalog = {r["track_id"]: TrackInfo.from_record(r) for r in loaded.catalog}
        return loaded.events, catalog, f"{options.fmt} log {', '.join(options.log)}"
    population = Population(
        PopulationConfig(
            seed=options.seed,
            n_users=SIMULATED_USERS,
            n_tracks=SIMULATED_TRACKS,
            n_artists=SIMULATED_ARTISTS,
            clock="story",
        )
    )
    about = (
        f"simulator (seed {options.seed}, {SIMULATED_USERS} listeners, {SIMULATED_TRACKS:,} "
        "tracks, story clock)"
    )
    return population.take(options.simulated_events), catalog_of(population), about


def evaluate(options: EvaluateOptions, reporter: Reporter | None = None) -> dict[str, Any]:
    """Replay the log, with progress on ``reporter``; the report, with what was replayed."""
    reporter = reporter or Reporter(prefix="evaluate")
    events, catalog, about = events_and_catalog(options)
    reporter.phase(f"replaying {len(events):,} events of the {about}")
    run = PrequentialReplay(
        catalog,
        engagement=options.models,
        hit_every=options.hit_every,
        curve_every=curve_every(len(events)),
    )
    lists = list_replay(events, catalog, options.list_samples)
    for done, event in enumerate(events, 1):
        run.process(event)
        if lists is not None:
            lists.process(event)
        if done % _PROGRESS_EVERY == 0:
            reporter.progress(f"{done:,} / {len(events):,} events")
    reporter.done()
    report = {"source": about, **run.report()}
    if lists is not None:
        report["lists"] = lists.report()
    if options.published is not None:
        reporter.phase("planning the log with the worker's planner, as it would publish")
        report["published"] = score_planned(events, catalog, options.published)
    return report


def list_replay(
    events: Sequence[Event], catalog: dict[str, TrackInfo], samples: int
) -> ListReplay | None:
    """The list evaluation of ``events``: after :data:`LIST_WARMUP_SHARE` of them, at
    most ``samples`` positive events, evenly spaced; None when ``samples`` is 0."""
    if samples <= 0:
        return None
    warmup = int(len(events) * LIST_WARMUP_SHARE)
    stride = sample_every(count_positives(events, catalog, warmup), samples)
    config = ListEvalConfig(warmup_events=warmup, sample_every=stride, max_lists=samples)
    return ListReplay(catalog, config)


def curve_every(n_events: int) -> int:
    """Events between two points of the curve: :data:`CURVE_POINTS` points in all.

    >>> curve_every(20_000), curve_every(100_000), curve_every(19)
    (500, 2500, 1)
    """
    return max(1, n_events // CURVE_POINTS)


def engagement_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """``(model, ROC AUC, log loss, ECE, µs per event)`` rows."""
    return [
        (
            name,
            _fixed(f["roc_auc"]),
            _fixed(f["log_loss"]),
            _fixed(f["ece"]),
            _fixed(f["us_per_event"], 1),
        )
        for name, f in report["engagement"].items()
    ]


def ranking_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """``(ranker, hit-rate@k, NDCG@k, events ranked)`` rows."""
    return [
        (
            name,
            *(_fixed(value) for key, value in f.items() if key != "events_ranked"),
            f"{f['events_ranked']:,}",
        )
        for name, f in report["ranking"].items()
    ]


#: The list table's columns: (header, figure, digits).
LIST_COLUMNS = (
    ("hit-rate@10", "hit_rate_at_10", 3),
    ("hit-rate@10 not recent", "hit_rate_at_10_not_recent", 3),
    ("NDCG@10", "ndcg_at_10", 3),
    ("coverage", "coverage", 3),
    ("artists / list", "distinct_artists", 1),
    ("genres / list", "distinct_genres", 1),
    ("artist Gini", "artist_gini", 3),
    ("discovery", "discovery_share", 3),
)


def list_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """``(policy, *LIST_COLUMNS figures, lists)`` rows of the ``lists`` section."""
    return [
        (
            name,
            *(_fixed(f.get(key), digits) for _, key, digits in LIST_COLUMNS),
            f"{f['lists']:,}",
        )
        for name, f in report["lists"]["policies"].items()
    ]


#: The headers of a table of published lists scored (:func:`published_row`).
PUBLISHED_HEADERS = (
    "path",
    *(header for header, _, _ in LIST_COLUMNS),
    "lists",
    "judged",
    "no list yet",
)


def published_row(path: str, scored: Mapping[str, Any]) -> tuple[str, ...]:
    """One row of :data:`PUBLISHED_HEADERS`: ``scored`` is
    :func:`~online_models.published_lists.score_published`'s report.

    >>> figures = {key: 0.5 for _, key, _ in LIST_COLUMNS}
    >>> row = published_row("live", {"figures": figures, "lists_used": 40, "judged": 12,
    ...                              "unlisted": 3})
    >>> row[0], row[1], row[-3:]
    ('live', '0.500', ('40', '12', '3'))
    """
    figures = scored["figures"]
    return (
        path,
        *(_fixed(figures.get(key), digits) for _, key, digits in LIST_COLUMNS),
        f"{scored['lists_used']:,}",
        f"{scored['judged']:,}",
        f"{scored['unlisted']:,}",
    )


def list_title(report: Mapping[str, Any]) -> str:
    """What the list table measured: which events, how many."""
    lists = report["lists"]
    return (
        f"published lists, just before {lists['lists_made']:,} positive events (1 in "
        f"{lists['sample_every']:,} after the first {lists['warmup_events']:,} events; "
        f"{_share(lists['repeat_share'])} of them repeat a track played recently)"
    )


def report_tables(report: Mapping[str, Any]) -> list[Table]:
    """The tables, as ``(title, headers, rows)``: engagement candidates, taste rankers
    and, when the report has them, the published lists (printed by :func:`print_report`,
    written in Markdown by the report)."""
    first: Mapping[str, Any] = next(iter(report["ranking"].values()), {})
    metric_names = [key for key in first if key != "events_ranked"]
    lists: list[Table] = []
    if "lists" in report:
        headers = ("policy", *(header for header, _, _ in LIST_COLUMNS), "lists")
        lists.append((list_title(report), headers, list_rows(report)))
    if "published" in report:
        scored = report["published"]
        title = (
            f"the lists the worker's planner publishes for this log, {scored['positives']:,} "
            "positive events each judged against the list just before it "
            "(what tunestream replay --score reads back at --speed 1)"
        )
        lists.append((title, PUBLISHED_HEADERS, [published_row("in process", scored)]))
    return [
        (
            f"engagement models, prequential over {report['events']:,} events of the "
            f"{report.get('source', 'log')} ({_share(report['positive_share'])} positive)",
            ("model", "ROC AUC", "log loss", "ECE", "µs / event"),
            engagement_rows(report),
        ),
        (
            "taste rankers, next positive event",
            ("ranker", *metric_names, "events ranked"),
            ranking_rows(report),
        ),
        *lists,
    ]


def print_report(report: Mapping[str, Any], out: TextIO) -> None:
    """The tables: engagement candidates, taste rankers, then the published lists."""
    write_tables(report_tables(report), out)


def _fixed(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
