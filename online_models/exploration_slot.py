"""The exploration slot of a list: which sources can fill it, and the one the policy draws.

A list is the taste model's best tracks, but one slot (the last) is left to a
*source* (an arm) drawn by the :class:`~online_models.exploration.ExplorationPolicy`,
which is paid in long-term satisfaction (:class:`~online_models.exploration.RewardConfig`).
The arms, a fixed set (they are metric labels):

* ``taste``: the next best track by taste. Exploitation: the control arm a
  source must beat to be drawn more often.
* ``trending``: the most popular track now that the list does not hold.
* ``new_artist``: the best track by taste among the candidates whose artist
  the user has never played: discovery.

An arm with no track to offer (every trending track already listed, no new
artist among the candidates) is not drawn. The draw is seeded by a key (the
triggering event's id), so the same state, models and event give the same list.

>>> from online_models.exploration import ExplorationPolicy
>>> by_taste = [("t1", 2.0), ("t2", 1.5), ("t3", 1.0), ("t4", 0.5)]
>>> artist_of = {"t1": "a1", "t2": "a1", "t3": "a1", "t4": "a9"}
>>> options = slot_options(by_taste, ["t1", "t3"], taken={"t1"}, is_known=lambda a: a == "a1",
...                        artist_of=artist_of)
>>> {arm: pick.track_id for arm, pick in options.items()}
{'taste': 't2', 'trending': 't3', 'new_artist': 't4'}
>>> fill_slot(ExplorationPolicy(seed=1), options, draw_key="e1").arm in ARMS
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Final

from online_models.exploration import ExplorationPolicy

TASTE: Final = "taste"
TRENDING: Final = "trending"
NEW_ARTIST: Final = "new_artist"
#: Every source that can fill the exploration slot, in the order of a tie.
ARMS: Final = (TASTE, TRENDING, NEW_ARTIST)
#: Why an item filled by each arm is in the list, as its ``reason`` says.
REASONS: Final[Mapping[str, str]] = {
    TASTE: "fits your taste, among the tracks popular now",
    TRENDING: "something different: popular with listeners right now",
    NEW_ARTIST: "new artist for you, picked to fit your taste",
}


@dataclass(frozen=True, slots=True)
class SlotPick:
    """The track an arm offers, with its taste score (the list's scores are taste's)."""

    arm: str
    track_id: str
    score: float


def slot_options(
    by_taste: Sequence[tuple[str, float]],
    by_trend: Sequence[str],
    taken: Set[str],
    is_known: Callable[[str], bool],
    artist_of: Mapping[str, str],
) -> dict[str, SlotPick]:
    """Per arm, the track it would put in the slot (arms with none are left out).

    ``by_taste`` is the candidates best first by taste, ``by_trend`` the same
    candidates most popular first, ``taken`` the tracks the list holds already,
    ``is_known`` whether the user has played an artist.
    """
    score = dict(by_taste)
    free_by_taste = [(t, s) for t, s in by_taste if t not in taken]
    options: dict[str, SlotPick] = {}
    if free_by_taste:
        options[TASTE] = SlotPick(TASTE, *free_by_taste[0])
    trending = next((t for t in by_trend if t not in taken and t in score), None)
    if trending is not None:
        options[TRENDING] = SlotPick(TRENDING, trending, score[trending])
    for track, value in free_by_taste:
        artist = artist_of.get(track)
        if artist is not None and not is_known(artist):
            options[NEW_ARTIST] = SlotPick(NEW_ARTIST, track, value)
            break
    return options


def fill_slot(
    policy: ExplorationPolicy, options: Mapping[str, SlotPick], draw_key: str
) -> SlotPick | None:
    """The option of the arm the policy draws (seeded by ``draw_key``); None if no arm
    has one. The policy is not changed: the draw counts as a trial when the list is
    offered (:func:`online_models.exploration.offer`)."""
    if not options:
        return None
    return options[policy.sample([arm for arm in ARMS if arm in options], draw_key)]


__all__ = [
    "ARMS",
    "NEW_ARTIST",
    "REASONS",
    "TASTE",
    "TRENDING",
    "SlotPick",
    "fill_slot",
    "slot_options",
]
