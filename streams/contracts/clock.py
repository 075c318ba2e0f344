"""The one wall clock of tunestream: Unix time in whole milliseconds.

Event time (``ts``) is what the features and models run on; this clock is only
for what happens *now*: the future-skew check, ``generated_at`` and the latency
of a list, dead-letter stamps, the simulator's start. Code that needs a clock
takes it as a parameter (``now_ms: Callable[[], int] = now_ms``), so tests pass
a fixed one.

>>> a = now_ms(); b = now_ms()
>>> isinstance(a, int) and a <= b
True
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the system clock."""
    return time.time_ns() // 1_000_000


__all__ = ["Clock", "now_ms"]
