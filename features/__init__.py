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
"""

from features.affinity import DecayedTopK
from features.base import STATE_VERSION, RollingStat
from features.decay import DecayedCounter, DecayedRate, DecayedSum
from features.window import SlidingWindowSum

__all__ = [
    "STATE_VERSION",
    "DecayedCounter",
    "DecayedRate",
    "DecayedSum",
    "DecayedTopK",
    "RollingStat",
    "SlidingWindowSum",
]
