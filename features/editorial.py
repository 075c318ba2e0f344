"""Editorial sets ("algotorial"): tracks an editor chose, boosted in the lists they fit.

An editorial set is a named list of tracks ("Morning coffee"), a ``boost`` that a list
builder adds to each of those tracks' blended score, and an optional *context* that
says when the set applies: UTC hours, devices, context types. Sets arrive on the
compacted ``editorial-sets`` topic keyed by set name, so a newer record replaces a set
and a tombstone (a null value) removes it; :func:`load_editorial` reads the same records
from a JSON Lines file, which ``tunestream editorial FILE`` checks and publishes::

    tunestream editorial deploy/editorial.example.jsonl --broker localhost:9092

**Record** (one JSON object per line of a file; the message value on the topic)::

    {"name": "morning", "title": "Morning coffee", "track_ids": ["t00001", "t00002"],
     "boost": 0.15, "context": {"hours": [6, 7, 8, 9, 10], "devices": ["mobile"],
                                "context_types": ["playlist", "radio"]}}

* ``name``: required, 1-200 characters; the set's identity and its message key.
* ``track_ids``: required, 1-1,000 track ids, each 1-128 characters (the event
  contract's limit); repeats are dropped, keeping the first.
* ``boost``: a number in 0..1 added to a fitting track's blended score (default 0.1).
* ``title``: up to 200 characters, shown in a list item's reason (default: the name).
* ``context``: optional; ``hours`` (whole numbers 0..23), ``devices`` and
  ``context_types`` (up to 64 strings of at most 64 characters each). A context key
  this code does not know is refused rather than ignored, since ignoring it would make
  the set apply more widely than its editor meant. Other unknown top-level fields are
  ignored, as the catalog ignores them.

A bad record is refused whole with a one-line ``ValueError`` naming the field; a bad
file line with a :class:`~features.catalog.CatalogError` that also names ``file:line``.

**Context matching.** A set fits an event when each dimension it names matches and
the dimensions it leaves empty match anything. The hour is the UTC hour of the event
time, ``ts_ms // 3_600_000 % 24`` (not the device's local hour); the device and the
context type are the event context's ``"device"`` and ``"context_type"``. A set that
names devices (or context types) does not fit an event whose context lacks that key.

**Memory.** A set holds at most 1,000 ids of at most 128 characters: under 200 KB at
worst, about 60 KB for 1,000 short ids. :class:`EditorialSets` keeps at most
``max_sets`` sets (default :data:`MAX_SETS`) and at most :data:`MAX_CACHED_PICKS` pick
lists, each with at most one entry per distinct track of the live sets.

>>> morning = EditorialSet.from_record({"name": "morning", "title": "Morning coffee",
...     "track_ids": ["t1", "t2", "t1"], "boost": 0.15, "context": {"hours": [6, 7, 8]}})
>>> morning.track_ids
('t1', 't2')
>>> seven_am, noon = 7 * 3_600_000, 12 * 3_600_000  # 1970-01-01, UTC
>>> morning.fits(seven_am, None), morning.fits(noon, {"device": "mobile"})
(True, False)
>>> sets = EditorialSets()
>>> sets.put(morning)
>>> sets.put(EditorialSet("picks", ("t2", "t3"), title="Editors' picks"))
>>> [(track, s.title) for track, s in sets.picks(seven_am, {"device": "mobile"})]
[('t1', 'Morning coffee'), ('t2', 'Morning coffee'), ('t3', "Editors' picks")]
>>> [track for track, _ in sets.picks(noon, None)]
['t2', 't3']
>>> EditorialSet.from_record({"name": "loud", "track_ids": ["t1"], "boost": 2})
Traceback (most recent call last):
...
ValueError: boost: must be a finite number in 0..1, got 2
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

# The catalog's JSON Lines suffixes and its UTF-8 check: one spelling of both errors.
from features.catalog import _JSON_LINES_SUFFIXES, CatalogError, _utf8

MAX_NAME_CHARS: Final = 200
MAX_TRACKS: Final = 1_000
#: The event contract's longest ``track_id``: a longer id could never be played.
MAX_TRACK_ID_CHARS: Final = 128
#: The event contract's longest ``device`` and ``context_type``.
MAX_CONTEXT_CHARS: Final = 64
MAX_CONTEXT_VALUES: Final = 64
#: Longest file line: room for the largest valid record (about 820 KB even with every
#: character written as a \uXXXX escape), and under a producer's default request limit.
MAX_LINE_BYTES: Final = 1_000_000
#: Most sets a worker keeps, and a file may hold.
MAX_SETS: Final = 200
#: Most pick lists :class:`EditorialSets` caches (one per hour x device x context type).
MAX_CACHED_PICKS: Final = 64
HOUR_MS: Final = 3_600_000
DEFAULT_BOOST: Final = 0.1
_CONTEXT_KEYS: Final = ("hours", "devices", "context_types")
#: What decides which sets fit: UTC hour, device, context type (None: missing or unnamed).
_PicksKey = tuple[int, str | None, str | None]


@dataclass(frozen=True, slots=True)
class EditorialSet:
    """One editor-curated set of tracks, its boost and the context it applies to.

    Constructing one checks every field (``ValueError`` names it), drops repeated
    track ids and sets an empty ``title`` to the ``name``.

    >>> s = EditorialSet("evening", ("t9",), boost=0.2, devices=frozenset({"speaker"}))
    >>> s.title, s.fits(0, {"device": "speaker"}), s.fits(0, {"context_type": "radio"})
    ('evening', True, False)
    """

    name: str
    track_ids: tuple[str, ...]
    boost: float = DEFAULT_BOOST
    hours: frozenset[int] = frozenset()
    devices: frozenset[str] = frozenset()
    context_types: frozenset[str] = frozenset()
    title: str = ""

    def __post_init__(self) -> None:
        _check_text("name", self.name, MAX_NAME_CHARS)
        if not isinstance(self.title, str) or len(self.title) > MAX_NAME_CHARS:
            raise ValueError(
                f"title: expected a string of at most {MAX_NAME_CHARS} characters, "
                f"got {_shown(self.title)}"
            )
        set_ = object.__setattr__  # frozen: normalise in place, once
        set_(self, "track_ids", _track_ids(self.track_ids))
        set_(self, "boost", _boost(self.boost))
        set_(self, "hours", _hours("hours", self.hours))
        set_(self, "devices", _labels("devices", self.devices))
        set_(self, "context_types", _labels("context_types", self.context_types))
        if not self.title:
            set_(self, "title", self.name)

    def fits(self, ts_ms: int, context: Mapping[str, Any] | None) -> bool:
        """Whether the set applies to an event at ``ts_ms`` (UTC) with this ``context``."""
        return self._fits(
            ts_ms // HOUR_MS % 24, _value(context, "device"), _value(context, "context_type")
        )

    def _fits(self, hour: int, device: str | None, context_type: str | None) -> bool:
        return (
            (not self.hours or hour in self.hours)
            and (not self.devices or device in self.devices)
            and (not self.context_types or context_type in self.context_types)
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EditorialSet:
        """Validate an editorial record; ``ValueError`` names the field and the problem."""
        if not isinstance(record, Mapping):
            raise ValueError(f"record: expected an object, got {type(record).__name__}")
        for required in ("name", "track_ids"):
            if record.get(required) is None:
                raise ValueError(f"{required}: missing")
        context = record.get("context")
        if context is None:
            context = {}
        elif not isinstance(context, Mapping):
            raise ValueError(f"context: expected an object, got {_shown(context)}")
        unknown = sorted(str(key) for key in context if key not in _CONTEXT_KEYS)
        if unknown:
            raise ValueError(
                f"context: unknown key {unknown[0]!r}; expected {', '.join(_CONTEXT_KEYS)}"
            )
        track_ids = record["track_ids"]
        if not isinstance(track_ids, list | tuple):
            raise ValueError(f"track_ids: expected a list of track ids, got {_shown(track_ids)}")
        boost = record.get("boost")
        title = record.get("title")
        return cls(
            name=record["name"],
            track_ids=tuple(track_ids),
            boost=DEFAULT_BOOST if boost is None else boost,
            hours=_hours("context.hours", _listed(context, "hours")),
            devices=_labels("context.devices", _listed(context, "devices")),
            context_types=_labels("context.context_types", _listed(context, "context_types")),
            title="" if title is None else title,
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON-safe record ``from_record`` reads back; an empty context left out."""
        record: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "track_ids": list(self.track_ids),
            "boost": self.boost,
        }
        context: dict[str, list[Any]] = {}
        for key in _CONTEXT_KEYS:
            values: frozenset[Any] = getattr(self, key)
            if values:
                context[key] = sorted(values)
        if context:
            record["context"] = context
        return record


class EditorialSets:
    """The live sets by name, as read from the compacted topic; ``picks`` for a moment.

    Memory: at most ``max_sets`` sets (each under 200 KB, typically tens of KB) plus
    at most :data:`MAX_CACHED_PICKS` cached pick lists of at most one entry per
    distinct live track; the cache is dropped whenever a set changes.

    >>> sets = EditorialSets(max_sets=1)
    >>> sets.put(EditorialSet("a", ("t1",)))
    >>> sets.put(EditorialSet("b", ("t2",)))
    Traceback (most recent call last):
    ...
    ValueError: editorial sets: at most 1 live sets; remove one before adding 'b'
    """

    def __init__(self, max_sets: int = MAX_SETS) -> None:
        if max_sets < 1:
            raise ValueError(f"max_sets: must be >= 1, got {max_sets}")
        self.max_sets = max_sets
        self._sets: dict[str, EditorialSet] = {}
        self._devices: frozenset[str] = frozenset()
        self._context_types: frozenset[str] = frozenset()
        self._picks: dict[_PicksKey, list[tuple[str, EditorialSet]]] = {}

    def put(self, editorial_set: EditorialSet) -> None:
        """Add a set, or replace the set of that name; ``ValueError`` when full."""
        name = editorial_set.name
        if name not in self._sets and len(self._sets) >= self.max_sets:
            raise ValueError(
                f"editorial sets: at most {self.max_sets} live sets; "
                f"remove one before adding {name!r}"
            )
        self._sets[name] = editorial_set
        self._changed()

    def remove(self, name: str) -> None:
        """Forget the set of that name (a tombstone); nothing happens if there is none."""
        if self._sets.pop(name, None) is not None:
            self._changed()

    def get(self, name: str) -> EditorialSet | None:
        """The live set of that name, if any."""
        return self._sets.get(name)

    def __len__(self) -> int:
        return len(self._sets)

    def __iter__(self) -> Iterator[EditorialSet]:
        """The live sets, by name."""
        return iter(sorted(self._sets.values(), key=lambda s: s.name))

    def picks(
        self, ts_ms: int, context: Mapping[str, Any] | None
    ) -> list[tuple[str, EditorialSet]]:
        """``(track_id, set)`` for every track of every set that fits now.

        A track in several fitting sets appears once, with the set of the largest
        boost (on a tie, the name first alphabetically). Ordered by boost descending,
        then set name, then position in the set. The list is the caller's to keep.
        """
        device = _value(context, "device")
        context_type = _value(context, "context_type")
        # A value no set names fits exactly as a missing one: one cache entry for both.
        key = (
            ts_ms // HOUR_MS % 24,
            device if device in self._devices else None,
            context_type if context_type in self._context_types else None,
        )
        cached = self._picks.get(key)
        if cached is None:
            if len(self._picks) >= MAX_CACHED_PICKS:
                self._picks.clear()
            cached = self._picks[key] = self._compute(*key)
        return list(cached)

    def _compute(
        self, hour: int, device: str | None, context_type: str | None
    ) -> list[tuple[str, EditorialSet]]:
        fitting = [s for s in self._sets.values() if s._fits(hour, device, context_type)]
        fitting.sort(key=lambda s: (-s.boost, s.name))
        seen: set[str] = set()
        picks = []
        for editorial_set in fitting:
            for track_id in editorial_set.track_ids:
                if track_id not in seen:
                    seen.add(track_id)
                    picks.append((track_id, editorial_set))
        return picks

    def _changed(self) -> None:
        self._picks.clear()
        self._devices = frozenset().union(*(s.devices for s in self._sets.values()))
        self._context_types = frozenset().union(*(s.context_types for s in self._sets.values()))


def load_editorial(path: str | Path) -> list[EditorialSet]:
    """Read a JSON Lines file of editorial sets (``.jsonl``, ``.ndjson``, ``.json``).

    One set per line, in file order; blank lines are skipped. Every line is checked:
    the first bad one raises :class:`~features.catalog.CatalogError` naming
    ``file:line`` and the problem (not JSON, not UTF-8, longer than
    :data:`MAX_LINE_BYTES`, a bad field, a name already used on an earlier line, more
    than :data:`MAX_SETS` sets); an unknown suffix raises it naming the suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _JSON_LINES_SUFFIXES:
        raise CatalogError(
            f"{path}: unknown editorial format {suffix!r}; use JSON Lines: .jsonl, .ndjson or .json"
        )
    sets: list[EditorialSet] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in _bounded_lines(path, handle):
            if not raw.strip():
                continue
            # utf-8-sig: an editor's "Save as UTF-8" may start the file with a byte-order mark.
            text = _utf8(path, number, raw, "utf-8-sig" if number == 1 else "utf-8")
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise CatalogError(f"{path}:{number}: not JSON ({exc})") from None
            try:
                editorial_set = EditorialSet.from_record(record)
            except ValueError as exc:
                raise CatalogError(f"{path}:{number}: {exc}") from None
            if editorial_set.name in first_line:
                raise CatalogError(
                    f"{path}:{number}: name: set {editorial_set.name!r} is already defined "
                    f"on line {first_line[editorial_set.name]}; one line per set"
                )
            if len(sets) == MAX_SETS:
                raise CatalogError(
                    f"{path}:{number}: more than {MAX_SETS} sets; a worker keeps at most {MAX_SETS}"
                )
            first_line[editorial_set.name] = number
            sets.append(editorial_set)
    return sets


def _bounded_lines(path: Path, handle: Any) -> Iterator[tuple[int, bytes]]:
    """The file's lines with their numbers; no line read whole past the limit."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise CatalogError(
                f"{path}:{number}: line longer than {MAX_LINE_BYTES:,} bytes; one set's "
                f"record is far shorter (at most {MAX_TRACKS:,} track ids)"
            )
        yield number, raw


def _value(context: Mapping[str, Any] | None, key: str) -> str | None:
    """A string entry of an event context, or None (no context, no key, not a string)."""
    if not isinstance(context, Mapping):
        return None
    value = context.get(key)
    return value if isinstance(value, str) else None


def _shown(value: Any) -> str:
    """A value for a one-line error: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_text(name: str, value: Any, max_chars: int) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string, got {_shown(value)}")
    if len(value) > max_chars:
        raise ValueError(f"{name}: at most {max_chars} characters, got {len(value)}")


def _listed(context: Mapping[str, Any], key: str) -> Any:
    value = context.get(key)
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        raise ValueError(f"context.{key}: expected a list, got {_shown(value)}")
    return value


def _collection(name: str, value: Any) -> Iterable[Any]:
    # Not any iterable: a string is one, but "mobile" is not a list of devices.
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"{name}: expected a list, got {_shown(value)}")
    return value


def _track_ids(value: Any) -> tuple[str, ...]:
    for track_id in _collection("track_ids", value):
        if not isinstance(track_id, str) or not track_id:
            raise ValueError(f"track_ids: expected non-empty strings, got {_shown(track_id)}")
        if len(track_id) > MAX_TRACK_ID_CHARS:
            raise ValueError(
                f"track_ids: a track id has at most {MAX_TRACK_ID_CHARS} characters, "
                f"got {_shown(track_id)}"
            )
    track_ids = tuple(dict.fromkeys(value))
    if not track_ids:
        raise ValueError("track_ids: expected at least one track id, got none")
    if len(track_ids) > MAX_TRACKS:
        raise ValueError(f"track_ids: at most {MAX_TRACKS:,} tracks, got {len(track_ids):,}")
    return track_ids


def _boost(value: Any) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValueError(f"boost: must be a finite number in 0..1, got {_shown(value)}")
    return float(value)


def _hours(name: str, value: Any) -> frozenset[int]:
    hours = _collection(name, value)
    for hour in hours:
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            raise ValueError(f"{name}: expected whole numbers 0..23 (UTC), got {_shown(hour)}")
    return frozenset(hours)


def _labels(name: str, value: Any) -> frozenset[str]:
    labels = _collection(name, value)
    for label in labels:
        if not isinstance(label, str) or not label or len(label) > MAX_CONTEXT_CHARS:
            raise ValueError(
                f"{name}: expected strings of 1-{MAX_CONTEXT_CHARS} characters, got {_shown(label)}"
            )
    result = frozenset(labels)
    if len(result) > MAX_CONTEXT_VALUES:
        raise ValueError(f"{name}: at most {MAX_CONTEXT_VALUES} values, got {len(result)}")
    return result
