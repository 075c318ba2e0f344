"""The cyclic garbage collector, kept away from the stream's tail latency.

CPython's collector scans every tracked object now and then; a full pass over a
worker that holds the catalog, the served models' tables and thousands of
decoded user states took 50-80 ms, and each one held up every message that
arrived meanwhile (seen as the stragglers of the lists' latency, 1-2% of them).
:func:`settle_the_heap` runs once, when the worker has loaded what it keeps for
its lifetime and before its first message: one full collection, then
``gc.freeze()``, which moves every object alive into a generation the collector
never scans again. Later full passes then see only what was made since. Frozen
objects are still freed by reference counting when nothing refers to them; only
reference cycles among them would stay, and there are none to collect at that
point (the collection just ran).
"""

from __future__ import annotations

import gc


def settle_the_heap() -> int:
    """Collect once, then freeze what is alive; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
