"""The demo's editorial sets, derived from a catalog so the lists have editorial picks.

``tunestream simulate`` (and so ``tunestream demo``) publishes these next to the
simulated catalog: an "Editors' picks" set of the tracks the catalog flags
``editorial`` (or, with none flagged, a deterministic handful), and a "Morning set"
of a handful of other tracks that fits only from 06:00 to 10:59 UTC. Pure: the same
catalog gives the same sets.

>>> catalog = [{"track_id": f"t{i}", "editorial": i % 4 == 0} for i in range(12)]
>>> picks, morning = demo_editorial_sets(catalog, handful=3)
>>> picks.name, picks.title, picks.track_ids, picks.boost
('editors-picks', "Editors' picks", ('t0', 't4', 't8'), 0.05)
>>> morning.title, morning.track_ids, sorted(morning.hours), morning.boost
('Morning set', ('t1', 't5', 't9'), [6, 7, 8, 9, 10], 0.1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from features.editorial import MAX_TRACKS, EditorialSet

PICKS: Final = "editors-picks"
MORNING: Final = "morning"
MORNING_HOURS: Final = frozenset(range(6, 11))  # 06:00 to 10:59 UTC
#: At most this many flagged tracks go into the picks, in catalog order.
MAX_PICKS: Final = 50


def demo_editorial_sets(
    records: Iterable[Mapping[str, Any]], *, handful: int = 10
) -> list[EditorialSet]:
    """The picks and the morning set of a catalog's records (fewer for a tiny catalog).

    Blocked tracks are never picked. With no track flagged ``editorial`` the picks
    are ``handful`` tracks spread evenly over the catalog; the morning set is
    ``handful`` tracks spread evenly over the rest.
    """
    usable = [r for r in records if not r.get("blocked")]
    track_ids = list(dict.fromkeys(str(r["track_id"]) for r in usable))
    flagged = list(dict.fromkeys(str(r["track_id"]) for r in usable if r.get("editorial")))
    picks = flagged[: min(MAX_PICKS, MAX_TRACKS)] or _spread(track_ids, handful)
    chosen = set(picks)
    morning = _spread([t for t in track_ids if t not in chosen], handful)
    sets = []
    if picks:
        sets.append(EditorialSet(PICKS, tuple(picks), boost=0.05, title="Editors' picks"))
    if morning:
        sets.append(
            EditorialSet(
                MORNING, tuple(morning), boost=0.1, hours=MORNING_HOURS, title="Morning set"
            )
        )
    return sets


def _spread(items: Sequence[str], count: int) -> list[str]:
    """``count`` items spread evenly over ``items``, in order (all of them if fewer).

    >>> _spread(["a", "b", "c", "d", "e", "f"], 3)
    ['a', 'c', 'e']
    """
    if count <= 0 or not items:
        return []
    step = max(1, len(items) // count)
    return list(items[::step][:count])
