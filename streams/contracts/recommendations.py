"""The output contract: a recommendation list as published to ``recommendations``.

The shape is ``schemas/recommendation.schema.json`` (schema_version 1); this
module is the one place that builds it.

>>> from online_models.trending import PartitionTop, TrendingBoard
>>> top, board = PartitionTop(), TrendingBoard()
>>> top.offer("t9", value=1.0, ts_ms=1_000)
>>> board.merge(top.snapshot(partition=0))
>>> trigger = {"event_id": "e1", "user_id": "u1", "ts": 1_000}
>>> rec = popularity_list(board, trigger, exclude=set(), size=5, now_ms=1_050, list_id="r1")
>>> rec["items"][0]["track_id"], rec["latency_ms"], rec["model_version"]
('t9', 50, 'popularity-v1')
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Mapping, Sequence
from typing import Any

from online_models.base import Ranker

SCHEMA_VERSION = 1


def recommendation_list(
    trigger: Mapping[str, Any],
    items: list[dict[str, Any]],
    model_version: str,
    now_ms: int,
    list_id: str | None = None,
) -> dict[str, Any]:
    """Wrap ranked ``items`` into the versioned output record."""
    return {
        "schema_version": SCHEMA_VERSION,
        "user_id": trigger["user_id"],
        "recommendation_id": list_id or uuid.uuid4().hex,
        "generated_at": now_ms,
        "trigger_event_id": trigger["event_id"],
        "model_version": model_version,
        "latency_ms": max(0, now_ms - int(trigger["ts"])),
        "items": items,
    }


def popularity_list(
    model: Ranker,
    trigger: Mapping[str, Any],
    exclude: Container[str],
    size: int,
    now_ms: int,
    list_id: str | None = None,
    artist_of: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The most engaging tracks right now that the user has not just heard."""
    ranked = model.rank(size, ts_ms=int(trigger["ts"]), exclude=exclude)
    return ranked_list(
        ranked,
        trigger,
        model.model_version,
        "popular",
        "popular with listeners right now",
        now_ms,
        list_id,
        artist_of,
    )


def ranked_list(
    ranked: Sequence[tuple[str, float]],
    trigger: Mapping[str, Any],
    model_version: str,
    source: str,
    reason: str,
    now_ms: int,
    list_id: str | None = None,
    artist_of: Mapping[str, str] | None = None,
    then: Sequence[tuple[str, float, str, str]] = (),
) -> dict[str, Any]:
    """``ranked`` (track, score) pairs as a list's items, each from ``source`` for ``reason``;
    ``then`` (track, score, source, reason) items come after them, each with its own."""
    artists = artist_of or {}
    explained = [(track, score, source, reason) for track, score in ranked] + list(then)
    items = [
        {
            "track_id": track,
            "artist_id": artists.get(track),
            "score": round(score, 6),
            "source": source,
            "reason": reason,
        }
        for track, score, source, reason in explained
    ]
    return recommendation_list(trigger, items, model_version, now_ms, list_id)
