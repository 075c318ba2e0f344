"""Run a step just before Faust commits consumed offsets.

Records a worker holds back to batch them (the track side's items) must reach
the producer before the offsets of the messages they came from are committed,
or a crash after the commit would lose them. Faust calls every sensor's
``on_commit_initiated`` synchronously at the start of each commit (the
periodic one, the one before a rebalance and the one at shutdown), before it
picks the offsets to commit and then waits for the producer to flush. So a
step that hands its records to the producer's buffer there (``send_soon``)
has them on the broker before the commit, whatever triggered it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust


class BeforeCommit(faust.Sensor):
    """A sensor whose only job is to call ``step()`` as each commit starts."""

    def __init__(self, step: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.step()
        return None


__all__ = ["BeforeCommit"]
