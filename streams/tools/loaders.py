"""Public listening logs as tunestream events and catalog records, in event-time order.

:func:`load` reads a log in one of :data:`FORMATS` and returns a
:class:`LoadedLog`: the events (dicts valid against the published event schema,
sorted by ``ts``, stable: ties keep file order), the catalog records
(:meth:`features.catalog.TrackInfo.from_record` reads each one), and how many
lines were read and skipped, and why. Pure parsing: no Kafka, no clock.

Every event passes the worker's own check (:meth:`EventDecoder.check
<streams.contracts.events.EventDecoder.check>`: the JSON Schema, nesting depth,
whole numbers) except the two checks that concern live traffic (how far in the
future ``ts`` lies, and the message key). Every catalog record passes
``TrackInfo.from_record``. A bad line raises :class:`LoaderError` naming
``file:line``; with ``errors="skip"`` it is counted under its reason instead.
Blank lines, header rows, undated or repeated scrobbles and MSSD tracks that the
log never plays are always skipped, and counted by reason.

Event time needs every event before the first can be emitted (MovieLens and
Last.fm files are not in time order), so a log is read whole: about half a
kilobyte per event, and 100,000 events in 1-2 s on a 2-core machine (half of it
the worker's validation).

Mapping rules
-------------

``jsonl``: tunestream events, one JSON object per line, as the worker checks
them. No catalog of their own: pass ``catalog=FILE`` (read by
:func:`features.catalog.load_catalog`).

``movielens`` (MovieLens 100K, a directory or ``u.data`` + ``u.item``): a rating
of 4 or 5 is a ``play`` to the end followed by a ``save`` at the same ``ts``
(a film liked was watched, then kept); 3 is a ``play`` to the end; 1 or 2 a
``skip`` after 10 s. ``ts`` is the rating time plus 1,044 weeks (about 20
years): the 1997-98 ratings lie before the schema's 2000 lower bound, and whole
weeks keep weekday and hour. Ids: user ``ml-u<user>``, track ``ml-m<item>``;
each movie is its own artist ``ml-a<item>`` (u.item names no director; one
artist per genre would make artist caps into genre caps). Catalog (all of
``u.item``, read as latin-1): the genre flags (lowercased, ``unknown`` dropped),
the release year, and a nominal 200,000 ms duration for every movie.

``lastfm`` (Last.fm 1K, ``userid \\t timestamp \\t artist-mbid \\t artist \\t
track-mbid \\t track``, ISO-8601 times): every row is a ``play`` of 240,000 ms
(scrobbles carry no duration; Last.fm scrobbles a track only once half of it or
4 minutes was heard). No skips are inferred by default, so skip metrics are not
applicable: scrobbling itself filters skips out. ``skip_gap_s=N`` opts in to a
proxy: a scrobble followed by the same user's next one within N seconds becomes
a ``skip`` whose ``ms_played`` is the gap. Track id: the track MBID, else
``lfm-t-`` + a hash of the case-folded artist and track names; artist id: the
artist MBID, else ``lfm-a-`` + a hash of the name. ``event_id`` hashes user,
time and track: a row repeated verbatim is one listen, its repeat skipped as
``duplicate``. Catalog: each track's artist (first row seen), no genres or
duration.

``lastfm-csv`` (a scrobble export of one user): the same rules and ids as
``lastfm``. A first row naming the columns is a header (``artist``, ``track``
or ``name`` or ``title``, a time in ``uts``, ``timestamp``, ``date``,
``utc_time`` or ``time``, optional ``artist_mbid`` and ``track_mbid``);
otherwise the columns are ``artist,album,track,date``. Times are epoch seconds
(or milliseconds), ``31 Jan 2021 12:34`` (UTC), or ISO-8601. A row with no time
or one before 2000 (exports write 1970 for unknown dates) is skipped as
``undated``. The user is ``user_id=`` or else the file's name without suffix.

``mssd`` (Spotify Music Streaming Sessions Dataset, ``log_*.csv`` and
``tf_*.csv``, a directory searched recursively or the files): MSSD has no user
ids, so each session is its own user (``user_id`` = ``session_id``): user
features are session features. ``skip_2`` true is a ``skip`` (5 s heard when
``skip_1`` is also true, else 20 s), anything else a ``play`` (the whole track
when ``not_skipped``, else three quarters of it). ``ts`` = ``date`` at 00:00
UTC + ``hour_of_day`` hours + (``session_position`` - 1) x 180 s, which keeps
a session's order and, for 20 tracks, its hour. ``context`` holds MSSD's own
``context_type`` (``editorial_playlist``, ``user_collection``, ...) and
``hour``. Catalog: only the tracks the loaded log plays (``tf`` files are
large); ``duration`` seconds as ms, ``release_year``, ``content_vector`` =
``acoustic_vector_0..7``; MSSD names no artist, so each track is its own
artist ``mssd-a-<track_id>``. A track missing from ``tf`` counts 200,000 ms.

>>> import tempfile
>>> folder = tempfile.TemporaryDirectory()
>>> ratings = "7\\t21\\t2\\t881250950\\n7\\t20\\t5\\t881250949\\n"  # user item rating time
>>> _ = (Path(folder.name) / "u.data").write_text(ratings)
>>> log = load(folder.name, "movielens")
>>> [(e["track_id"], e["type"], e["ts"]) for e in log.events]  # doctest: +NORMALIZE_WHITESPACE
[('ml-m20', 'play', 1512662149000), ('ml-m20', 'save', 1512662149000),
 ('ml-m21', 'skip', 1512662150000)]
>>> log.lines_read, log.skipped, log.catalog
(2, {}, [])
>>> folder.cleanup()
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from hashlib import blake2b
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from features.catalog import CatalogError, TrackInfo, load_catalog
from features.errors import TunestreamError
from features.event_types import PLAY, SAVE, SKIP
from streams.contracts.events import Event, EventDecoder, Rejection

FORMATS: Final = ("jsonl", "lastfm", "lastfm-csv", "movielens", "mssd")
#: What a malformed line does: stop the load, or be counted under its reason.
ERROR_MODES: Final = ("raise", "skip")

#: MovieLens times move forward by whole weeks (weekday, hour kept) into the schema's range.
MOVIELENS_SHIFT_S: Final = 1_044 * 7 * 86_400
#: A film is no track: every movie gets this nominal duration.
MOVIELENS_DURATION_MS: Final = 200_000
#: What a skip of a low rating heard: under the usual 30 s skip threshold.
MOVIELENS_SKIP_MS: Final = 10_000
#: The 19 genre flags of u.item, in column order (``Children's`` spelled ``childrens``).
MOVIELENS_GENRES: Final = (
    "unknown",
    "action",
    "adventure",
    "animation",
    "childrens",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "film-noir",
    "horror",
    "musical",
    "mystery",
    "romance",
    "sci-fi",
    "thriller",
    "war",
    "western",
)
#: Scrobbles carry no duration: Last.fm scrobbles a track once half of it or 4 minutes was heard.
SCROBBLE_MS_PLAYED: Final = 240_000
#: MSSD's session positions are spread this far apart in event time (a typical track).
MSSD_SLOT_S: Final = 180
#: Heard before a skip: ``skip_1`` ("very briefly") and ``skip_2`` only ("briefly").
MSSD_SKIP_1_MS: Final = 5_000
MSSD_SKIP_2_MS: Final = 20_000
#: The share of a track heard when ``skip_3`` ("most of the track") ends a play.
MSSD_SKIP_3_SHARE: Final = 0.75
#: Duration assumed for a track that no ``tf_*.csv`` row describes.
MSSD_UNKNOWN_DURATION_MS: Final = 200_000

_MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01: the event schema's lower bound for ts
_MAX_MS_PLAYED: Final = 86_400_000  # the schema's upper bound for ms_played
_NO_DEADLINE_MS: Final = 2**63  # the future-time check is for live traffic, not logs
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAY_MONTH_YEAR: Final = re.compile(
    r"(\d{1,2}) ([A-Za-z]{3})[A-Za-z]* (\d{4}),? (\d{1,2}):(\d{2})(?::(\d{2}))?"
)
_RELEASE_DATE: Final = re.compile(r"\d{1,2}-[A-Za-z]{3}-(\d{4})")
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})

T = TypeVar("T")
R = TypeVar("R")
Record = dict[str, Any]


class LoaderError(TunestreamError, ValueError):
    """A log could not be read; the one-line message names the file, and the line when known."""


@dataclass(frozen=True, slots=True)
class LoadedLog:
    """A log read whole: events in event-time order, catalog records, and the accounting.

    ``lines_read`` counts every line of every file (headers and catalog files
    included); ``skipped`` counts, by reason, the lines that became neither an
    event nor a catalog record.
    """

    fmt: str
    events: list[Event]
    catalog: list[Record]
    lines_read: int
    skipped: dict[str, int]

    @property
    def lines_skipped(self) -> int:
        """All skipped lines, whatever the reason."""
        return sum(self.skipped.values())


def load(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    fmt: str,
    *,
    user_id: str | None = None,
    skip_gap_s: float | None = None,
    catalog: str | os.PathLike[str] | None = None,
    errors: str = "raise",
) -> LoadedLog:
    """Read a log in format ``fmt`` (one of :data:`FORMATS`) from files or directories.

    ``user_id`` names the listener of a ``lastfm-csv`` export (default: the
    file's name); ``skip_gap_s`` opts in to the Last.fm skip proxy (``lastfm``
    and ``lastfm-csv``); ``catalog`` adds a tunestream catalog file whose
    records replace derived ones of the same track; ``errors`` is ``"raise"``
    or ``"skip"`` (count malformed lines instead). Raises :class:`LoaderError`.
    """
    files = _paths(paths)
    if fmt not in _READERS:
        raise LoaderError(f"{files[0]}: unknown log format {fmt!r}; use {', '.join(FORMATS)}")
    options = _Options.checked(fmt, user_id, skip_gap_s, errors)
    tally = _Tally(errors)
    events, records = _READERS[fmt](_expanded(files, fmt), options, tally)
    events.sort(key=itemgetter("ts"))
    if catalog is not None:
        records = _merged(records, Path(catalog))
    return LoadedLog(fmt, events, records, tally.lines_read, dict(tally.skipped))


def rating_event_types(rating: int) -> tuple[str, ...]:
    """The event types a MovieLens rating becomes, in the order they are emitted.

    >>> rating_event_types(5), rating_event_types(3), rating_event_types(2)
    (('play', 'save'), ('play',), ('skip',))
    """
    if rating >= 4:
        return (PLAY, SAVE)
    return (PLAY,) if rating == 3 else (SKIP,)


def scrobble_time_ms(text: str) -> int | None:
    """Epoch ms of a scrobble export's time cell; None when undated (empty, or before 2000).

    >>> scrobble_time_ms("31 Jan 2021 12:34"), scrobble_time_ms("1612096440")
    (1612096440000, 1612096440000)
    >>> scrobble_time_ms("2021-01-31T12:34:00Z"), scrobble_time_ms("01 Jan 1970 00:00")
    (1612096440000, None)
    """
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        value = int(text)
        ms = value if value >= 100_000_000_000 else value * 1000  # seconds until year 5138
    elif match := _DAY_MONTH_YEAR.fullmatch(text):
        ms = _day_month_year_ms(match)
    else:
        ms = _iso_ms(text)
    return ms if ms >= _MIN_TS_MS else None


# --- options, files and accounting ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    user_id: str | None
    skip_gap_ms: int | None

    @classmethod
    def checked(
        cls, fmt: str, user_id: str | None, skip_gap_s: float | None, errors: str
    ) -> _Options:
        if errors not in ERROR_MODES:
            raise LoaderError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
        if user_id is not None and fmt != "lastfm-csv":
            raise LoaderError(f"user_id applies to the lastfm-csv format only, not {fmt!r}")
        if skip_gap_s is None:
            return cls(user_id, None)
        if fmt not in ("lastfm", "lastfm-csv"):
            raise LoaderError(f"skip_gap_s applies to lastfm and lastfm-csv only, not {fmt!r}")
        if (
            isinstance(skip_gap_s, bool)
            or not isinstance(skip_gap_s, int | float)
            or not 0 < skip_gap_s <= 3600
        ):
            raise LoaderError(
                f"skip_gap_s must be a number of seconds in (0, 3600], got {skip_gap_s!r}"
            )
        return cls(user_id, round(skip_gap_s * 1000))


class _Tally:
    """Lines read, and lines skipped by reason; a malformed line raises unless errors='skip'."""

    def __init__(self, errors: str) -> None:
        self.raise_on_bad = errors == "raise"
        self.lines_read = 0
        self.skipped: Counter[str] = Counter()

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def bad(self, where: str, reason: str, detail: str) -> None:
        if self.raise_on_bad:
            raise LoaderError(f"{where}: {detail}")
        self.skipped[reason] += 1


class _BadLine(Exception):
    """A malformed line: its reason code and a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Skip(Exception):
    """A well-formed line that makes no event (an undated scrobble, say): always counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not given:
        raise LoaderError("no log file given")
    return [Path(p) for p in given]


#: What a directory holds for each format (searched recursively for mssd).
_DIRECTORY_PATTERNS: Final = {
    "jsonl": ("*.jsonl", "*.ndjson"),
    "lastfm": ("*.tsv",),
    "lastfm-csv": ("*.csv",),
    "movielens": ("u.data", "u.item"),
    "mssd": ("**/log_*.csv", "**/tf_*.csv"),
}


def _expanded(paths: list[Path], fmt: str) -> list[Path]:
    """Files in the order given; a directory's matching files in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            patterns = _DIRECTORY_PATTERNS[fmt]
            found = sorted({p for pattern in patterns for p in path.glob(pattern) if p.is_file()})
            if not found:
                raise LoaderError(f"{path}: no {' or '.join(patterns)} file for format {fmt!r}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise LoaderError(f"{path}: no such file or directory")
    return files


def _lines(path: Path, tally: _Tally, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line, line end removed."""
    for number, text in _texts(path, tally, encoding):
        if text.strip():
            yield number, text.rstrip("\r\n")
        else:
            tally.skip("blank")


def _texts(path: Path, tally: _Tally, encoding: str) -> Iterator[tuple[int, str]]:
    """Every line decoded, line end kept; a line that does not decode is a bad line."""
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                tally.lines_read += 1
                # utf-8-sig: exports often start with a byte-order mark.
                codec = "utf-8-sig" if number == 1 and encoding == "utf-8" else encoding
                try:
                    yield number, raw.decode(codec)
                except UnicodeDecodeError as exc:
                    detail = f"not {encoding} text ({exc.reason} at byte {exc.start} of the line)"
                    tally.bad(f"{path}:{number}", "not_utf8", detail)
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _csv_rows(path: Path, tally: _Tally) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-blank CSV row (a quoted cell may span lines)."""
    reader = csv.reader(text for _, text in _texts(path, tally, "utf-8"))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            tally.bad(f"{path}:{reader.line_num}", "bad_csv", f"CSV: {exc}")
            continue
        if any(cell.strip() for cell in row):
            yield reader.line_num, row
        else:
            tally.skip("blank")


def _each(
    path: Path, tally: _Tally, rows: Iterable[tuple[int, T]], parse: Callable[[T], R]
) -> Iterator[tuple[int, R]]:
    """``parse`` every row; bad and skipped rows are tallied, the rest yielded with their line."""
    for number, row in rows:
        try:
            yield number, parse(row)
        except _BadLine as bad:
            tally.bad(f"{path}:{number}", bad.reason, bad.detail)
        except _Skip as skip:
            tally.skip(skip.reason)


def _merged(records: list[Record], path: Path) -> list[Record]:
    """Derived records, each replaced by the catalog file's record of the same track."""
    try:
        extra = {track.track_id: track.to_record() for track in load_catalog(path)}
    except CatalogError as exc:
        raise LoaderError(str(exc)) from exc
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    merged = {record["track_id"]: record for record in records}
    merged.update(extra)
    return list(merged.values())


# --- shared checks and field readers --------------------------------------------------------------


@cache
def _decoder() -> EventDecoder:
    return EventDecoder()


def _checked(item: Any) -> Event:
    """``item`` if the worker would accept it (live-traffic checks aside), else a bad line."""
    user = item.get("user_id") if isinstance(item, dict) else None
    problem: Rejection | None = _decoder().check(
        item, user if isinstance(user, str) else None, _NO_DEADLINE_MS
    )
    if problem is not None:
        event_id = item.get("event_id") if isinstance(item, dict) else None
        about = f"event {event_id!r}: " if isinstance(event_id, str) else ""
        raise _BadLine(problem.reason, f"{about}{problem.reason}: {problem.detail}")
    event: Event = item
    return event


def _record(record: Record) -> Record:
    """``record`` if ``TrackInfo.from_record`` accepts it, else a bad line."""
    try:
        TrackInfo.from_record(record)
    except ValueError as exc:
        raise _BadLine("bad_catalog_record", f"catalog record: {exc}") from None
    return record


def _shown(text: str) -> str:
    """A cell quoted for a one-line message, cut short if long."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"


def _whole(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadLine(
            "bad_number", f"{name}: expected a whole number, got {_shown(text)}"
        ) from None


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _BadLine("bad_number", f"{name}: expected a number, got {_shown(text)}") from None


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _BadLine("bad_value", f"{name}: expected true or false, got {_shown(text)}")


def _iso_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 time; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        detail = f"time: expected ISO-8601 such as 2009-05-04T23:08:57Z, got {_shown(text)}"
        raise _BadLine("bad_timestamp", detail) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _day_month_year_ms(match: re.Match[str]) -> int:
    day, month_name, year, hour, minute, second = match.groups()
    month = _MONTHS.get(month_name.lower())
    try:
        if month is None:
            raise ValueError(f"unknown month {month_name!r}")
        moment = datetime(
            int(year), month, int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
        )
    except ValueError as exc:
        raise _BadLine("bad_timestamp", f"time: {exc}, in {_shown(match.string)}") from None
    return (moment - _EPOCH) // _MS


def _digest(*parts: str) -> str:
    """A short stable hash of ``parts`` (unit separators between them)."""
    return blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def _name_id(prefix: str, *names: str) -> str:
    """A stable id from names, whatever their case or surrounding spaces."""
    return prefix + _digest(*(name.strip().casefold() for name in names))


def _header_index(path: Path, header: list[str], required: Iterable[str]) -> dict[str, int]:
    """Column positions of a CSV header; a missing required column stops the load."""
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in index]
    if missing:
        raise LoaderError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    return index


def _cells(row: list[str], width: int) -> list[str]:
    if len(row) < width:
        raise _BadLine("wrong_field_count", f"expected {width} cells, got {len(row)}")
    return [cell.strip() for cell in row]


# --- jsonl ----------------------------------------------------------------------------------------


def _read_jsonl(
    files: list[Path], options: _Options, tally: _Tally
) -> tuple[list[Event], list[Record]]:
    events = [
        event
        for path in files
        for _, event in _each(path, tally, _lines(path, tally), _jsonl_event)
    ]
    return events, []


def _jsonl_event(text: str) -> Event:
    try:
        item = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _BadLine("not_json", f"not JSON: {exc}") from None
    return _checked(item)


# --- movielens ------------------------------------------------------------------------------------


def _read_movielens(
    files: list[Path], options: _Options, tally: _Tally
) -> tuple[list[Event], list[Record]]:
    movie_files = [p for p in files if p.suffix == ".item"]
    rating_files = [p for p in files if p.suffix != ".item"]
    if not rating_files:
        raise LoaderError(f"{files[0]}: no ratings file (u.data) given, only u.item")
    sibling = rating_files[0].parent / "u.item"
    if not movie_files and sibling.is_file():
        movie_files = [sibling]
    catalog = [
        record
        for path in movie_files
        for _, record in _each(path, tally, _lines(path, tally, "latin-1"), _movielens_movie)
    ]
    events = [
        event
        for path in rating_files
        for _, pair in _each(path, tally, _lines(path, tally), _movielens_rating)
        for event in pair
    ]
    return events, catalog


def _movielens_rating(text: str) -> list[Event]:
    fields = text.split("\t")
    if len(fields) != 4:
        detail = f"expected 4 tab-separated fields (user item rating timestamp), got {len(fields)}"
        raise _BadLine("wrong_field_count", detail)
    user = _whole(fields[0], "user id")
    item = _whole(fields[1], "item id")
    rating = _whole(fields[2], "rating")
    if not 1 <= rating <= 5:
        raise _BadLine("bad_value", f"rating: expected 1 to 5, got {rating}")
    ts = (_whole(fields[3], "timestamp") + MOVIELENS_SHIFT_S) * 1000
    events = []
    for kind in rating_event_types(rating):
        ms_played = {PLAY: MOVIELENS_DURATION_MS, SAVE: 0, SKIP: MOVIELENS_SKIP_MS}[kind]
        suffix = "-save" if kind == SAVE else ""
        event = {
            "event_id": f"ml-{user}-{item}{suffix}",
            "user_id": f"ml-u{user}",
            "track_id": f"ml-m{item}",
            "type": kind,
            "ts": ts,
            "ms_played": ms_played,
        }
        events.append(_checked(event))
    return events


def _movielens_movie(text: str) -> Record:
    fields = text.split("|")
    width = 5 + len(MOVIELENS_GENRES)
    if len(fields) != width:
        detail = (
            f"expected {width} |-separated fields (id, title, dates, URL, 19 genre flags), "
            f"got {len(fields)}"
        )
        raise _BadLine("wrong_field_count", detail)
    movie = _whole(fields[0], "movie id")
    flags = [
        _flag(flag, f"{genre} flag")
        for genre, flag in zip(MOVIELENS_GENRES, fields[5:], strict=True)
    ]
    record: Record = {
        "track_id": f"ml-m{movie}",
        "artist_id": f"ml-a{movie}",
        "genres": [
            g for g, on in zip(MOVIELENS_GENRES, flags, strict=True) if on and g != "unknown"
        ],
        "duration_ms": MOVIELENS_DURATION_MS,
        "title": fields[1],
    }
    released = fields[2].strip()
    if released:
        match = _RELEASE_DATE.fullmatch(released)
        if match is None:
            raise _BadLine(
                "bad_value", f"release date: expected like 01-Jan-1995, got {_shown(released)}"
            )
        record["release_year"] = int(match.group(1))
    return _record(record)


# --- lastfm and lastfm-csv ------------------------------------------------------------------------


class _Scrobbles:
    """Events and the track catalog built from scrobbles (Last.fm 1K rows or CSV exports)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.tracks: dict[str, Record] = {}

    def add(
        self, user_id: str, ts: int, artist_mbid: str, artist: str, track_mbid: str, track: str
    ) -> None:
        if not artist_mbid and not artist:
            raise _BadLine("missing_value", "no artist MBID and no artist name")
        if not track_mbid and not track:
            raise _BadLine("missing_value", "no track MBID and no track name")
        track_id = track_mbid or _name_id("lfm-t-", artist, track)
        event = {
            "event_id": "lfm-" + _digest(user_id, str(ts), track_id),
            "user_id": user_id,
            "track_id": track_id,
            "type": PLAY,
            "ts": ts,
            "ms_played": SCROBBLE_MS_PLAYED,
        }
        self.events.append(_checked(event))
        if track_id not in self.tracks:
            artist_id = artist_mbid or _name_id("lfm-a-", artist)
            record = {
                "track_id": track_id,
                "artist_id": artist_id,
                "title": track,
                "artist_name": artist,
            }
            self.tracks[track_id] = _record(record)

    def result(self, skip_gap_ms: int | None, tally: _Tally) -> tuple[list[Event], list[Record]]:
        """Events in time order, a verbatim repeat dropped, skips inferred if asked."""
        self.events.sort(key=itemgetter("ts"))
        # A repeat has its original's event id, so it sits next to it in its user's
        # sequence. Dropped here, it cannot turn the original into a 0 ms "skip".
        last_id: dict[str, str] = {}
        events = []
        for event in self.events:
            if last_id.get(event["user_id"]) == event["event_id"]:
                tally.skip("duplicate")
                continue
            last_id[event["user_id"]] = event["event_id"]
            events.append(event)
        if skip_gap_ms is not None:
            infer_skips(events, skip_gap_ms)
        return events, list(self.tracks.values())


def infer_skips(events: list[Event], skip_gap_ms: int) -> int:
    """Turn each event followed by its user's next one within ``skip_gap_ms`` into a skip.

    ``events`` must be sorted by ``ts``; a skip's ``ms_played`` becomes the gap.
    Returns how many events became skips.

    >>> log = [{"user_id": "u", "type": "play", "ts": t, "ms_played": 1} for t in (0, 9000, 99000)]
    >>> infer_skips(log, 30_000), [(e["type"], e["ms_played"]) for e in log]
    (1, [('skip', 9000), ('play', 1), ('play', 1)])
    """
    previous: dict[str, Event] = {}
    skips = 0
    for event in events:
        before = previous.get(event["user_id"])
        if before is not None and event["ts"] - before["ts"] < skip_gap_ms:
            before["type"] = SKIP
            before["ms_played"] = event["ts"] - before["ts"]
            skips += 1
        previous[event["user_id"]] = event
    return skips


def _read_lastfm(
    files: list[Path], options: _Options, tally: _Tally
) -> tuple[list[Event], list[Record]]:
    scrobbles = _Scrobbles()
    for path in files:
        for _ in _each(path, tally, _lines(path, tally), partial(_lastfm_row, scrobbles)):
            pass
    return scrobbles.result(options.skip_gap_ms, tally)


def _lastfm_row(scrobbles: _Scrobbles, text: str) -> None:
    fields = text.split("\t")
    if len(fields) != 6:
        detail = (
            "expected 6 tab-separated fields (userid timestamp artist-id artist track-id track), "
            f"got {len(fields)}"
        )
        raise _BadLine("wrong_field_count", detail)
    user, when, artist_mbid, artist, track_mbid, track = (field.strip() for field in fields)
    scrobbles.add(user, _iso_ms(when), artist_mbid, artist, track_mbid, track)


#: Header names of each lastfm-csv column, as exporters spell them (lowercase, ``_`` for spaces).
_CSV_COLUMNS: Final = {
    "artist": ("artist", "artist_name"),
    "album": ("album", "album_name"),
    "track": ("track", "track_name", "name", "title"),
    "time": ("uts", "timestamp", "date", "utc_time", "time"),
    "artist_mbid": ("artist_mbid",),
    "track_mbid": ("track_mbid",),
}
#: Without a header: ``artist,album,track,date``.
_CSV_POSITIONS: Final = {"artist": 0, "album": 1, "track": 2, "time": 3}


def csv_header(row: list[str]) -> dict[str, int] | None:
    """Column positions when ``row`` is a lastfm-csv header, else None (a data row).

    A header names at least two known columns and has no time in the fourth
    cell (where a headerless export keeps its date); it must then name an
    artist, a track and a time (the first of ``uts``, ``timestamp``, ``date``,
    ... present), or ``ValueError`` says which is missing.

    >>> csv_header(["uts", "utc_time", "artist", "album", "track"])
    {'artist': 2, 'album': 3, 'track': 4, 'time': 0}
    >>> csv_header(["Artist", "Album", "Track", "31 Jan 2021 12:34"]) is None
    True
    """
    names = [cell.strip().lower().replace(" ", "_") for cell in row]
    known = {alias for aliases in _CSV_COLUMNS.values() for alias in aliases}
    if sum(name in known for name in names) < 2 or (len(row) > 3 and _is_time(row[3])):
        return None
    columns = {}
    for column, aliases in _CSV_COLUMNS.items():
        found = [names.index(alias) for alias in aliases if alias in names]
        if found:
            columns[column] = found[0]
    missing = [c for c in ("artist", "track", "time") if c not in columns]
    if missing:
        raise ValueError(f"header names no {' or '.join(missing)} column")
    return columns


def _is_time(text: str) -> bool:
    try:
        return scrobble_time_ms(text) is not None
    except _BadLine:
        return False


def _read_lastfm_csv(
    files: list[Path], options: _Options, tally: _Tally
) -> tuple[list[Event], list[Record]]:
    scrobbles = _Scrobbles()
    for path in files:
        rows = _csv_rows(path, tally)
        first = next(rows, None)
        if first is None:
            continue
        try:
            header = csv_header(first[1])
        except ValueError as exc:
            raise LoaderError(f"{path}:{first[0]}: {exc}") from None
        if header is None:
            rows = itertools.chain([first], rows)
        else:
            tally.skip("header")
        user_id = options.user_id or path.stem
        parse = partial(_csv_scrobble, scrobbles, user_id, header or _CSV_POSITIONS)
        for _ in _each(path, tally, rows, parse):
            pass
    return scrobbles.result(options.skip_gap_ms, tally)


def _csv_scrobble(
    scrobbles: _Scrobbles, user_id: str, columns: Mapping[str, int], row: list[str]
) -> None:
    cells = _cells(row, max(columns.values()) + 1)
    ts = scrobble_time_ms(cells[columns["time"]])
    if ts is None:
        raise _Skip("undated")
    mbid = {
        name: cells[columns[name]] if name in columns else ""
        for name in ("artist_mbid", "track_mbid")
    }
    artist, track = cells[columns["artist"]], cells[columns["track"]]
    scrobbles.add(user_id, ts, mbid["artist_mbid"], artist, mbid["track_mbid"], track)


# --- mssd -----------------------------------------------------------------------------------------

_MSSD_LOG_COLUMNS: Final = (
    "session_id",
    "session_position",
    "track_id_clean",
    "skip_1",
    "skip_2",
    "skip_3",
    "not_skipped",
    "hour_of_day",
    "date",
    "context_type",
)
_MSSD_VECTOR: Final = tuple(f"acoustic_vector_{i}" for i in range(8))
_MSSD_TRACK_COLUMNS: Final = ("track_id", "duration", "release_year", *_MSSD_VECTOR)


@dataclass(slots=True)
class _Heard:
    """An MSSD event whose ``ms_played`` waits for its track's duration.

    It becomes ``min(share x duration, cap_ms)``.
    """

    event: Event
    share: float
    cap_ms: int


def _read_mssd(
    files: list[Path], options: _Options, tally: _Tally
) -> tuple[list[Event], list[Record]]:
    logs = [p for p in files if p.name.startswith("log_")]
    features = [p for p in files if p.name.startswith("tf_")]
    for path in files:
        if path not in logs and path not in features:
            raise LoaderError(f"{path}: not an MSSD file: expected log_*.csv or tf_*.csv")
    if not logs:
        raise LoaderError(f"{files[0]}: no MSSD session log (log_*.csv) given")
    heard = [h for path in logs for h in _mssd_table(path, tally, _MSSD_LOG_COLUMNS, _mssd_event)]
    wanted = {h.event["track_id"] for h in heard}
    tracks: dict[str, Record] = {}
    for path in features:
        for record in _mssd_table(path, tally, _MSSD_TRACK_COLUMNS, partial(_mssd_track, wanted)):
            if record["track_id"] in tracks:
                tally.skip("duplicate_track")
            else:
                tracks[record["track_id"]] = record
    for h in heard:
        duration_ms = tracks.get(h.event["track_id"], {}).get(
            "duration_ms", MSSD_UNKNOWN_DURATION_MS
        )
        h.event["ms_played"] = min(round(h.share * duration_ms), h.cap_ms)
    return [h.event for h in heard], list(tracks.values())


def _mssd_table(
    path: Path, tally: _Tally, required: Sequence[str], parse: Callable[[Mapping[str, str]], T]
) -> Iterator[T]:
    """Each row of a headed MSSD CSV file, as ``parse`` of its cells by column name."""
    rows = _csv_rows(path, tally)
    first = next(rows, None)
    if first is None:
        return
    tally.skip("header")
    index = _header_index(path, first[1], required)
    width = max(index.values()) + 1

    def named(row: list[str]) -> T:
        cells = _cells(row, width)
        return parse({name: cells[i] for name, i in index.items()})

    for _, value in _each(path, tally, rows, named):
        yield value


def _mssd_event(cells: Mapping[str, str]) -> _Heard:
    session = cells["session_id"]
    position = _whole(cells["session_position"], "session_position")
    hour = _whole(cells["hour_of_day"], "hour_of_day")
    if position < 1 or not 0 <= hour <= 23:
        raise _BadLine(
            "bad_value",
            f"session_position must be >= 1 and hour_of_day 0-23, got {position}, {hour}",
        )
    ts = _day_ms(cells["date"]) + hour * 3_600_000 + (position - 1) * MSSD_SLOT_S * 1000
    skipped = _flag(cells["skip_2"], "skip_2")
    context: dict[str, Any] = {"hour": hour}
    if cells["context_type"]:
        context["context_type"] = cells["context_type"]
    event = {
        "event_id": f"{session}-{position}",
        "user_id": session,  # MSSD has no user ids: the session is the listener
        "track_id": cells["track_id_clean"],
        "type": SKIP if skipped else PLAY,
        "ts": ts,
        "ms_played": 0,  # set once the track's duration is known
        "session_id": session,
        "context": context,
    }
    _checked(event)
    if skipped:
        brief_ms = MSSD_SKIP_1_MS if _flag(cells["skip_1"], "skip_1") else MSSD_SKIP_2_MS
        return _Heard(event, 1.0, brief_ms)
    _flag(cells["skip_3"], "skip_3")  # checked, though a play's share follows not_skipped
    share = 1.0 if _flag(cells["not_skipped"], "not_skipped") else MSSD_SKIP_3_SHARE
    return _Heard(event, share, _MAX_MS_PLAYED)


@cache
def _day_ms(text: str) -> int:
    """Epoch ms of a ``YYYY-MM-DD`` date at 00:00 UTC (a log has few distinct dates)."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise _BadLine("bad_timestamp", f"date: expected YYYY-MM-DD, got {_shown(text)}") from None
    return (day - _EPOCH) // _MS


def _mssd_track(wanted: set[str], cells: Mapping[str, str]) -> Record:
    track_id = cells["track_id"]
    if track_id not in wanted:
        raise _Skip("track_not_in_log")
    duration_s = _number(cells["duration"], "duration")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise _BadLine(
            "bad_value", f"duration: expected seconds > 0, got {_shown(cells['duration'])}"
        )
    vector = [_number(cells[name], name) for name in _MSSD_VECTOR]
    record = {
        "track_id": track_id,
        "artist_id": f"mssd-a-{track_id}",  # MSSD names no artist
        "duration_ms": max(1, round(duration_s * 1000)),
        "release_year": _whole(cells["release_year"], "release_year"),
        "content_vector": vector,
    }
    return _record(record)


_Reader = Callable[[list[Path], _Options, _Tally], tuple[list[Event], list[Record]]]
_READERS: Final[Mapping[str, _Reader]] = {
    "jsonl": _read_jsonl,
    "lastfm": _read_lastfm,
    "lastfm-csv": _read_lastfm_csv,
    "movielens": _read_movielens,
    "mssd": _read_mssd,
}

__all__ = [
    "ERROR_MODES",
    "FORMATS",
    "MOVIELENS_DURATION_MS",
    "MOVIELENS_GENRES",
    "MOVIELENS_SHIFT_S",
    "MOVIELENS_SKIP_MS",
    "MSSD_SKIP_1_MS",
    "MSSD_SKIP_2_MS",
    "MSSD_SKIP_3_SHARE",
    "MSSD_SLOT_S",
    "MSSD_UNKNOWN_DURATION_MS",
    "SCROBBLE_MS_PLAYED",
    "LoadedLog",
    "LoaderError",
    "csv_header",
    "infer_skips",
    "load",
    "rating_event_types",
    "scrobble_time_ms",
]
