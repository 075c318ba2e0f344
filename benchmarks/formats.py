"""The offline evaluation on each log format: one simulated stream, written in every
format, read back by the loaders and scored by ``tunestream evaluate``'s own code.

``python -m benchmarks.formats [--events N] [--list-samples N] [--quick] [--json]``.
The fixtures of ``tests/fixtures/loaders`` are a few lines each, too small for any
figure; so the seeded simulator's stream (exactly the one ``tunestream evaluate``
replays when given no log: :func:`simulated_stream`, ``N`` events, 20,000 by default,
``--quick`` 400) is written into a temporary directory as a log of each of
:data:`streams.tools.loaders.FORMATS`, following the mapping rules of
:mod:`streams.tools.loaders` in reverse, one small writer per format. Each log is
then evaluated by :func:`streams.tools.evaluate.evaluate` as ``tunestream evaluate
LOG --format F --list-samples 500 --models logistic`` would (the engagement models
limited to ``logistic`` to keep it fast: this table is about the lists), and so is
the simulator's stream itself (no log). One row per source; each figure is of that
run. With 500 lists a policy, one list is 0.002 of a hit-rate and the binomial
standard error of a hit-rate near 0.15 about 0.016; the sources share the events
they list (but for the formats that drop some), so their gaps are less noisy
than that, but read a gap under about 0.02 as none. The default run takes some
2.5 minutes on a 2-core machine (20-35 s a source):

``events``, ``users``, ``tracks``
    Events the loader returned (the replay's length), distinct ``user_id`` and
    ``track_id`` among them.
``catalogue``, ``artists``
    Tracks and distinct artists of the catalog the replay used (the list
    evaluation's catalogue: random draws from it, coverage and artist Gini are
    over it).
``lists``
    Lists each policy made (one per sampled positive event).
``hit@10 <policy>``
    The share of sampled lists holding the positive event's track
    (:mod:`online_models.list_evaluation`: after the first 20 % of the events, at
    most ``list_samples`` positive events, evenly spaced; each policy lists just
    before the event, from the state before it): ``tunestream`` (the list builder),
    ``popularity`` (the trending board), ``BiasedMF`` (River's, alone), ``random``
    and ``no-rerank`` (the list builder without its re-ranking rules).
``Gini <policy>``
    The artist Gini of every item the policy showed, over every catalogue artist
    (0: all artists shown alike; 1: one artist shown).

What each writer keeps and what it loses (the loader's rule in brackets):

``jsonl``
    The events verbatim, and the simulator's catalog as JSON Lines
    (``catalog.jsonl``, passed as ``--catalog``). Nothing lost: its row must
    equal the simulator's, which checks the harness itself.
``movielens``
    ``u.data`` ratings and ``u.item`` (every track, each simulated genre renamed to
    one MovieLens genre, :data:`MOVIELENS_GENRE_OF`, one to one, so the genre
    partition is kept). A play heard through and the save that follows it (the
    simulator saves only right after a play of the same track) become one rating
    5 [play + save]; a play heard through without a save is rated 3 [play], *not*
    4, which the loader would read as play + save and so invent a save; an
    abandoned play (under half the track) 2 and a skip 1 [both a skip]. Lost:
    milliseconds (ratings are in seconds), ``ms_played``, the context and the
    session, every track's duration (200,000 ms each) and the artists: MovieLens
    names none, so each movie is its own artist. A track a user plays ten times is
    ten rating rows of the same pair, which MovieLens itself never has (one
    rating per pair) but the loader reads; their event ids repeat
    (``ml-<user>-<item>``), which only seeds the same negatives for them.
``lastfm`` (Last.fm 1K TSV) and ``lastfm-csv`` (one export per user, with a
header, named after the user)
    Scrobbles: only plays Last.fm would have scrobbled, those heard for at least
    half the track or 4 minutes. Skips and saves are not scrobbles and are
    dropped, and nothing brings them back: the loader infers no skip by default
    (``skip_gap_s`` opts in to a gap proxy, but ``tunestream evaluate`` does not
    pass it), so these logs hold positives only. Track and artist get MusicBrainz
    ids (a UUID derived from the simulator's id) and their ids as names. Lost:
    milliseconds, ``ms_played`` [240,000 each], context, session, genres and
    durations (the catalog is the scrobbled tracks' artists only). The two
    formats give the same events (a test checks it), but in another order where
    events share a second, and with the catalog in another order (which seeds the
    random lists and the models' negative draws): the gap between their rows is
    the noise of the figures themselves. With every event a positive, the
    engagement models' ROC AUC is undefined (null in the report).
``mssd``
    ``log_sim.csv`` sessions and ``tf_sim.csv`` track features. MSSD has no user
    ids: each simulated session becomes its own listener [``user_id`` =
    ``session_id``], so a listener's history never outlives one session. Saves
    are dropped (MSSD has none). A skip sets ``skip_2`` (and ``skip_1`` when under
    12.5 s, nearer the loader's 5 s than its 20 s); a play to the end sets
    ``not_skipped``, a shorter one ``skip_3`` [three quarters heard]. Every row
    of a session carries the UTC date and hour of its first event [ts = that hour
    + 180 s per position], so ``context.hour`` becomes the UTC hour instead of the
    listener's own. ``context_type`` is renamed to MSSD's vocabulary
    (:data:`MSSD_CONTEXT_OF`). The simulator gives its tracks no content or latent
    vector, so ``acoustic_vector_0..7`` are derived deterministically from the
    track's genres and hidden popularity (:func:`acoustic_vector`). Lost: the
    listener, the device, the playlist, genres and artists (each track is its
    own artist).

The keys of ``--json``: ``events`` (asked), ``list_samples``, ``models``, ``seed``,
and ``sources``: per source its row's figures, the event types loaded
(``types``), the log's size on disk (``log_bytes``, 0 for the simulator),
``seconds`` (load and replay) and ``report``, the whole ``tunestream evaluate
--json`` report.

>>> movielens_rating({"type": "play", "ms_played": 200_000}, None)
3
>>> movielens_rating({"type": "skip", "ms_played": 4_000}, None)
1
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any, Final

import orjson

from features import TrackInfo
from features.event_types import PLAY, SAVE, SKIP, engagement_label
from online_models.list_evaluation import BIASED_MF, NO_RERANK, POPULARITY, RANDOM, TUNESTREAM
from streams.contracts.events import Event
from streams.tools.console import Reporter, Table, write_tables
from streams.tools.evaluate import (
    SIMULATED_ARTISTS,
    SIMULATED_TRACKS,
    SIMULATED_USERS,
    EvaluateOptions,
    evaluate,
    events_and_catalog,
)
from streams.tools.loaders import (
    FORMATS,
    MOVIELENS_GENRES,
    MOVIELENS_SHIFT_S,
    MSSD_SKIP_1_MS,
    MSSD_SKIP_2_MS,
    SCROBBLE_MS_PLAYED,
)
from streams.tools.simulator import Population, PopulationConfig, Track

#: The simulator's own stream, evaluated as ``tunestream evaluate`` with no log.
SIMULATOR: Final = "simulator"
#: Every row, in the table's order.
SOURCES: Final = (SIMULATOR, "jsonl", "movielens", "lastfm", "lastfm-csv", "mssd")
#: As ``tunestream evaluate``'s default simulated world (its seed).
SEED: Final = EvaluateOptions.seed
EVENTS: Final = 20_000
QUICK_EVENTS: Final = 400
#: The least ``--events``: fewer leaves a format with no list to score.
MIN_EVENTS: Final = 100
LIST_SAMPLES: Final = 500
QUICK_LIST_SAMPLES: Final = 50
MODELS: Final = ("logistic",)
#: The policies of the table, as the list evaluation names them, and their headers.
HIT_POLICIES: Final = (
    (TUNESTREAM, "tunestream"),
    (POPULARITY, "popularity"),
    (BIASED_MF, "BiasedMF"),
    (RANDOM, "random"),
    (NO_RERANK, "no-rerank"),
)
GINI_POLICIES: Final = ((TUNESTREAM, "tunestream"), (POPULARITY, "popularity"))

#: Each simulated genre as one MovieLens genre (one to one: the genre partition is kept).
MOVIELENS_GENRE_OF: Final = {
    "pop": "comedy",
    "rock": "action",
    "hiphop": "crime",
    "electronic": "sci-fi",
    "rnb": "romance",
    "latin": "adventure",
    "indie": "drama",
    "jazz": "film-noir",
    "classical": "documentary",
    "folk": "western",
    "metal": "horror",
    "ambient": "fantasy",
}
#: MovieLens ratings written, as :func:`streams.tools.loaders.rating_event_types` reads them.
RATING_SAVED: Final = 5  # play + save
RATING_HEARD: Final = 3  # play
RATING_ABANDONED: Final = 2  # skip
RATING_SKIPPED: Final = 1  # skip
#: The simulator's context types in MSSD's vocabulary.
MSSD_CONTEXT_OF: Final = {
    "playlist": "user_collection",
    "album": "catalog",
    "radio": "radio",
    "editorial": "editorial_playlist",
    "search": "catalog",
}
#: A skip heard for less than this is MSSD's ``skip_1`` ("very briefly"): the midpoint
#: of what the loader gives back for ``skip_1`` and ``skip_2`` alone.
MSSD_SKIP_1_BELOW_MS: Final = (MSSD_SKIP_1_MS + MSSD_SKIP_2_MS) // 2
MSSD_LOG_HEADER: Final = (
    "session_id",
    "session_position",
    "session_length",
    "track_id_clean",
    "skip_1",
    "skip_2",
    "skip_3",
    "not_skipped",
    "hour_of_day",
    "date",
    "context_type",
)
MSSD_TRACK_HEADER: Final = (
    "track_id",
    "duration",
    "release_year",
    "us_popularity_estimate",
    *(f"acoustic_vector_{i}" for i in range(8)),
)
LASTFM_CSV_HEADER: Final = (
    "uts",
    "utc_time",
    "artist",
    "artist_mbid",
    "album",
    "album_mbid",
    "track",
    "track_mbid",
)
#: Derived MusicBrainz ids: UUIDs in a namespace of our own.
_MBID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://tunestream.invalid/mbid")
_GENRE_DIMS: Final = 7  # acoustic_vector_0..6; the 8th is the popularity


@dataclass(frozen=True)
class WrittenLog:
    """A log on disk: what ``tunestream evaluate`` is given, and its size."""

    fmt: str
    paths: tuple[str, ...]
    catalog: str | None = None

    @property
    def bytes(self) -> int:
        files = [Path(p) for p in self.paths] + ([Path(self.catalog)] if self.catalog else [])
        return sum(
            f.stat().st_size
            for path in files
            for f in ([path] if path.is_file() else path.rglob("*"))
            if f.is_file()
        )

    def options(self, list_samples: int, models: Sequence[str] = MODELS) -> EvaluateOptions:
        """As ``tunestream evaluate PATHS --format F [--catalog C]``."""
        return EvaluateOptions(
            log=self.paths,
            fmt=self.fmt,
            catalog=self.catalog,
            models=tuple(models),
            list_samples=list_samples,
        )


Writer = Callable[[Sequence[Event], Sequence[Track], Path], WrittenLog]


# --- the stream -----------------------------------------------------------------------------------


def simulated_population(seed: int = SEED) -> Population:
    """The world ``tunestream evaluate`` simulates when given no log."""
    return Population(
        PopulationConfig(
            seed=seed,
            n_users=SIMULATED_USERS,
            n_tracks=SIMULATED_TRACKS,
            n_artists=SIMULATED_ARTISTS,
            clock="story",
        )
    )


def simulated_stream(n_events: int, seed: int = SEED) -> tuple[list[Event], list[Track]]:
    """The first ``n_events`` of that world, and its tracks (with their hidden
    popularity, which :func:`acoustic_vector` reads)."""
    population = simulated_population(seed)
    return population.take(n_events), population.tracks


# --- jsonl ----------------------------------------------------------------------------------------


def write_jsonl(events: Sequence[Event], tracks: Sequence[Track], folder: Path) -> WrittenLog:
    """``events.jsonl`` verbatim, and the catalog as ``catalog.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    log, catalog = folder / "events.jsonl", folder / "catalog.jsonl"
    log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    catalog.write_bytes(b"".join(orjson.dumps(t.to_dict()) + b"\n" for t in tracks))
    return WrittenLog("jsonl", (str(log),), str(catalog))


# --- movielens ------------------------------------------------------------------------------------


def movielens_rating(event: Mapping[str, Any], track: TrackInfo | None) -> int:
    """The rating an event becomes: 5 a save, 3 a play heard through, 2 a play
    abandoned early, 1 a skip (the loader reads 5 as play + save, 3 as a play, 1
    and 2 as a skip). The save's play is merged by :func:`write_movielens`."""
    if event["type"] == SAVE:
        return RATING_SAVED
    if event["type"] == SKIP:
        return RATING_SKIPPED
    return RATING_HEARD if engagement_label(event, track) else RATING_ABANDONED


def write_movielens(events: Sequence[Event], tracks: Sequence[Track], folder: Path) -> WrittenLog:
    """``u.data`` (``user item rating time``, time in seconds moved back by the
    loader's shift) and ``u.item`` (every track). Users are numbered by first
    event, items by catalog order, both from 1."""
    folder.mkdir(parents=True, exist_ok=True)
    infos = {t.track_id: TrackInfo.from_record(t.to_dict()) for t in tracks}
    items = {t.track_id: n for n, t in enumerate(tracks, 1)}
    users: dict[str, int] = {}
    rows: list[list[int]] = []
    last_row: dict[str, int] = {}  # each user's latest row
    for event in events:
        user = users.setdefault(event["user_id"], len(users) + 1)
        item = items[event["track_id"]]
        rating = movielens_rating(event, infos.get(event["track_id"]))
        before = last_row.get(event["user_id"])
        if rating == RATING_SAVED and before is not None:
            row = rows[before]
            if row[1] == item and row[2] == RATING_HEARD:  # the play this save follows
                row[2] = RATING_SAVED
                continue
        last_row[event["user_id"]] = len(rows)
        rows.append([user, item, rating, event["ts"] // 1000 - MOVIELENS_SHIFT_S])
    data = folder / "u.data"
    data.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))
    (folder / "u.item").write_text(
        "".join(_movielens_movie(items[t.track_id], t) + "\n" for t in tracks), encoding="latin-1"
    )
    return WrittenLog("movielens", (str(folder),))


def _movielens_movie(item: int, track: Track) -> str:
    genres = {MOVIELENS_GENRE_OF[g] for g in track.genres} or {"unknown"}
    flags = ["1" if genre in genres else "0" for genre in MOVIELENS_GENRES]
    url = f"http://tunestream.invalid/{track.track_id}"
    return "|".join([str(item), track.track_id, f"01-Jan-{track.release_year}", "", url, *flags])


# --- lastfm and lastfm-csv ------------------------------------------------------------------------


def mbid(kind: str, simulated_id: str) -> str:
    """A MusicBrainz-shaped id for a simulated artist or track, the same every run.

    >>> mbid("track", "t00001") == mbid("track", "t00001") != mbid("artist", "t00001")
    True
    """
    return str(uuid.uuid5(_MBID_NAMESPACE, f"{kind}:{simulated_id}"))


def scrobbled(event: Mapping[str, Any], track: Track | None) -> bool:
    """Whether Last.fm would have scrobbled the event: a play of at least half the
    track or 4 minutes (a skip or a save is no scrobble)."""
    if event["type"] != PLAY:
        return False
    needed = SCROBBLE_MS_PLAYED if track is None else min(track.duration_ms / 2, SCROBBLE_MS_PLAYED)
    return int(event["ms_played"]) >= needed


def _scrobbles(
    events: Sequence[Event], tracks: Sequence[Track]
) -> Iterable[tuple[Event, Track, int]]:
    """``(event, its track, epoch seconds)`` of every scrobbled event."""
    by_id = {t.track_id: t for t in tracks}
    for event in events:
        track = by_id[event["track_id"]]
        if scrobbled(event, track):
            yield event, track, event["ts"] // 1000


def write_lastfm(events: Sequence[Event], tracks: Sequence[Track], folder: Path) -> WrittenLog:
    """One Last.fm 1K TSV file: ``userid, ISO time, artist MBID, artist, track MBID,
    track``, the scrobbles in stream order."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "userid-timestamp-artid-artname-traid-traname.tsv"
    with path.open("w", encoding="utf-8") as out:
        for event, track, seconds in _scrobbles(events, tracks):
            when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            cells = (
                event["user_id"],
                when,
                mbid("artist", track.artist_id),
                track.artist_id,
                mbid("track", track.track_id),
                track.track_id,
            )
            out.write("\t".join(cells) + "\n")
    return WrittenLog("lastfm", (str(path),))


def write_lastfm_csv(events: Sequence[Event], tracks: Sequence[Track], folder: Path) -> WrittenLog:
    """One scrobble export per user, ``<user_id>.csv``, with the exporters' header
    (``uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid``)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_user: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for event, track, seconds in _scrobbles(events, tracks):
        when = datetime.fromtimestamp(seconds, UTC).strftime("%d %b %Y, %H:%M")
        by_user[event["user_id"]].append(
            (
                str(seconds),
                when,
                track.artist_id,
                mbid("artist", track.artist_id),
                "",
                "",
                track.track_id,
                mbid("track", track.track_id),
            )
        )
    for user_id, rows in by_user.items():
        with (folder / f"{user_id}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(LASTFM_CSV_HEADER)
            writer.writerows(rows)
    return WrittenLog("lastfm-csv", (str(folder),))


# --- mssd -----------------------------------------------------------------------------------------


def _unit(text: str, n: int) -> list[float]:
    """``n`` numbers in [-1, 1] drawn from a hash of ``text``: the same every run."""
    digest = blake2b(text.encode(), digest_size=2 * n).digest()
    return [int.from_bytes(digest[2 * i : 2 * i + 2], "big") / 32_767.5 - 1.0 for i in range(n)]


def acoustic_vector(track: Track) -> tuple[float, ...]:
    """MSSD's ``acoustic_vector_0..7`` for a simulated track, from what the simulator
    knows of it (it has no content or latent vector): 0..6, the mean of a fixed
    direction per genre plus a small jitter per track (so tracks of one genre are
    near, not identical); 7, log10 of the hidden popularity (0 for the top track).

    >>> track = Track("t1", "a1", ("jazz",), 200_000, 2019, False, False, 0.1)
    >>> vector = acoustic_vector(track)
    >>> len(vector), vector[7], vector == acoustic_vector(track)
    (8, -1.0, True)
    """
    directions = [_unit(f"genre:{genre}", _GENRE_DIMS) for genre in track.genres]
    jitter = _unit(f"track:{track.track_id}", _GENRE_DIMS)
    genre_part = [
        sum(d[i] for d in directions) / max(1, len(directions)) + 0.1 * jitter[i]
        for i in range(_GENRE_DIMS)
    ]
    return tuple(round(x, 6) for x in [*genre_part, math.log10(track.popularity)])


def write_mssd(events: Sequence[Event], tracks: Sequence[Track], folder: Path) -> WrittenLog:
    """``log_sim.csv`` (a row per play or skip, by session) and ``tf_sim.csv`` (every
    track: duration in seconds, release year, the acoustic vector)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {t.track_id: t for t in tracks}
    sessions: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event["type"] != SAVE:  # MSSD has no saves
            sessions[event["session_id"]].append(event)
    log = folder / "log_sim.csv"
    with log.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(MSSD_LOG_HEADER)
        for session_id, heard in sessions.items():
            start = datetime.fromtimestamp(heard[0]["ts"] // 1000, UTC)
            for position, event in enumerate(heard, 1):
                writer.writerow(
                    [
                        session_id,
                        position,
                        len(heard),
                        event["track_id"],
                        *_mssd_skips(event, by_id[event["track_id"]]),
                        start.hour,
                        start.strftime("%Y-%m-%d"),
                        _mssd_context(event),
                    ]
                )
    features = folder / "tf_sim.csv"
    with features.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(MSSD_TRACK_HEADER)
        for track in tracks:
            writer.writerow(
                [
                    track.track_id,
                    f"{track.duration_ms / 1000:.3f}",
                    track.release_year,
                    f"{100 * track.popularity:.6f}",
                    *acoustic_vector(track),
                ]
            )
    return WrittenLog("mssd", (str(folder),))


def _mssd_context(event: Mapping[str, Any]) -> str:
    context = event.get("context") or {}
    return MSSD_CONTEXT_OF.get(str(context.get("context_type")), "catalog")


def _mssd_skips(event: Mapping[str, Any], track: Track) -> list[str]:
    """``skip_1, skip_2, skip_3, not_skipped`` (each implies the next, as in MSSD)."""
    ms = int(event["ms_played"])
    if event["type"] == SKIP:
        flags = (ms < MSSD_SKIP_1_BELOW_MS, True, True, False)
    elif ms >= track.duration_ms:
        flags = (False, False, False, True)
    else:
        flags = (False, False, True, False)
    return ["true" if flag else "false" for flag in flags]


WRITERS: Final[Mapping[str, Writer]] = {
    "jsonl": write_jsonl,
    "lastfm": write_lastfm,
    "lastfm-csv": write_lastfm_csv,
    "movielens": write_movielens,
    "mssd": write_mssd,
}


def write_all(
    events: Sequence[Event], tracks: Sequence[Track], root: Path
) -> dict[str, WrittenLog]:
    """Every format's log of ``events``, each in its own folder under ``root``."""
    return {fmt: WRITERS[fmt](events, tracks, root / fmt) for fmt in FORMATS}


# --- evaluating -----------------------------------------------------------------------------------


def evaluate_source(options: EvaluateOptions, reporter: Reporter) -> dict[str, Any]:
    """One row's figures and the whole report, for a log or (no log) the simulator."""
    started = time.perf_counter()
    events, catalog, _ = events_and_catalog(options)
    report = evaluate(options, reporter)
    seconds = time.perf_counter() - started
    lists = report["lists"]
    policies = lists["policies"]
    return {
        "events": len(events),
        "users": len({e["user_id"] for e in events}),
        "tracks": len({e["track_id"] for e in events}),
        "catalogue": len(catalog),
        "artists": len({info.artist_id for info in catalog.values()}),
        "types": dict(sorted(Counter(e["type"] for e in events).items())),
        "lists": lists["lists_made"],
        "hit_rate_at_10": {name: policies[name]["hit_rate_at_10"] for name, _ in HIT_POLICIES},
        "artist_gini": {name: policies[name]["artist_gini"] for name, _ in GINI_POLICIES},
        "seconds": seconds,
        "report": report,
    }


def measure(n_events: int, list_samples: int, reporter: Reporter) -> dict[str, Any]:
    """Every source of :data:`SOURCES` written (but the simulator's), evaluated: the
    ``--json`` object of the module docstring."""
    reporter.phase(f"simulating {n_events:,} events (seed {SEED})")
    events, tracks = simulated_stream(n_events)
    sources: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tunestream-formats-") as root:
        written = write_all(events, tracks, Path(root))
        for source in SOURCES:
            if source == SIMULATOR:
                options = EvaluateOptions(
                    simulated_events=n_events, seed=SEED, models=MODELS, list_samples=list_samples
                )
                log_bytes = 0
            else:
                options = written[source].options(list_samples)
                log_bytes = written[source].bytes
            reporter.phase(f"{source}: evaluating")
            sources[source] = {"log_bytes": log_bytes, **evaluate_source(options, reporter)}
    return {
        "events": n_events,
        "list_samples": list_samples,
        "models": list(MODELS),
        "seed": SEED,
        "sources": sources,
    }


def table_rows(result: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per source: the figures of the module docstring."""
    rows = []
    for source, f in result["sources"].items():
        rows.append(
            (
                source,
                f"{f['events']:,}",
                f"{f['users']:,}",
                f"{f['tracks']:,}",
                f"{f['catalogue']:,}",
                f"{f['artists']:,}",
                f"{f['lists']:,}",
                *(_fixed(f["hit_rate_at_10"][name]) for name, _ in HIT_POLICIES),
                *(_fixed(f["artist_gini"][name]) for name, _ in GINI_POLICIES),
            )
        )
    return rows


def tables(result: Mapping[str, Any]) -> list[Table]:
    """The one table."""
    headers = (
        "source",
        "events",
        "users",
        "tracks",
        "catalogue",
        "artists",
        "lists",
        *(f"hit@10 {label}" for _, label in HIT_POLICIES),
        *(f"Gini {label}" for _, label in GINI_POLICIES),
    )
    title = (
        f"the offline evaluation of {result['events']:,} simulated events (seed "
        f"{result['seed']}) written in each log format, read back and replayed "
        f"(at most {result['list_samples']:,} lists per policy)"
    )
    return [(title, headers, table_rows(result))]


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _events(text: str) -> int:
    value = int(text)
    if value < MIN_EVENTS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_EVENTS}, got {value}")
    return value


def _samples(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.formats", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--events",
        type=_events,
        metavar="N",
        help=f"simulated events written in every format (default {EVENTS:,}; "
        f"--quick: {QUICK_EVENTS}; at least {MIN_EVENTS})",
    )
    parser.add_argument(
        "--list-samples",
        type=_samples,
        metavar="N",
        help=f"positive events listed per source, at most (default {LIST_SAMPLES}; "
        f"--quick: {QUICK_LIST_SAMPLES})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run, a few seconds (what the test runs)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    n_events = args.events or (QUICK_EVENTS if args.quick else EVENTS)
    samples = args.list_samples or (QUICK_LIST_SAMPLES if args.quick else LIST_SAMPLES)
    result = measure(n_events, samples, Reporter(prefix="benchmarks.formats"))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        write_tables(tables(result), sys.stdout, text_columns=("source",))


if __name__ == "__main__":
    main()
