"""Track metadata: one :class:`TrackInfo` per track, from a record or a catalog file.

The catalog is what every worker must know about a track to compute features
and build lists: its artist, genres, duration (for completion ratios), release
year, the editorial and safety flags, and optionally a content vector. Records
arrive on the compacted ``track-catalog`` topic; :func:`load_catalog` reads the
same records from a CSV or JSON Lines file for the demo and for offline replay.

A bad record is refused whole, with a one-line ``ValueError`` that names the
field and the problem; a bad file line with a :class:`CatalogError` that also
names ``file:line``. Fields the catalog does not know (a title, say) are ignored.

>>> track = TrackInfo.from_record({"track_id": "t1", "artist_id": "a1",
...                                "genres": ["jazz"], "duration_ms": 200000})
>>> track.genres, track.explicit, track.to_record()["duration_ms"]
(('jazz',), False, 200000)
>>> TrackInfo.from_record({"track_id": "t1", "artist_id": "a1", "duration_ms": -5})
Traceback (most recent call last):
...
ValueError: duration_ms: must be >= 1, got -5
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from features.errors import TunestreamError

#: The boolean fields; CSV cells spell them true/false, 1/0, yes/no, or leave them empty.
FLAGS = ("explicit", "editorial", "blocked")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
_JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


class CatalogError(TunestreamError, ValueError):
    """A catalog file has a bad line, or an unknown format; the message names the file."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What the catalog says about one track.

    Memory: a few hundred bytes per track (plus 8 bytes per content-vector number).
    """

    track_id: str
    artist_id: str
    genres: tuple[str, ...] = ()
    duration_ms: int | None = None
    release_year: int | None = None
    explicit: bool = False
    editorial: bool = False
    blocked: bool = False
    content_vector: tuple[float, ...] | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TrackInfo:
        """Validate a catalog record; ``ValueError`` names the field and the problem."""
        if not isinstance(record, Mapping):
            raise ValueError(f"record: expected an object, got {type(record).__name__}")
        return cls(
            track_id=_text(record, "track_id"),
            artist_id=_text(record, "artist_id"),
            genres=_genres(record),
            duration_ms=_whole(record, "duration_ms", minimum=1),
            release_year=_whole(record, "release_year", minimum=0),
            explicit=_flag(record, "explicit"),
            editorial=_flag(record, "editorial"),
            blocked=_flag(record, "blocked"),
            content_vector=_vector(record),
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON-safe record ``from_record`` reads back; unset optional fields left out."""
        record: dict[str, Any] = {
            "track_id": self.track_id,
            "artist_id": self.artist_id,
            "genres": list(self.genres),
        }
        if self.duration_ms is not None:
            record["duration_ms"] = self.duration_ms
        if self.release_year is not None:
            record["release_year"] = self.release_year
        for flag in FLAGS:
            record[flag] = getattr(self, flag)
        if self.content_vector is not None:
            record["content_vector"] = list(self.content_vector)
        return record


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise ValueError(f"{name}: missing")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _genres(record: Mapping[str, Any]) -> tuple[str, ...]:
    genres = record.get("genres")
    if genres is None:
        return ()
    if not isinstance(genres, list | tuple) or not all(isinstance(g, str) and g for g in genres):
        raise ValueError(f"genres: expected a list of non-empty strings, got {genres!r}")
    return tuple(genres)


def _whole(record: Mapping[str, Any], name: str, minimum: int) -> int | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _flag(record: Mapping[str, Any], name: str) -> bool:
    value = record.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _vector(record: Mapping[str, Any]) -> tuple[float, ...] | None:
    vector = record.get("content_vector")
    if vector is None:
        return None
    # NaN and infinity would not survive a JSON round trip, nor a dot product.
    if not isinstance(vector, list | tuple) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in vector
    ):
        raise ValueError("content_vector: expected a list of finite numbers")
    return tuple(float(x) for x in vector)


def load_catalog(path: str | Path) -> list[TrackInfo]:
    """Read a catalog file, in file order; the format is chosen by the suffix.

    * ``.csv``: a header row naming the record's fields. ``genres`` are separated
      by ``|``, ``content_vector`` numbers by spaces, flags read
      true/false/1/0/yes/no (any case), and an empty cell means "not given".
    * ``.jsonl``, ``.ndjson``, ``.json``: JSON Lines, one record object per line;
      blank lines are skipped.

    Any bad line raises :class:`CatalogError` naming ``file:line`` and the problem;
    an unknown suffix raises it naming the suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_records(path)
    elif suffix in _JSON_LINES_SUFFIXES:
        rows = _json_lines_records(path)
    else:
        raise CatalogError(
            f"{path}: unknown catalog format {suffix!r}; use .csv, .jsonl, .ndjson or .json"
        )
    tracks = []
    for line, record in rows:
        try:
            tracks.append(TrackInfo.from_record(record))
        except ValueError as exc:
            raise CatalogError(f"{path}:{line}: {exc}") from None
    return tracks


def _json_lines_records(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                _utf8(path, number, raw)
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise CatalogError(f"{path}:{number}: not JSON ({exc})") from None


def _utf8(path: Path, number: int, raw: bytes, encoding: str = "utf-8") -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
        ) from None


class _TextLines:
    """A binary file's lines as text; a byte that is not UTF-8 is reported with its line.

    ``number`` is the line read last, so an error of the CSV reader names it too.
    """

    def __init__(self, path: Path, lines: Iterable[bytes]) -> None:
        self.path = path
        self.lines = iter(lines)
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = next(self.lines)
        self.number += 1
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return _utf8(self.path, self.number, raw, "utf-8-sig" if self.number == 1 else "utf-8")


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        lines = _TextLines(path, handle)
        reader = csv.DictReader(lines)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a cell over csv.field_size_limit() characters
                raise CatalogError(f"{path}:{lines.number}: CSV: {exc}") from None
            try:
                yield lines.number, _typed_row(row)
            except ValueError as exc:
                raise CatalogError(f"{path}:{lines.number}: {exc}") from None


def _typed_row(row: dict[str | Any, Any]) -> dict[str, Any]:
    """CSV cells are text; turn them into the record's types."""
    if None in row:  # DictReader files cells beyond the header under the key None
        raise ValueError("more cells than the header has columns")
    cells = {name: text.strip() for name, text in row.items() if text is not None}
    record: dict[str, Any] = {name: text for name, text in cells.items() if text}
    if "genres" in record:
        record["genres"] = [genre for genre in record["genres"].split("|") if genre]
    for name in ("duration_ms", "release_year"):
        if name in record:
            try:
                record[name] = int(record[name])
            except ValueError:
                raise ValueError(f"{name}: expected a whole number, got {cells[name]!r}") from None
    for flag in FLAGS:
        text = cells.get(flag, "").lower()
        if text not in _TRUE and text not in _FALSE:
            raise ValueError(f"{flag}: expected true or false, got {cells[flag]!r}")
        record[flag] = text in _TRUE
    if "content_vector" in record:
        try:
            record["content_vector"] = [float(x) for x in record["content_vector"].split()]
        except ValueError:
            raise ValueError("content_vector: expected numbers separated by spaces") from None
    return record
