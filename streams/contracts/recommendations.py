"""The output contract: a recommendation list as published to ``recommendations``.

The shape is ``schemas/recommendation.schema.json`` (schema_version 1); this
module is the one place that builds it.

>>> trigger = {"event_id": "e1", "user_id": "u1", "ts": 1_000}
>>> item = {"track_id": "t9", "artist_id": "a1", "score": 0.5, "source": "trending",
...         "reason": "popular with listeners right now"}
>>> rec = recommendation_list(trigger, [item], "popularity-v1", now_ms=1_050, list_id="r1")
>>> rec["latency_ms"], rec["trigger_event_id"]
(50, 'e1')
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

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
