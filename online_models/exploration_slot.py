"""The exploration slot of a list: which sources can fill it, and the one the policy draws.

A list is the best candidates by blended score (:mod:`online_models.ranking`,
re-ranked by :mod:`online_models.reranking`), but one slot (the last) is left to a
*source* (an arm) drawn by the :class:`~online_models.exploration.ExplorationPolicy`,
which is paid in long-term satisfaction (:class:`~online_models.exploration.RewardConfig`).
The arms, a fixed set (they are metric labels):

* ``taste``: the next best candidate by score. Exploitation: the control arm a
  source must beat to be drawn more often.
* ``trending``: the most popular track now that the list does not hold.
* ``new_artist``: the best candidate by score among those whose artist
  the user has never played: discovery.

An arm with no track to offer (every trending track already listed, no new
artist among the candidates) is not drawn. The draw is seeded by a key (the
triggering event's id), so the same state, models and event give the same list.

>>> from online_models.exploration import ExplorationPolicy
>>> by_score = [("t2", 1.5), ("t3", 1.0), ("t4", 0.5)]  # the free candidates
>>> options = slot_options(by_score, ["t1", "t3"], is_new_artist=lambda t: t == "t4")
>>> {arm: pick.track_id for arm, pick in options.items()}
{'taste': 't2', 'trending': 't3', 'new_artist': 't4'}
>>> fill_slot(ExplorationPolicy(seed=1), options, draw_key="e1").arm in ARMS
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    TASTE: "fits your taste",
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
    by_score: Sequence[tuple[str, float]],
    by_trend: Sequence[str],
    is_new_artist: Callable[[str], bool],
) -> dict[str, SlotPick]:
    """Per arm, the track it would put in the slot (arms with none are left out).

    ``by_score`` is the candidates still free, best first; ``by_trend`` the same
    candidates, most popular first (those trending now); ``is_new_artist``
    whether a track's artist is new to the user.
    """
    options: dict[str, SlotPick] = {}
    if by_score:
        options[TASTE] = SlotPick(TASTE, *by_score[0])
    score = dict(by_score)
    trending = next((t for t in by_trend if t in score), None)
    if trending is not None:
        options[TRENDING] = SlotPick(TRENDING, trending, score[trending])
    new = next(((t, s) for t, s in by_score if is_new_artist(t)), None)
    if new is not None:
        options[NEW_ARTIST] = SlotPick(NEW_ARTIST, *new)
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
