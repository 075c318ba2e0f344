"""Pure feature logic: event-time rolling statistics that Faust tables only store.

No Kafka and no clock in here: every call takes the event time ``ts_ms`` (epoch
milliseconds) and every stat saves itself as a small versioned JSON-safe dict.
Reading order:

1. :mod:`features.base` — the ``RollingStat`` protocol (``update`` / ``read`` /
   ``to_state`` / ``from_state``) and the state version tag.
2. :mod:`features.decay` — ``DecayedSum``, ``DecayedCounter`` and ``DecayedRate``
   (skip rate, save rate with a prior): exponential decay by half-life, exact for
   out-of-order events, O(1) memory. Its ``Decayed`` base holds the half-life maths.
3. :mod:`features.window` — ``SlidingWindowSum``: exact sum and count over the last
   ``window_ms``, with a lateness bound that refuses (and reports) later events.
4. :mod:`features.affinity` — ``DecayedTopK``: decayed weights per artist or genre,
   at most ``k`` keys, with the entropy of the listening diet.
5. :mod:`features.catalog` — ``TrackInfo`` (artist, genres, duration, flags, content
   vector) validated from a ``track-catalog`` record, and ``load_catalog`` for CSV /
   JSON Lines files; ``CatalogError`` names the bad ``file:line``.
   :mod:`features.editorial` — ``EditorialSet``: an editor-curated set of tracks with
   a boost and an optional context (UTC hours, devices, context types);
   ``EditorialSets`` holds the live ones and ``picks`` those that fit an event;
   ``load_editorial`` reads a JSON Lines file of them.
6. :mod:`features.session` — ``SessionTracker`` and its ``SessionFeatures``: sessions
   split by inactivity, exact when a late event lands inside one or joins two.
7. :mod:`features.user` — ``UserFeatures`` (configured by ``UserFeatureConfig``):
   everything known about one user's listening, built from the above — counts and
   rates per horizon, completion, taste and its diversity, new artists, recency,
   context profile, session. ``update`` refuses (and counts) a too-late event.
8. :mod:`features.track` — ``TrackFeatures``: a track's popularity, trend, skip and
   save rates over all its listeners, in any arrival order.
"""

from features.affinity import DecayedTopK
from features.base import STATE_VERSION, RollingStat
from features.catalog import CatalogError, TrackInfo, load_catalog
from features.decay import DecayedCounter, DecayedRate, DecayedSum
from features.editorial import EditorialSet, EditorialSets, load_editorial
from features.session import SessionFeatures, SessionTracker
from features.track import TrackFeatures
from features.user import UserFeatureConfig, UserFeatures
from features.window import SlidingWindowSum

__all__ = [
    "STATE_VERSION",
    "CatalogError",
    "DecayedCounter",
    "DecayedRate",
    "DecayedSum",
    "DecayedTopK",
    "EditorialSet",
    "EditorialSets",
    "RollingStat",
    "SessionFeatures",
    "SessionTracker",
    "SlidingWindowSum",
    "TrackFeatures",
    "TrackInfo",
    "UserFeatureConfig",
    "UserFeatures",
    "load_catalog",
    "load_editorial",
]
