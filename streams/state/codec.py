"""How a user's state is stored in the changelog: its versioned JSON, deflated.

The state itself stays versioned JSON (:meth:`UserState.to_state`); this is only
its wire form. Artist and track ids, the keys of the JSON and the base64 columns
repeat a few letters, and deflate gives back most of what JSON and base64 add:
a typical user's 3.9 KB of JSON is stored in about 1.9 KB.

A stored value starts with one byte that says how it is stored: ``b"z"``, raw
deflate of the JSON follows. A value that starts with ``b"{"`` is plain JSON, as
earlier releases stored it, and still restores. Anything else is refused with a
``ValueError`` naming the first byte: never guessed at, never unpickled.

>>> stored = encode_state({"v": 6, "ids": ["a0001"] * 40})
>>> stored[:1], len(stored) < len(b'{"v":6,"ids":[' + b'"a0001",' * 40)
(b'z', True)
>>> decode_state(stored) == {"v": 6, "ids": ["a0001"] * 40}
True
>>> decode_state(b'{"v": 5}')
{'v': 5}
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

DEFLATED = b"z"
_PLAIN_JSON = b"{"
_RAW_DEFLATE = -15  # no zlib header or checksum: the JSON inside is checked when read
#: zlib level: 1 takes a third of the time of 6 and costs a few percent of size.
LEVEL = 1


def encode_state(state: dict[str, Any]) -> bytes:
    """``state``'s JSON, deflated, behind the ``b"z"`` marker."""
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW_DEFLATE)
    return DEFLATED + deflate.compress(orjson.dumps(state)) + deflate.flush()


def decode_state(stored: bytes) -> dict[str, Any]:
    """The state of :func:`encode_state` (or of plain JSON); ``ValueError`` otherwise."""
    marker = stored[:1]
    if marker == DEFLATED:
        try:
            text = zlib.decompress(stored[1:], wbits=_RAW_DEFLATE)
        except zlib.error as exc:
            raise ValueError(f"stored state is not deflated JSON: {exc}") from exc
    elif marker == _PLAIN_JSON:
        text = stored
    else:
        raise ValueError(f"stored state starts with {marker!r}; expected {DEFLATED!r} or b'{{'")
    state = orjson.loads(text)
    if not isinstance(state, dict):
        raise ValueError(f"stored state is a JSON {type(state).__name__}, not an object")
    return state
