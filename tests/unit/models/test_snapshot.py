"""Snapshots round-trip exactly, and every damaged, forged or foreign blob is refused unread."""

from __future__ import annotations

import ast
import builtins
import hashlib
import hmac
import inspect
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from features.errors import TunestreamError
from online_models import snapshot as module
from online_models.snapshot import (
    ALLOWED_DTYPES,
    MIN_KEY_BYTES,
    REFUSAL_REASONS,
    Snapshot,
    SnapshotKeyError,
    SnapshotRefused,
    decode_snapshot,
    encode_snapshot,
    generate_local_key,
    load_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PREFIX_BYTES = 14  # magic 4, format version 2, signed length 8
TAG_BYTES = 32


def small_snapshot(**changes: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "model": "engagement",
        "version": "lr-3",
        "created_at_ms": 1_700_000_000_000,
        "examples_seen": 1200,
        "source_offsets": {0: 600, 3: 17},
        "metrics": {"roc_auc": 0.71, "reliability": [{"count": 3, "rate": None}]},
        "arrays": {
            "weights": np.array([0.5, -1.0, 2.25]),
            "factors": np.arange(6, dtype=np.int32).reshape(2, 3),
        },
    }
    return Snapshot(**{**fields, **changes})


def refusal(data: bytes, key: bytes = KEY, **limits: int) -> str:
    with pytest.raises(SnapshotRefused) as caught:
        decode_snapshot(data, key, **limits)
    assert "\n" not in str(caught.value)  # one log line
    return caught.value.reason


def seal(header: Any, body: bytes = b"", key: bytes = KEY) -> bytes:
    """A blob signed with ``key`` laid out as the module docstring says, around any header."""
    raw = header if isinstance(header, bytes) else orjson.dumps(header)
    signed_length = PREFIX_BYTES + 4 + len(raw) + len(body)
    signed = b"TSNP" + struct.pack("<HQI", 1, signed_length, len(raw)) + raw + body
    return signed + hmac.new(key, signed, hashlib.sha256).digest()


def header(**changes: Any) -> dict[str, Any]:
    base = {
        "model": "m",
        "version": "v",
        "created_at_ms": 1,
        "examples_seen": 2,
        "source_offsets": {"0": 5},
        "metrics": {},
        "arrays": [{"name": "w", "dtype": "float64", "shape": [2]}],
    }
    return {**base, **changes}


W_BYTES = np.array([1.5, -2.0], dtype="<f8").tobytes()


def assert_same(a: Snapshot, b: Snapshot) -> None:
    for name in ("model", "version", "created_at_ms", "examples_seen", "source_offsets"):
        assert getattr(a, name) == getattr(b, name), name
    sort = orjson.OPT_SORT_KEYS  # the header is written with sorted keys
    assert orjson.dumps(a.metrics, option=sort) == orjson.dumps(b.metrics, option=sort)  # 1 != 1.0
    assert list(a.arrays) == list(b.arrays)
    for name, x in a.arrays.items():
        y = b.arrays[name]
        assert (y.dtype.name, y.shape) == (x.dtype.name, x.shape)
        # Bit for bit: NaN payloads and -0.0 survive; byte order is normalised.
        assert y.tobytes() == x.astype(x.dtype.newbyteorder("<")).tobytes()


# --- round trip -------------------------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
COUNTS = st.integers(0, 2**63 - 1)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(sorted(ALLOWED_DTYPES))))
    dtype = dtype.newbyteorder(draw(st.sampled_from("<>")))  # big-endian input is normalised
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    return draw(hnp.arrays(dtype, shape))


SNAPSHOTS = st.builds(
    Snapshot,
    model=st.text(min_size=1, max_size=12),
    version=st.text(min_size=1, max_size=12),
    created_at_ms=COUNTS,
    examples_seen=COUNTS,
    source_offsets=st.dictionaries(st.integers(0, 1000), COUNTS, max_size=4),
    metrics=st.dictionaries(st.text(max_size=6), JSON, max_size=4),
    arrays=st.dictionaries(st.text(min_size=1, max_size=6), arrays(), max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(SNAPSHOTS)
def test_round_trip_is_exact(snap: Snapshot) -> None:
    loaded = decode_snapshot(encode_snapshot(snap, KEY), KEY)
    assert_same(snap, loaded)
    for array in loaded.arrays.values():
        assert not array.flags.writeable  # a frozen snapshot's weights stay as published


def test_encoding_is_deterministic() -> None:
    assert encode_snapshot(small_snapshot(), KEY) == encode_snapshot(small_snapshot(), KEY)


def test_decoded_arrays_do_not_follow_later_changes_to_the_callers_buffer() -> None:
    buffer = bytearray(encode_snapshot(small_snapshot(), KEY))
    loaded = decode_snapshot(buffer, KEY)  # type: ignore[arg-type]
    buffer[:] = bytes(len(buffer))
    assert loaded.arrays["weights"].tolist() == [0.5, -1.0, 2.25]


# --- damage and forgery: refused before decoding -----------------------------


def test_every_single_byte_change_anywhere_is_refused() -> None:
    blob = encode_snapshot(small_snapshot(), KEY)
    for i in range(len(blob)):
        expected = (
            {"bad_magic"}
            if i < 4
            else {"unsupported_version"}
            if i < 6
            else {"truncated", "unsigned", "bad_length"}  # the signed length disagrees
            if i < PREFIX_BYTES
            else {"bad_signature"}
        )
        for mask in range(1, 256):
            damaged = blob[:i] + bytes([blob[i] ^ mask]) + blob[i + 1 :]
            assert refusal(damaged) in expected, (i, mask)


def test_truncation_at_every_length_is_refused() -> None:
    blob = encode_snapshot(small_snapshot(), KEY)
    for length in range(len(blob)):
        # Cut exactly where the tag starts, the blob is an unsigned one.
        expected = "unsigned" if length == len(blob) - TAG_BYTES else "truncated"
        assert refusal(blob[:length]) == expected, length


def test_bytes_after_the_tag_are_refused() -> None:
    assert refusal(encode_snapshot(small_snapshot(), KEY) + b"\0") == "bad_length"


def test_wrong_key_is_refused() -> None:
    assert refusal(encode_snapshot(small_snapshot(), KEY), key=OTHER_KEY) == "bad_signature"


def test_unsigned_blob_is_refused() -> None:
    assert refusal(seal(header(), W_BYTES)[:-TAG_BYTES]) == "unsigned"


def test_signature_is_checked_before_the_header_is_read() -> None:
    # Signed with another key and carrying a header that is not JSON: had the
    # header been parsed first, this would be refused as bad_header.
    forged = seal(b"{not json", key=OTHER_KEY)
    assert refusal(forged, key=OTHER_KEY) == "bad_header"  # the forgery is well made ...
    assert refusal(forged) == "bad_signature"  # ... and still never parsed under KEY


def test_other_format_versions_are_refused() -> None:
    blob = bytearray(seal(header(), W_BYTES))
    blob[4:6] = struct.pack("<H", 2)
    assert refusal(bytes(blob)) == "unsupported_version"


def test_size_limits_are_enforced_both_ways() -> None:
    blob = encode_snapshot(small_snapshot(), KEY)
    assert refusal(blob, max_bytes=len(blob) - 1) == "too_large"
    assert decode_snapshot(blob, KEY, max_bytes=len(blob)).version == "lr-3"
    with pytest.raises(ValueError, match="over"):
        encode_snapshot(small_snapshot(), KEY, max_bytes=len(blob) - 1)
    assert refusal(blob, max_header_bytes=10) == "bad_header"


def test_the_forging_helper_writes_the_documented_format() -> None:
    # The refusals below are only meaningful if seal() makes valid blobs.
    loaded = decode_snapshot(seal(header(), W_BYTES), KEY)
    assert (loaded.model, loaded.source_offsets) == ("m", {0: 5})
    assert loaded.arrays["w"].tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    ("raw_header", "body", "reason"),
    [
        (b"{not json", W_BYTES, "bad_header"),
        (b"[]", W_BYTES, "bad_header"),
        ({k: v for k, v in header().items() if k != "metrics"}, W_BYTES, "bad_header"),
        (header(extra=1), W_BYTES, "bad_header"),
        (header(created_at_ms=-1), W_BYTES, "bad_header"),
        (header(examples_seen=2.0), W_BYTES, "bad_header"),
        (header(model=""), W_BYTES, "bad_header"),
        (header(source_offsets={"01": 5}), W_BYTES, "bad_header"),
        (header(source_offsets={"0": "5"}), W_BYTES, "bad_header"),
        (header(metrics=[]), W_BYTES, "bad_header"),
        (header(arrays=[{"name": "w", "dtype": "object", "shape": [2]}]), W_BYTES, "bad_arrays"),
        (header(arrays=[{"name": "w", "dtype": "bool", "shape": [16]}]), W_BYTES, "bad_arrays"),
        (header(arrays=[{"name": "w", "dtype": "<f8", "shape": [2]}]), W_BYTES, "bad_arrays"),
        (header(arrays=[{"name": "w", "dtype": "float64", "shape": [3]}]), W_BYTES, "bad_arrays"),
        (header(arrays=[{"name": "w", "dtype": "float64", "shape": [1]}]), W_BYTES, "bad_arrays"),
        (header(arrays=[{"name": "w", "dtype": "float64", "shape": [-2]}]), W_BYTES, "bad_arrays"),
        (
            header(arrays=[{"name": "w", "dtype": "float64", "shape": [2**62]}]),
            W_BYTES,
            "bad_arrays",
        ),
        (
            header(arrays=[{"name": "w", "dtype": "float32", "shape": [2]}] * 2),
            W_BYTES,
            "bad_arrays",
        ),
        (header(arrays={"w": "float64"}), W_BYTES, "bad_arrays"),
    ],
)
def test_signed_but_invalid_contents_are_refused(raw_header: Any, body: bytes, reason: str) -> None:
    # A holder of the key wrote these (a bug, a newer writer): signed, still not loaded.
    assert refusal(seal(raw_header, body)) == reason


def test_header_length_beyond_the_signed_bytes_is_refused() -> None:
    blob = bytearray(seal(header(), W_BYTES))
    blob[14:18] = struct.pack("<I", 10**6)
    signed = bytes(blob[:-TAG_BYTES])
    assert refusal(signed + hmac.new(KEY, signed, hashlib.sha256).digest()) == "bad_header"


def test_every_reason_is_a_declared_label() -> None:
    assert set(REFUSAL_REASONS) == {
        "too_large",
        "truncated",
        "bad_magic",
        "unsupported_version",
        "bad_length",
        "unsigned",
        "bad_signature",
        "bad_header",
        "bad_arrays",
    }
    refused = SnapshotRefused("truncated", "3 bytes")
    assert isinstance(refused, TunestreamError) and isinstance(refused, ValueError)
    assert str(refused) == "truncated: 3 bytes"


# --- pickle is never loaded -----------------------------------------------------

FLAG = "_tunestream_snapshot_test_ran"


class Armed:
    """Unpickling this runs code: it sets a flag on builtins."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"import builtins; builtins.{FLAG} = True",))


@pytest.fixture
def payload() -> Iterator[bytes]:
    data = pickle.dumps(Armed())
    pickle.loads(data)  # prove the payload is live: unpickling does run it
    assert getattr(builtins, FLAG, False) is True
    delattr(builtins, FLAG)
    yield data
    assert not hasattr(builtins, FLAG), "the pickle payload ran"


def test_a_pickle_as_a_snapshot_is_refused_unread(payload: bytes) -> None:
    assert refusal(payload) == "bad_magic"


def test_a_pickle_behind_a_snapshot_prefix_is_refused_unread(payload: bytes) -> None:
    unsigned = seal(b"{}", payload)[:-TAG_BYTES]
    assert refusal(unsigned + bytes(TAG_BYTES)) == "bad_signature"
    assert refusal(seal(payload)) == "bad_header"  # even signed, a header is only ever JSON


def test_a_pickle_carried_as_array_bytes_comes_back_as_bytes(payload: bytes) -> None:
    raw = np.frombuffer(payload, dtype=np.uint8)
    loaded = decode_snapshot(encode_snapshot(small_snapshot(arrays={"blob": raw}), KEY), KEY)
    assert loaded.arrays["blob"].tobytes() == payload


def test_the_module_imports_no_deserialiser_that_runs_code() -> None:
    tree = ast.parse(inspect.getsource(module))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported.isdisjoint({"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"})
    assert "allow_pickle" not in inspect.getsource(module)
    assert "numpy" in imported  # the walk does see imports


# --- what a Snapshot may hold -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": ""}, "model"),
        ({"version": 3}, "version"),
        ({"created_at_ms": True}, "created_at_ms"),
        ({"examples_seen": np.int64(5)}, "examples_seen"),
        ({"source_offsets": {0: -1}}, "source_offsets"),
        ({"source_offsets": {"0": 1}}, "source_offsets"),
        ({"metrics": {"auc": float("nan")}}, "metrics"),
        ({"metrics": {"pair": (1, 2)}}, "metrics"),
        ({"metrics": {"big": 2**64}}, "metrics"),
        ({"metrics": {1: 0.5}}, "metrics"),
        ({"arrays": {"w": [1.0, 2.0]}}, "arrays"),
        ({"arrays": {"w": np.array([object()])}}, "arrays"),
        ({"arrays": {"w": np.array([True])}}, "arrays"),
        ({"arrays": {"w": np.array([1j])}}, "arrays"),
        ({"arrays": {"w": np.array(["a"])}}, "arrays"),
        ({"arrays": {"w": np.array([1], dtype="datetime64[s]")}}, "arrays"),
        ({"arrays": {"": np.zeros(1)}}, "arrays"),
    ],
)
def test_a_snapshot_refuses_what_would_not_round_trip(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        small_snapshot(**changes)


def test_deeply_nested_metrics_are_refused_not_a_recursion_error() -> None:
    nested: Any = 0.5
    for _ in range(2000):
        nested = [nested]
    with pytest.raises(ValueError, match="deeper"):
        small_snapshot(metrics={"deep": nested})


# --- keys -------------------------------------------------------------------


def test_key_from_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"f" * 40 + b"\n")
    assert load_key("s" * 32, str(key_file)) == b"s" * 32
    assert load_key(None, str(key_file)) == b"f" * 40  # the final newline is not key
    assert load_key("", str(key_file)) == b"f" * 40  # an empty setting is an unset one


def test_a_binary_key_file_is_read_as_bytes(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(bytes(range(100, 150)))
    assert load_key(None, str(key_file)) == bytes(range(100, 150))


@pytest.mark.parametrize(
    ("setting", "file_text", "message"),
    [
        (None, None, "no snapshot signing key: set TUNESTREAM_SNAPSHOT_KEY or"),
        ("", "", "TUNESTREAM_SNAPSHOT_KEY_FILE: .* is empty"),
        ("secret-but-short", None, "TUNESTREAM_SNAPSHOT_KEY is 16 bytes; .* at least 32"),
        ("   ", None, "TUNESTREAM_SNAPSHOT_KEY is 0 bytes"),
        (None, "tiny-secret\n", r"TUNESTREAM_SNAPSHOT_KEY_FILE \(.*\) is 11 bytes"),
    ],
)
def test_key_errors_say_what_is_wrong_and_never_the_key(
    tmp_path: Path, setting: str | None, file_text: str | None, message: str
) -> None:
    key_file = None
    if file_text is not None:
        key_file = tmp_path / "key"
        key_file.write_text(file_text)
    with pytest.raises(SnapshotKeyError, match=message) as caught:
        load_key(setting, None if key_file is None else str(key_file))
    text = str(caught.value)
    assert "\n" not in text
    for secret in ("secret-but-short", "tiny-secret"):
        assert secret not in text


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "key"
    with pytest.raises(SnapshotKeyError, match=f"cannot read {missing}: No such file"):
        load_key(None, str(missing))
    with pytest.raises(SnapshotKeyError, match="cannot read"):
        load_key(None, str(tmp_path))  # a directory


def test_generated_local_keys_are_fresh_and_usable() -> None:
    a, b = generate_local_key(), generate_local_key()
    assert len(a) == MIN_KEY_BYTES and a != b
    assert decode_snapshot(encode_snapshot(small_snapshot(), a), a).version == "lr-3"
    assert refusal(encode_snapshot(small_snapshot(), a), key=b) == "bad_signature"


@pytest.mark.parametrize("key", [b"", b"k" * 31, "k" * 32])
def test_encode_and_decode_refuse_a_short_or_text_key(key: Any) -> None:
    blob = encode_snapshot(small_snapshot(), KEY)
    with pytest.raises(SnapshotKeyError):
        encode_snapshot(small_snapshot(), key)
    with pytest.raises(SnapshotKeyError):
        decode_snapshot(blob, key)
