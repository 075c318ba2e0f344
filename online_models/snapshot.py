"""Signed, versioned model snapshots: a JSON header, raw arrays, an HMAC-SHA256 tag.

A learner publishes its model as a :class:`Snapshot` (name, version, when,
how many examples, the source offsets it has consumed up to, its live metrics,
and its weights and factors as NumPy arrays); every scorer loads it. No pickle:
the header is JSON and the arrays are raw little-endian bytes of a few plain
numeric dtypes, so loading runs no code whatever the bytes say.

Layout (integers little-endian)::

    offset     size  field
    0          4     magic b"TSNP"
    4          2     format version (uint16), 1
    6          8     signed length S (uint64): bytes covered by the tag, from offset 0
    14         4     header length H (uint32)
    18         H     header, UTF-8 JSON (fields of Snapshot; "arrays" is the manifest)
    18 + H     ...   array bytes, C order, in manifest order, up to S
    S          32    HMAC-SHA256(key, bytes 0 .. S)

Before the tag is checked, only the fixed 14-byte prefix is read: the magic and
format version say how to verify, and the signed length tells a truncated or
unsigned blob from a forged one. Nothing else (header length, JSON, arrays) is
read until ``hmac.compare_digest`` has passed. A refusal is a
:class:`SnapshotRefused` with a fixed ``reason`` (one of :data:`REFUSAL_REASONS`,
ready as a counter label) and a one-line message.

>>> key = b"k" * 32
>>> snap = Snapshot(model="engagement", version="lr-3", created_at_ms=1_700_000_000_000,
...                 examples_seen=1200, source_offsets={0: 600, 1: 600},
...                 metrics={"roc_auc": 0.71}, arrays={"weights": np.array([0.5, -1.0])})
>>> blob = encode_snapshot(snap, key)
>>> loaded = decode_snapshot(blob, key)
>>> loaded.version, loaded.source_offsets, loaded.arrays["weights"]
('lr-3', {0: 600, 1: 600}, array([ 0.5, -1. ]))
>>> try:
...     decode_snapshot(blob[:-1] + b"?", key)
... except SnapshotRefused as refused:
...     print(refused.reason)
bad_signature
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import orjson

from features.errors import TunestreamError

MAGIC: Final = b"TSNP"
FORMAT_VERSION: Final = 1
#: HMAC-SHA256 keys shorter than its 32-byte output weaken it (RFC 2104, section 3).
MIN_KEY_BYTES: Final = 32
#: Default bounds: a snapshot (and its header) larger than this is refused unread.
MAX_SNAPSHOT_BYTES: Final = 256 * 2**20
MAX_HEADER_BYTES: Final = 2**20
#: The dtypes an array may have, by the name the manifest uses; always stored little-endian.
ALLOWED_DTYPES: Final = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "float64",
        "float32",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint64",
        "uint32",
        "uint16",
        "uint8",
    )
}

RefusalReason = Literal[
    "too_large",  # longer than the reader's limit
    "truncated",  # shorter than its prefix says, or cut inside the tag
    "bad_magic",  # not a snapshot at all (a pickle, say)
    "unsupported_version",  # a format version this code does not read
    "bad_length",  # the signed length is impossible, or bytes follow the tag
    "unsigned",  # the signed region ends the blob: no tag
    "bad_signature",  # the tag does not match the key
    "bad_header",  # signed, but the header is not a valid snapshot header
    "bad_arrays",  # signed, but the manifest or the array bytes are invalid
]
#: Every refusal reason, in the order the checks run (for pre-declared counter labels).
REFUSAL_REASONS: Final[tuple[RefusalReason, ...]] = get_args(RefusalReason)

_PREFIX = struct.Struct("<4sHQ")  # magic, format version, signed length
_HEADER_LENGTH = struct.Struct("<I")
_BODY = _PREFIX.size + _HEADER_LENGTH.size  # where the header starts
_TAG_BYTES = hashlib.sha256().digest_size
_HEADER_FIELDS = frozenset(
    {"model", "version", "created_at_ms", "examples_seen", "source_offsets", "metrics", "arrays"}
)
_MAX_INT64 = 2**63 - 1
_MAX_NDIM = 32
_MAX_DEPTH = 64  # nesting of metrics values


class SnapshotRefused(TunestreamError, ValueError):
    """A snapshot that must not be loaded; ``reason`` is one of :data:`REFUSAL_REASONS`."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RefusalReason = reason


class SnapshotKeyError(TunestreamError, ValueError):
    """No usable signing key; the message names the setting, never the key."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A model's state at one moment, as published to ``model-snapshots``.

    ``source_offsets`` maps each source partition to the next offset to read
    (so a resumed learner learns no example twice). ``metrics`` holds JSON
    values only (str, int, finite float, bool, None, lists and str-keyed dicts).
    ``arrays`` hold the weights and factors, with dtypes from :data:`ALLOWED_DTYPES`;
    a decoded snapshot's arrays are read-only (copy one to learn in place).
    Construction checks all of it and raises ``ValueError`` naming the field.
    """

    model: str
    version: str
    created_at_ms: int
    examples_seen: int
    source_offsets: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("model", "version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: must be a non-empty string")
        _check_count("created_at_ms", self.created_at_ms)
        _check_count("examples_seen", self.examples_seen)
        if not isinstance(self.source_offsets, Mapping):
            raise ValueError("source_offsets: must map partition to offset")
        for partition, offset in self.source_offsets.items():
            _check_count("source_offsets partition", partition)
            _check_count(f"source_offsets[{partition}]", offset)
        if not isinstance(self.metrics, Mapping):
            raise ValueError("metrics: must be a dict")
        _check_json("metrics", self.metrics)
        if not isinstance(self.arrays, Mapping):
            raise ValueError("arrays: must map names to numpy arrays")
        for name, array in self.arrays.items():
            _check_array(name, array)


def encode_snapshot(
    snapshot: Snapshot, key: bytes, *, max_bytes: int = MAX_SNAPSHOT_BYTES
) -> bytes:
    """The signed bytes of ``snapshot``; ``ValueError`` if they would exceed ``max_bytes``."""
    _check_key(key)
    arrays = {name: _little_endian(a) for name, a in snapshot.arrays.items()}
    header = orjson.dumps(
        {
            "model": snapshot.model,
            "version": snapshot.version,
            "created_at_ms": snapshot.created_at_ms,
            "examples_seen": snapshot.examples_seen,
            "source_offsets": {str(p): o for p, o in sorted(snapshot.source_offsets.items())},
            "metrics": snapshot.metrics,
            "arrays": [
                {"name": n, "dtype": a.dtype.name, "shape": list(a.shape)}
                for n, a in arrays.items()
            ],
        },
        option=orjson.OPT_SORT_KEYS,
    )
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"snapshot header is {len(header)} bytes, over {MAX_HEADER_BYTES}")
    body = b"".join(a.tobytes() for a in arrays.values())
    signed_length = _BODY + len(header) + len(body)
    if signed_length + _TAG_BYTES > max_bytes:
        raise ValueError(f"snapshot is {signed_length + _TAG_BYTES} bytes, over {max_bytes}")
    signed = b"".join(
        (
            _PREFIX.pack(MAGIC, FORMAT_VERSION, signed_length),
            _HEADER_LENGTH.pack(len(header)),
            header,
            body,
        )
    )
    return signed + hmac.new(key, signed, hashlib.sha256).digest()


def decode_snapshot(
    data: bytes,
    key: bytes,
    *,
    max_bytes: int = MAX_SNAPSHOT_BYTES,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> Snapshot:
    """The snapshot in ``data`` if its tag verifies under ``key``; else :class:`SnapshotRefused`."""
    _check_key(key)
    # An immutable copy: a caller's bytearray cannot change between verification and decoding.
    data = data if type(data) is bytes else bytes(data)
    if len(data) > max_bytes:
        raise SnapshotRefused("too_large", f"{len(data)} bytes, over the limit of {max_bytes}")
    signed_length = _check_prefix(data)
    tag = hmac.new(key, data[:signed_length], hashlib.sha256).digest()
    if not hmac.compare_digest(tag, data[signed_length:]):
        raise SnapshotRefused("bad_signature", "the HMAC-SHA256 tag does not match this key")
    # From here on, the bytes were written by a holder of the key.
    header, arrays_at = _read_header(data, signed_length, max_header_bytes)
    arrays = _read_arrays(data, arrays_at, signed_length, header["arrays"])
    try:
        return Snapshot(
            model=header["model"],
            version=header["version"],
            created_at_ms=header["created_at_ms"],
            examples_seen=header["examples_seen"],
            source_offsets=_offsets(header["source_offsets"]),
            metrics=header["metrics"],
            arrays=arrays,
        )
    except ValueError as exc:
        raise SnapshotRefused("bad_header", str(exc)) from None


def load_key(
    setting_value: str | None,
    key_file: str | None,
    *,
    setting_name: str = "TUNESTREAM_SNAPSHOT_KEY",
    file_setting_name: str = "TUNESTREAM_SNAPSHOT_KEY_FILE",
) -> bytes:
    """The signing key: the setting's UTF-8 bytes, or else the bytes of ``key_file``.

    Empty or None means "not set" (as for every setting); the setting wins when
    both are set. Surrounding whitespace (a file's final newline) is stripped.
    A key needs at least :data:`MIN_KEY_BYTES` bytes: ``secrets.token_hex(32)``
    makes a good one. Errors name the setting and the problem, never the key.

    >>> len(load_key("x" * 40, None))
    40
    >>> try:
    ...     load_key("short", None)
    ... except SnapshotKeyError as exc:
    ...     print(exc)
    TUNESTREAM_SNAPSHOT_KEY is 5 bytes; a signing key needs at least 32
    """
    if setting_value:
        return _long_enough(setting_value.strip().encode("utf-8"), setting_name)
    if key_file:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise SnapshotKeyError(
                f"{file_setting_name}: cannot read {key_file}: {exc.strerror or exc}"
            ) from None
        if not key:
            raise SnapshotKeyError(f"{file_setting_name}: {key_file} is empty")
        return _long_enough(key, f"{file_setting_name} ({key_file})")
    raise SnapshotKeyError(
        f"no snapshot signing key: set {setting_name} or {file_setting_name} "
        "(only the embedded local mode may generate one)"
    )


def generate_local_key() -> bytes:
    """A fresh random key for the embedded local mode (it lives as long as the process)."""
    return secrets.token_bytes(MIN_KEY_BYTES)


def _long_enough(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise SnapshotKeyError(
            f"{where} is {len(key)} bytes; a signing key needs at least {MIN_KEY_BYTES}"
        )
    return key


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise SnapshotKeyError(f"a signing key is at least {MIN_KEY_BYTES} bytes")


def _check_prefix(data: bytes) -> int:
    """The signed length, after checking what may be checked before the tag."""
    if data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise SnapshotRefused("bad_magic", f"does not start with {MAGIC!r}")
    if len(data) < _PREFIX.size:
        raise SnapshotRefused("truncated", f"{len(data)} bytes, shorter than the prefix")
    _, version, signed_length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise SnapshotRefused(
            "unsupported_version", f"format {version}; this code reads {FORMAT_VERSION}"
        )
    if signed_length < _BODY:
        raise SnapshotRefused("bad_length", f"signed length {signed_length} < {_BODY}")
    if len(data) == signed_length:
        raise SnapshotRefused("unsigned", "no HMAC-SHA256 tag follows the signed bytes")
    if len(data) < signed_length + _TAG_BYTES:
        raise SnapshotRefused("truncated", f"{len(data)} bytes of {signed_length + _TAG_BYTES}")
    if len(data) > signed_length + _TAG_BYTES:
        raise SnapshotRefused("bad_length", f"{len(data)} bytes of {signed_length + _TAG_BYTES}")
    return int(signed_length)


def _read_header(data: bytes, signed_length: int, limit: int) -> tuple[dict[str, Any], int]:
    """The header dict and the offset where the array bytes start."""
    (length,) = _HEADER_LENGTH.unpack_from(data, _PREFIX.size)
    if length > limit or _BODY + length > signed_length:
        raise SnapshotRefused("bad_header", f"header length {length} out of bounds")
    try:
        header = orjson.loads(data[_BODY : _BODY + length])
    except orjson.JSONDecodeError as exc:
        raise SnapshotRefused("bad_header", f"not JSON: {exc}") from None
    if not isinstance(header, dict) or header.keys() != _HEADER_FIELDS:
        found = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise SnapshotRefused("bad_header", f"fields {found}, expected {sorted(_HEADER_FIELDS)}")
    return header, _BODY + length


def _read_arrays(data: bytes, at: int, end: int, manifest: Any) -> dict[str, np.ndarray]:
    if not isinstance(manifest, list):
        raise SnapshotRefused("bad_arrays", "the manifest is not a list")
    arrays: dict[str, np.ndarray] = {}
    for entry in manifest:
        name, dtype, shape = _manifest_entry(entry)
        if name in arrays:
            raise SnapshotRefused("bad_arrays", f"array {name!r} appears twice")
        nbytes = dtype.itemsize * math.prod(shape)
        if at + nbytes > end:
            raise SnapshotRefused("bad_arrays", f"array {name!r} runs past the array bytes")
        arrays[name] = np.frombuffer(data, dtype, math.prod(shape), at).reshape(shape)
        at += nbytes
    if at != end:
        raise SnapshotRefused("bad_arrays", f"{end - at} bytes follow the last array")
    return arrays


def _manifest_entry(entry: Any) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not isinstance(entry, dict) or entry.keys() != {"name", "dtype", "shape"}:
        raise SnapshotRefused("bad_arrays", "a manifest entry needs exactly name, dtype, shape")
    name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
    if not isinstance(name, str) or not name:
        raise SnapshotRefused("bad_arrays", "an array name must be a non-empty string")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise SnapshotRefused("bad_arrays", f"array {name!r} has dtype {dtype!r}, not allowed")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise SnapshotRefused("bad_arrays", f"array {name!r} has shape {shape!r}")
    return name, ALLOWED_DTYPES[dtype], tuple(shape)


def _offsets(raw: Any) -> dict[int, int]:
    # Canonical decimal keys only, so "1" and "01" cannot both name partition 1.
    if not isinstance(raw, dict) or not all(
        p.isascii() and p.isdigit() and str(int(p)) == p for p in raw
    ):
        raise ValueError("source_offsets: must map partition numbers to offsets")
    return {int(p): o for p, o in raw.items()}


def _little_endian(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns a 0-d array into shape (1,). tobytes() writes C order.
    return array.astype(ALLOWED_DTYPES[array.dtype.name], copy=False)


def _check_count(what: str, value: Any) -> None:
    if type(value) is not int or not 0 <= value <= _MAX_INT64:  # bool and numpy ints refused
        raise ValueError(f"{what}: must be an int in 0..2**63-1, got {value!r}")


def _check_json(where: str, value: Any, depth: int = 0) -> None:
    """JSON values that survive a round trip unchanged (so no tuples, NaN or huge ints)."""
    if depth > _MAX_DEPTH:  # before Python's own recursion limit could end this
        raise ValueError(f"{where}: nested deeper than {_MAX_DEPTH}")
    if value is None or isinstance(value, bool | str):
        return
    if type(value) is int:
        if not -(2**63) <= value <= _MAX_INT64:
            raise ValueError(f"{where}: int {value} does not fit in 64 bits")
    elif type(value) is float:
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
    elif type(value) is list:
        for i, item in enumerate(value):
            _check_json(f"{where}[{i}]", item, depth + 1)
    elif type(value) is dict:
        for k, item in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string")
            _check_json(f"{where}.{k}", item, depth + 1)
    else:
        raise ValueError(f"{where}: {type(value).__name__} is not a JSON value")


def _check_array(name: Any, array: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"arrays: name {name!r} must be a non-empty string")
    if not isinstance(array, np.ndarray):
        raise ValueError(f"arrays[{name!r}]: {type(array).__name__} is not a numpy array")
    if array.dtype.name not in ALLOWED_DTYPES or array.dtype.kind not in "iuf":
        allowed = ", ".join(ALLOWED_DTYPES)
        raise ValueError(f"arrays[{name!r}]: dtype {array.dtype} is not one of {allowed}")
    if array.ndim > _MAX_NDIM:
        raise ValueError(f"arrays[{name!r}]: {array.ndim} dimensions, over {_MAX_NDIM}")


def json_array(value: Any) -> np.ndarray:
    """A JSON-safe value as the UTF-8 bytes of its JSON: how a snapshot, which holds
    arrays, carries names and small structures.

    >>> array_json(json_array({"a": [1, 2]}))
    {'a': [1, 2]}
    """
    return np.frombuffer(orjson.dumps(value), dtype=np.uint8)


def array_json(array: Any) -> Any:
    """The value :func:`json_array` stored; ``orjson.JSONDecodeError`` if it is not JSON."""
    return orjson.loads(np.asarray(array, dtype=np.uint8).tobytes())


__all__ = [
    "ALLOWED_DTYPES",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "MIN_KEY_BYTES",
    "REFUSAL_REASONS",
    "RefusalReason",
    "Snapshot",
    "SnapshotKeyError",
    "SnapshotRefused",
    "array_json",
    "decode_snapshot",
    "encode_snapshot",
    "generate_local_key",
    "json_array",
    "load_key",
]
