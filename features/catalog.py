"""Track metadata: one :class:`TrackInfo` per track, from a record or a catalog file.

The catalog is what every worker must know about a track to compute features
and build lists: its artist, genres, duration (for completion ratios), release
year, and the editorial and safety flags. Records arrive on the compacted
``track-catalog`` topic; :func:`load_catalog` reads the same records from a
CSV or JSON Lines file for the demo and for offline replay.

>>> track = TrackInfo.from_record({"track_id": "t1", "artist_id": "a1",
...                                "genres": ["jazz"], "duration_ms": 200000})
>>> track.genres, track.explicit, track.to_record()["duration_ms"]
(('jazz',), False, 200000)
>>> TrackInfo.from_record({"track_id": "t1", "duration_ms": -5})
Traceback (most recent call last):
...
ValueError: artist_id: missing
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
FLAGS = ("explicit", "editorial", "blocked")


class CatalogError(ValueError):
    """A catalog file has a bad line; the message names ``file:line``."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What the catalog says about one track. Memory: a few hundred bytes per track."""

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
        genres = record.get("genres") or []
        if not isinstance(genres, list | tuple) or not all(isinstance(g, str) for g in genres):
            raise ValueError("genres: expected a list of strings")
        vector = record.get("content_vector")
        if vector is not None and not (
            isinstance(vector, list | tuple)
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
        ):
            raise ValueError("content_vector: expected a list of numbers")
        return cls(
            track_id=_text(record, "track_id"),
            artist_id=_text(record, "artist_id"),
            genres=tuple(genres),
            duration_ms=_whole(record, "duration_ms", minimum=1),
            release_year=_whole(record, "release_year", minimum=0),
            **{flag: _flag(record, flag) for flag in FLAGS},
            content_vector=None if vector is None else tuple(float(x) for x in vector),
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON-safe record; optional fields left out when unset."""
        record: dict[str, Any] = {
            "track_id": self.track_id,
            "artist_id": self.artist_id,
            "genres": list(self.genres),
        }
        if self.duration_ms is not None:
            record["duration_ms"] = self.duration_ms
        if self.release_year is not None:
            record["release_year"] = self.release_year
        record.update({flag: getattr(self, flag) for flag in FLAGS})
        if self.content_vector is not None:
            record["content_vector"] = list(self.content_vector)
        return record


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise ValueError(f"{name}: missing")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string")
    return value


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
    value = record.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def load_catalog(path: str | Path) -> list[TrackInfo]:
    """Read a catalog from CSV (``.csv``) or JSON Lines (``.jsonl``, ``.ndjson``, ``.json``).

    CSV columns are the record's fields; ``genres`` are separated by ``|``,
    ``content_vector`` by spaces, flags read true/false/1/0/yes/no, and an empty
    cell means "not given". Any bad line raises :class:`CatalogError` naming it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_records(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_records(path)
    else:
        raise CatalogError(f"{path}: unknown catalog format {suffix!r}; use .csv or .jsonl")
    tracks = []
    for line, record in rows:
        try:
            tracks.append(TrackInfo.from_record(record))
        except ValueError as exc:
            raise CatalogError(f"{path}:{line}: {exc}") from None
    return tracks


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise CatalogError(f"{path}:{number}: not JSON ({exc})") from None


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            try:
                yield reader.line_num, _typed_row(row)
            except ValueError as exc:
                raise CatalogError(f"{path}:{reader.line_num}: {exc}") from None


def _typed_row(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text; turn them into the record's types."""
    record: dict[str, Any] = {k: v for k, v in row.items() if k and v is not None and v != ""}
    if "genres" in record:
        record["genres"] = [g for g in record["genres"].split("|") if g]
    for name in ("duration_ms", "release_year"):
        if name in record:
            try:
                record[name] = int(record[name])
            except ValueError:
                raise ValueError(f"{name}: expected a whole number, got {row[name]!r}") from None
    for flag in FLAGS:
        text = row.get(flag, "") or ""
        if text.strip().lower() not in _TRUE | _FALSE:
            raise ValueError(f"{flag}: expected true or false, got {text!r}")
        record[flag] = text.strip().lower() in _TRUE
    if "content_vector" in record:
        try:
            record["content_vector"] = [float(x) for x in record["content_vector"].split()]
        except ValueError:
            raise ValueError("content_vector: expected numbers separated by spaces") from None
    return record
