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
from typing import Final

PLAY: Final = "play"
SKIP: Final = "skip"
SAVE: Final = "save"
EVENT_TYPES: Final = (PLAY, SKIP, SAVE)

#: Engagement an event adds to a track's affinity and popularity: a save says more
#: than a play, a skip says nothing (its own skip-rate features carry it).
ENGAGEMENT_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType({PLAY: 1.0, SAVE: 2.0, SKIP: 0.0})

__all__ = ["ENGAGEMENT_WEIGHTS", "EVENT_TYPES", "PLAY", "SAVE", "SKIP"]
