"""The one list of listening-event types, and what each says about a track's appeal.

Every other place (the JSON Schema's ``type`` enum, checked by a test; the
features; popularity; the metric labels) takes them from here.

>>> EVENT_TYPES
('play', 'skip', 'save')
>>> ENGAGEMENT_WEIGHTS["save"] > ENGAGEMENT_WEIGHTS["play"] > ENGAGEMENT_WEIGHTS["skip"]
True
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from features.catalog import TrackInfo

PLAY: Final = "play"
SKIP: Final = "skip"
SAVE: Final = "save"
EVENT_TYPES: Final = (PLAY, SKIP, SAVE)

#: Engagement an event adds to a track's affinity and popularity: a save says more
#: than a play, a skip says nothing (its own skip-rate features carry it).
ENGAGEMENT_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType({PLAY: 1.0, SAVE: 2.0, SKIP: 0.0})

#: Share of a track's duration a play must reach to count as engaged.
COMPLETION_THRESHOLD: Final = 0.5
#: Least ``ms_played`` of an engaged play when the duration is unknown.
MIN_PLAY_MS: Final = 30_000


def engagement_label(event: Mapping[str, Any], track: TrackInfo | None) -> int:
    """1 if the user engaged with the track (a save, or a play heard through), else 0.

    A skip is 0; a play is 1 when at least ``COMPLETION_THRESHOLD`` (half) of a
    track of known duration was heard, or ``MIN_PLAY_MS`` (30 s, the usual
    threshold of a counted stream) when the duration is unknown: a play
    abandoned early is a soft skip.

    >>> engagement_label({"type": "play", "ms_played": 40_000}, None)
    1
    """
    kind = event["type"]
    if kind == SAVE:
        return 1
    if kind == SKIP:
        return 0
    ms_played = int(event.get("ms_played") or 0)
    if track is not None and track.duration_ms:
        return int(ms_played >= COMPLETION_THRESHOLD * track.duration_ms)
    return int(ms_played >= MIN_PLAY_MS)


__all__ = [
    "COMPLETION_THRESHOLD",
    "ENGAGEMENT_WEIGHTS",
    "EVENT_TYPES",
    "MIN_PLAY_MS",
    "PLAY",
    "SAVE",
    "SKIP",
    "engagement_label",
]
