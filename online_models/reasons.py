"""Why an item is in a list, in words a listener could read.

Every item carries a ``reason``: its retrieval source's sentence
(:mod:`online_models.retrieval`), naming what brought it (the liked track, the
artist, the editorial set, how long ago the user heard a track back in
rotation), or the exploration arm's (:data:`online_models.exploration_slot.REASONS`).
The discovery slot's pick (an artist new to the user,
:mod:`online_models.reranking`) says so first.

>>> reason_for("similar", "t7")
'listeners who liked t7 also like this'
>>> reason_for("rotation", "3 hours ago")
'back in rotation: you heard it 3 hours ago'
>>> reason_for("trending", None, discovery=True)
'new artist for you: popular with listeners right now'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from features.editorial import EditorialSet
from online_models.exploration_slot import REASONS as ARM_REASONS

#: The sentence of each retrieval source; ``{seed}`` is what brought the item.
SOURCE_REASONS: Final[Mapping[str, str]] = {
    "rotation": "back in rotation: you heard it {seed}",
    "similar": "listeners who liked {seed} also like this",
    "sounds_like": "sounds like {seed}, a track you liked",
    "liked_artist": "by {seed}, an artist you play a lot lately",
    "editorial": "editorial pick from {seed}",
    "taste": "fits your taste",
    "trending": "popular with listeners right now",
}
DISCOVERY_PREFIX: Final = "new artist for you: "


def reason_for(
    source: str,
    seed: str | EditorialSet | None,
    discovery: bool = False,
    arm: str | None = None,
) -> str:
    """The reason of an item from ``source`` (brought by ``seed``); an exploration
    slot's item gives its ``arm``'s reason instead."""
    if arm is not None:
        return ARM_REASONS[arm]
    if isinstance(seed, EditorialSet):
        seed = f"“{seed.title or seed.name}”"
    text = SOURCE_REASONS[source].format(seed=seed)
    return DISCOVERY_PREFIX + text if discovery else text


__all__ = ["DISCOVERY_PREFIX", "SOURCE_REASONS", "reason_for"]
