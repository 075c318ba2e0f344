"""The contract every rolling statistic keeps: update, read, and a versioned state.

Nothing in ``features`` reads a clock. Every call takes the event time ``ts_ms``
(epoch milliseconds), so replaying a log gives the same numbers as the live
stream and tests move time by hand.

A stat's state is a small JSON-safe dict (str, int, float, list and dict only;
never pickle) tagged ``"v": 1``. Loading a state of any other version raises a
``ValueError`` instead of guessing, so a changelog written by newer code fails
loudly rather than producing quietly wrong features.

>>> state = versioned_state(half_life_s=60.0)
>>> state
{'v': 1, 'half_life_s': 60.0}
>>> read_state(state, "DecayedSum", "half_life_s")
[60.0]
>>> read_state({"v": 2}, "DecayedSum")
Traceback (most recent call last):
...
ValueError: DecayedSum state has version 2; this code reads version 1

A class whose layout changed passes its own ``version`` to both helpers.

Packed columns. Where a state holds many numbers (a user's), they go as one
base64 string per column instead of a JSON list: :func:`pack_floats` keeps
every bit of each double in about 11 characters (a JSON decimal takes ~18), and
:func:`pack_unsigned` writes small ints >= 0 (time steps, indices) in one to
four bytes.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, Self, runtime_checkable

#: The version tag written into, and required from, every state dict by default.
STATE_VERSION = 1


@runtime_checkable
class RollingStat(Protocol):
    """A statistic over timestamped values, driven by event time only.

    ``update`` returns whether the value was folded in: decayed stats always
    accept; a window refuses an event later than its lateness bound. The bool
    (rather than ``None``) lets one loop over mixed stats count refusals.
    """

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Fold in ``value`` observed at event time ``ts_ms``; False if refused."""
        ...

    def read(self, ts_ms: int) -> float:
        """The statistic as of event time ``ts_ms``."""
        ...

    def to_state(self) -> dict[str, Any]:
        """Configuration and running values as a JSON-safe dict."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a stat from ``to_state()`` output."""
        ...


def versioned_state(version: int = STATE_VERSION, /, **fields: Any) -> dict[str, Any]:
    """A state dict tagged with ``version`` (the shared ``STATE_VERSION`` by default)."""
    return {"v": version, **fields}


def state_version(state: Mapping[str, Any]) -> Any:
    """The version tag of ``state`` (None if it has none, or is not a mapping)."""
    return state.get("v") if isinstance(state, Mapping) else None


def read_state(
    state: Mapping[str, Any], owner: str, *fields: str, version: int = STATE_VERSION
) -> list[Any]:
    """Check the version tag of ``state`` and return the required ``fields`` in order.

    ``owner`` names the class in the error, since states of many stats share a table.
    """
    found = state_version(state)
    if type(found) is not int or found != version:  # True == 1 must not pass
        raise ValueError(f"{owner} state has version {found!r}; this code reads version {version}")
    try:
        return [state[field] for field in fields]
    except KeyError as exc:
        raise ValueError(f"{owner} state lacks field {exc.args[0]!r}") from exc


def pack_floats(values: Iterable[float]) -> str:
    """Floats as base64 of their little-endian IEEE 754 doubles: exact, 8 bytes each.

    >>> pack_floats([1.0])
    'AAAAAAAA8D8'
    >>> unpack_floats(pack_floats([0.1, -2.5, 1e-300]))
    [0.1, -2.5, 1e-300]
    """
    values = list(values)
    return _encode(struct.pack(f"<{len(values)}d", *values))


def unpack_floats(text: str) -> list[float]:
    """The floats of :func:`pack_floats`; ``ValueError`` if ``text`` is not such a column."""
    packed = _decode(text)
    if len(packed) % 8:
        raise ValueError(f"a float column holds a multiple of 8 bytes, got {len(packed)}")
    return list(struct.unpack(f"<{len(packed) // 8}d", packed))


def pack_unsigned(values: Iterable[int]) -> str:
    """Ints >= 0 as base64 of varints (7 bits a byte): one byte below 128, three
    below about two million (35 minutes in milliseconds), ten for 2**64 - 1.

    >>> pack_unsigned([0, 127, 300_000])
    'AH/gpxI'
    >>> unpack_unsigned(pack_unsigned([5, 2**63]))
    [5, 9223372036854775808]
    """
    values = values if isinstance(values, list) else list(values)
    if max(values, default=0) <= 0x7F and min(values, default=0) >= 0:
        return _encode(bytes(values))  # one byte each, packed in C: the common case
    out = bytearray()
    append = out.append
    for value in values:
        if value < 0:
            raise ValueError(f"pack_unsigned takes ints >= 0, got {value}")
        while value > 0x7F:
            append(value & 0x7F | 0x80)
            value >>= 7
        append(value)
    return _encode(bytes(out))


def unpack_unsigned(text: str) -> list[int]:
    """The ints of :func:`pack_unsigned`; ``ValueError`` if ``text`` is not such a column."""
    packed = _decode(text)
    if max(packed, default=0) <= 0x7F:
        return list(packed)  # one byte each
    values, value, shift = [], 0, 0
    for byte in packed:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
    if shift:
        raise ValueError("an int column ends inside a number")
    return values


def _encode(packed: bytes) -> str:
    # The "=" padding carries nothing the length does not: left out, restored on decode.
    return base64.b64encode(packed).decode().rstrip("=")


def _decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"a packed column is a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError; name the problem plainly
        raise ValueError(f"a packed column is not base64: {exc}") from exc
