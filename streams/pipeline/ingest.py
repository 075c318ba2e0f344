"""Ingestion as a pure function: message bytes in, what to forward and dead-letter out.

The Faust agent in :mod:`streams.worker.app` only moves bytes between topics and the
table; everything that decides lives here and is tested without a broker.

>>> from streams.contracts.events import EventDecoder
>>> decoder = EventDecoder(now_ms=lambda: 1_767_225_600_000)
>>> state = UserState.empty()
>>> e = {"event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "play",
...      "ts": 1_767_225_599_000, "ms_played": 1000}
>>> import orjson
>>> first = ingest_message(decoder, state, b"u1", orjson.dumps([e, e]), offset=5)
>>> len(first.accepted), len(first.duplicates), first.rejections
(1, 1, [])
>>> again = ingest_message(decoder, state, b"u1", orjson.dumps([e, e]), offset=5)  # replayed
>>> len(again.accepted), len(again.folded), len(again.duplicates)
(1, 0, 1)
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from features import TrackInfo
from streams.contracts.events import Event, EventDecoder, Rejection, encode, text_or_none
from streams.state.keyed_state import UserState


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: named in every dead letter and log line."""

    topic: str
    partition: int
    offset: int


@dataclass
class IngestOutcome:
    """One message's events, sorted into what goes on and what does not.

    ``accepted`` is what goes downstream, replays included; ``folded`` is the
    part of it folded into the user's features now (replays were folded before
    the crash and are not folded twice).
    """

    accepted: list[Event] = field(default_factory=list)
    folded: list[Event] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: Events of an already applied message whose first verdict is forgotten and
    #: that are now too late: applied or refused before, neither again.
    replays_skipped: list[Event] = field(default_factory=list)


TrackLookup = Callable[[str], TrackInfo | None]
#: Called with each event about to be folded, the user's state *before* it, and the
#: track's catalog entry: where a model learns from the event (the example must
#: not see the answer). It may change the state's model parts (its taste vector).
BeforeFold = Callable[[Event, UserState, TrackInfo | None], None]


def _no_catalog(track_id: str) -> None:
    return None


def ingest_message(
    decoder: EventDecoder,
    state: UserState,
    key: bytes | None,
    value: bytes | None,
    offset: int,
    track_of: TrackLookup = _no_catalog,
    partition: int = 0,
    before_fold: BeforeFold | None = None,
) -> IngestOutcome:
    """Decode, validate, check lateness, deduplicate and fold one message into ``state``.

    ``state`` is updated in place: accepted events' ids are remembered, new events
    folded into its features (with ``track_of`` their catalog entry), and the
    message's position recorded; ``before_fold`` sees each new event just before
    it is folded. An event older than the user's newest by more
    than the allowed lateness is rejected as ``too_late``.

    An event remembered from the very same message (a replay, after a crash or
    a rewind of the consumer group) is accepted again, once, and not folded: its
    output may not have got out before the crash. An event whose id is forgotten
    is judged afresh: folded if within the lateness (so a message delivered out
    of order is never lost), and, if too late, dead-lettered as ``too_late``,
    unless its message lies at or before the last one applied to the state: it
    was applied or refused long ago, and neither is repeated (``replays_skipped``).
    """
    events, rejections = decoder.decode(key, value)
    outcome = IngestOutcome(rejections=rejections)
    in_this_message: set[str] = set()
    for event in events:
        event_id = event["event_id"]
        # too_late first: the fingerprint is hashed again only for the rare late event.
        if state.features.too_late(event["ts"]) and state.seen.recall(event_id, offset) is None:
            if state.seen.replayed(partition, offset):
                outcome.replays_skipped.append(event)
            else:
                outcome.rejections.append(_too_late(event, state))
            continue
        verdict = state.seen.add(event_id, offset, event["ts"])
        if verdict == "new" or (verdict == "replay" and event_id not in in_this_message):
            in_this_message.add(event_id)
            outcome.accepted.append(event)
            if verdict == "new":
                track = track_of(event["track_id"])
                if before_fold is not None:
                    before_fold(event, state, track)
                state.features.update(event, track)
                outcome.folded.append(event)
        else:
            outcome.duplicates.append(event)
    if outcome.folded:
        state.seen.applied(partition, offset)
        state.forget_too_late_ids()
    return outcome


def _too_late(event: Event, state: UserState) -> Rejection:
    behind_ms = state.features.latest_ts_ms - event["ts"]
    detail = (
        f"ts is {behind_ms} ms older than the user's newest event; "
        f"the allowed lateness is {state.features.config.lateness_ms} ms"
    )
    return Rejection("too_late", detail, field="ts", event=event, event_id=event["event_id"])


#: Longest detail sentence, message key and field path a dead letter repeats.
MAX_DETAIL_CHARS = 1_000
MAX_KEY_BYTES = 1_024
MAX_FIELD_CHARS = 200


def dead_letter(
    rejection: Rejection,
    source: Source,
    key: bytes | None,
    value: bytes | None,
    now_ms: int,
    original_max_bytes: int = 16_384,
) -> dict[str, Any]:
    """The DLQ record: reason, where it came from, and (a bounded prefix of) the original.

    A rejected event of a batch carries its own JSON (``original``) and its
    index; a refused message carries the message's bytes. Whatever the input's
    size, the record stays small enough to publish: at most ``original_max_bytes``
    of the original are kept (as text when UTF-8, and as base64), with the full
    length and SHA-256; the source topic/partition/offset point to the whole.
    """
    original = _original(rejection, value)
    kept = original[:original_max_bytes]
    return {
        "reason": rejection.reason,
        "detail": _bounded(rejection.detail, MAX_DETAIL_CHARS),
        "field": None if rejection.field is None else _bounded(rejection.field, MAX_FIELD_CHARS),
        "event_id": rejection.event_id,
        "batch_index": rejection.index,
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "key": text_or_none(key[:MAX_KEY_BYTES] if key is not None else None),
            "key_bytes": None if key is None else len(key),
        },
        "original": _utf8_prefix(kept, whole=len(kept) == len(original)),
        "original_b64": base64.b64encode(kept).decode(),
        "original_bytes": len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "original_truncated": len(kept) < len(original),
        "rejected_at": now_ms,
    }


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's message key: the original key, unless too long to repeat."""
    return key if key is None or len(key) <= MAX_KEY_BYTES else None


def _original(rejection: Rejection, value: bytes | None) -> bytes:
    if rejection.index is None and rejection.event is None:
        return value or b""
    try:
        return encode(rejection.event)
    except (TypeError, orjson.JSONEncodeError):  # e.g. nested deeper than orjson writes
        return value or b""


def _utf8_prefix(data: bytes, whole: bool) -> str | None:
    """``data`` as text; a cut prefix loses at most the one character it split."""
    text = text_or_none(data)
    if text is not None or whole:
        return text
    for cut in range(1, 4):
        text = text_or_none(data[:-cut])
        if text is not None:
            return text
    return None


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
