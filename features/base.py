"""The contract every rolling statistic keeps: update, read, and a versioned state.

Nothing in ``features`` reads a clock. Every call takes the event time ``ts_ms``
(epoch milliseconds), so replaying a log gives the same numbers as the live
stream and tests move time by hand.

A stat's state is a small JSON-safe dict (str, int, float, list and dict only;
never pickle) tagged ``"v": 1``. Loading a state of any other version raises a
``ValueError`` instead of guessing, so a changelog written by newer code fails
loudly rather than producing quietly wrong features.

>>> state = versioned_state(half_life_s=60.0)
>>> state
{'v': 1, 'half_life_s': 60.0}
>>> read_state(state, "DecayedSum", "half_life_s")
[60.0]
>>> read_state({"v": 2}, "DecayedSum")
Traceback (most recent call last):
...
ValueError: DecayedSum state has version 2; this code reads version 1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self, runtime_checkable

#: The version tag written into, and required from, every state dict.
STATE_VERSION = 1


@runtime_checkable
class RollingStat(Protocol):
    """A statistic over timestamped values, driven by event time only.

    ``update`` returns whether the value was folded in: decayed stats always
    accept; a window refuses an event later than its lateness bound. The bool
    (rather than ``None``) lets one loop over mixed stats count refusals.
    """

    def update(self, ts_ms: int, value: float = 1.0) -> bool:
        """Fold in ``value`` observed at event time ``ts_ms``; False if refused."""
        ...

    def read(self, ts_ms: int) -> float:
        """The statistic as of event time ``ts_ms``."""
        ...

    def to_state(self) -> dict[str, Any]:
        """Configuration and running values as a JSON-safe dict."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a stat from ``to_state()`` output."""
        ...


def versioned_state(**fields: Any) -> dict[str, Any]:
    """A state dict tagged with the current ``STATE_VERSION``."""
    return {"v": STATE_VERSION, **fields}


def read_state(state: Mapping[str, Any], owner: str, *fields: str) -> list[Any]:
    """Check the version tag of ``state`` and return the required ``fields`` in order.

    ``owner`` names the class in the error, since states of many stats share a table.
    """
    version = state.get("v") if isinstance(state, Mapping) else None
    if type(version) is not int or version != STATE_VERSION:  # True == 1 must not pass
        raise ValueError(
            f"{owner} state has version {version!r}; this code reads version {STATE_VERSION}"
        )
    try:
        return [state[field] for field in fields]
    except KeyError as exc:
        raise ValueError(f"{owner} state lacks field {exc.args[0]!r}") from exc
