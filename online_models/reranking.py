"""Responsible re-ranking: from scored candidates to a varied, safe, fair list.

The best list by score alone is often one artist's catalogue, the hits
everybody already hears, or the song the user skipped an hour ago. Re-ranking
applies these rules, each configurable (:class:`RerankConfig`) and counted
(:attr:`Reranked.rule_counts`, exported as metrics):

1. **Remove** (the candidate never appears; its reason is in the explanation):
   ``recently_played`` (heard or liked within ``replay_after_s``: after it a
   favourite may come back into rotation), ``skipped`` (skipped
   within ``skip_memory_s``), ``blocked`` (the catalog's ``blocked`` flag:
   blocked or unsafe), ``explicit`` (the catalog's ``explicit`` flag, when the
   context or the deployment asks for a clean list).
2. **Diversity, by greedy MMR.** Each slot takes the candidate with the best
   ``mmr_lambda * score - (1 - mmr_lambda) * s``, where ``s`` is its highest
   cosine (taste vectors) to the items already chosen, among those that keep
   the **caps**: at most ``max_per_artist`` tracks of an artist and
   ``max_per_genre`` of a genre. With ``genre_cap_by_diet`` a genre's cap
   follows the user's own diet (:func:`diet_genre_caps`): their favourite genre
   (lately, or in the running session) may fill the list, one they play half
   as much half of it, one they hardly play keeps ``max_per_genre`` (each item
   the plain cap would have kept out is counted as ``genre_diet``). A jazz
   listener's list is then jazz by many artists (the artist cap and MMR still
   apply) rather than 4 jazz tracks and 6 hits of genres they never play: the
   plain cap fills those slots with the same few hits for everyone.
3. **Exposure fairness.** At most ``max_popular_share`` of the list may come
   from the ``popular_head`` most popular tracks right now, so the rest of the
   catalogue gets heard.
4. **Rotation cap.** At most ``max_rotation`` items may be the user's own
   tracks back in rotation (:mod:`online_models.rotation`; counted as
   ``rotation``), so a list stays mostly new to the ear.
5. **Discovery slot.** When the list holds no artist new to the user and a
   candidate by one passes the rules, the best of them takes a slot of its own.
6. **Exploration slot** (when a policy is given): the last slot goes to the arm
   the exploration policy draws (:mod:`online_models.exploration_slot`). An
   arm of ``new_artist`` is a discovery pick too, so no other is added.

When the caps leave no candidate for a slot, the list is topped up with them
relaxed one at a time, the popular cap first, then the genre cap, the artist
cap and the rotation cap (counted as ``caps_relaxed``): a short list helps
nobody. A rule *changes* a pick when, without it, another candidate would have
taken the slot; those are the counts of ``artist_cap``, ``genre_cap``,
``popular_cap``, ``rotation_cap`` and ``mmr``. Everything is deterministic:
ties go to the earlier candidate, and the exploration draw is seeded by the
caller.

Cost: O(list size x candidates) array operations. Memory: per candidate, a
few flags and numbers, for the duration of one list.

>>> import numpy as np
>>> facts = CandidateFacts(
...     artist=np.array([0, 0, 0, 1]), genres=np.array([[0], [0], [0], [1]]),
...     unit=np.eye(4), popular=np.zeros(4, bool), new_artist=np.array([0, 0, 0, 1], bool),
...     removed=["", "skipped", "", ""])
>>> ranked = rerank(np.array([0.9, 0.8, 0.7, 0.1]), facts, RerankConfig(size=3))
>>> [(pick.index, pick.slot) for pick in ranked.picks]
[(0, 'ranked'), (2, 'ranked'), (3, 'discovery')]
>>> ranked.rule_counts["skipped"], ranked.rule_counts["discovery"]
(1, 1)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from online_models.exploration_slot import NEW_ARTIST

#: Why a candidate is removed before any slot is filled, in the order they are checked.
REMOVALS: Final = ("recently_played", "skipped", "blocked", "explicit")
#: Rules that can change which candidate takes a slot.
SLOT_RULES: Final = (
    "artist_cap",
    "genre_cap",
    "popular_cap",
    "rotation_cap",
    "mmr",
    "caps_relaxed",
)
#: Every rule counted per list (a metric label each).
RULES: Final = (*REMOVALS, *SLOT_RULES, "discovery", "rotation", "genre_diet")
#: The caps, in the order they are relaxed when none leaves a candidate.
RELAXED_FIRST: Final = ("popular_cap", "genre_cap", "artist_cap", "rotation_cap")
RANKED: Final = "ranked"
DISCOVERY: Final = "discovery"
EXPLORATION: Final = "exploration"


@dataclass(frozen=True)
class RerankConfig:
    """The rules' settings (``TUNESTREAM_*`` of the same names, see the README)."""

    size: int = 10
    max_per_artist: int = 2
    max_per_genre: int = 4
    #: 1: by score alone; lower: more weight on being unlike the items chosen
    mmr_lambda: float = 0.8
    #: tracks counted as "the most popular right now" (the trending board's head)
    popular_head: int = 20
    #: most of the list those tracks may take (rounded down)
    max_popular_share: float = 0.3
    #: skipped tracks stay out of the user's lists this long
    skip_memory_s: float = 7 * 86_400.0
    #: a track heard or liked stays out of the user's lists this long, then may return
    replay_after_s: float = 600.0
    discovery_slot: bool = True
    #: most of the user's own tracks back in rotation one list may hold
    max_rotation: int = 3
    #: a genre the user plays may take the list in proportion to their favourite's
    #: share (never below ``max_per_genre``)
    genre_cap_by_diet: bool = True

    def __post_init__(self) -> None:
        for name in ("size", "max_per_artist", "max_per_genre"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)!r}")
        if self.max_rotation < 0:
            raise ValueError(f"max_rotation: must be >= 0, got {self.max_rotation!r}")
        for name in ("mmr_lambda", "max_popular_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {getattr(self, name)!r}")
        if self.popular_head < 0 or not self.skip_memory_s >= 0 or not self.replay_after_s >= 0:
            raise ValueError("popular_head, skip_memory_s and replay_after_s must be >= 0")

    @property
    def max_popular(self) -> int:
        """How many of the popular head one list may hold."""
        return int(self.max_popular_share * self.size)


@dataclass(frozen=True)
class CandidateFacts:
    """What the rules need to know of each candidate (arrays in the candidates' order).

    ``artist`` is an artist index (``-1``: unknown), ``genres`` genre indices
    padded with ``-1``, ``unit`` the unit taste vectors, ``removed`` the removal
    reason (:data:`REMOVALS`) or ``""``; ``rotation`` flags the user's own
    tracks back in rotation (None: none is), and ``genre_caps`` holds each genre
    index's cap for this list (None: ``max_per_genre`` for every genre).
    """

    artist: NDArray[np.intp]
    genres: NDArray[np.intp]
    unit: NDArray[np.float64]
    popular: NDArray[np.bool_]
    new_artist: NDArray[np.bool_]
    removed: Sequence[str]
    rotation: NDArray[np.bool_] | None = None
    genre_caps: NDArray[np.intp] | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    """A candidate in the list: its index among the candidates, the kind of slot it
    took, and the exploration arm for the exploration slot."""

    index: int
    slot: str = RANKED
    arm: str | None = None


@dataclass
class Reranked:
    """The picks, in list order, and how often each rule acted on this list."""

    picks: list[Pick] = field(default_factory=list)
    rule_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    #: per candidate: the MMR value at the slot it took, NaN if never picked
    mmr: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


#: Given the candidates still free (a mask), the exploration slot's candidate and
#: arm, or None for no exploration pick.
Explore = Callable[[NDArray[np.bool_]], "tuple[int, str] | None"]


def diet_genre_caps(shares: NDArray[np.float64], config: RerankConfig) -> NDArray[np.intp]:
    """Each genre's cap when it follows the user's diet: the list's size in proportion
    to the genre's share of what they play (``shares``, by genre index) next to their
    favourite genre's, rounded up, and never below ``max_per_genre``. Their favourite
    genre may fill the list; one they hardly play keeps the plain cap.

    >>> diet_genre_caps(np.array([0.62, 0.3, 0.08]), RerankConfig(size=10, max_per_genre=4))
    array([10,  5,  4])
    """
    top = float(shares.max()) if len(shares) else 0.0
    relative = np.clip(shares / top, 0.0, 1.0) if top > 0 else np.zeros(len(shares))
    wanted = np.ceil(relative * config.size - 1e-9).astype(np.intp)
    return np.maximum(wanted, config.max_per_genre)


def rerank(
    scores: NDArray[np.float64],
    facts: CandidateFacts,
    config: RerankConfig,
    explore: Explore | None = None,
) -> Reranked:
    """The list's picks by the rules of the module docstring; ``explore`` fills the
    exploration slot (None: the list has none)."""
    state = _Selection(scores, facts, config)
    for at in (~state.open).nonzero()[0].tolist():  # the removed: a few of the candidates
        state.result.rule_counts[facts.removed[at]] += 1
    discovery_due = config.discovery_slot and state.free(with_caps=False)[facts.new_artist].any()
    reserved = int(explore is not None) + int(discovery_due)
    state.fill(config.size - reserved)
    if explore is not None and len(state.result.picks) < config.size:
        free = state.loosest()
        pick = None if free is None else explore(free.copy())  # the live mask stays ours
        if pick is not None:
            state.take(pick[0], EXPLORATION, pick[1])
    has_new = facts.new_artist[[p.index for p in state.result.picks]].any()
    if discovery_due and not has_new and len(state.result.picks) < config.size:
        state.discover()
    state.fill(config.size)
    explored = [p for p in state.result.picks if p.slot == EXPLORATION]
    state.result.picks = [p for p in state.result.picks if p.slot != EXPLORATION] + explored
    return state.result


class _Selection:
    """The greedy selection's running state: open candidates, caps, similarities.

    A list takes ~10 greedy steps over a few hundred candidates, so each step's cost
    is the number of NumPy calls, not their arithmetic: the masks and arrays a step
    reads (``eligible``, ``open_scores``) are kept up to date as candidates are taken
    and caps reached, rather than rebuilt at every step.
    """

    def __init__(self, scores: NDArray[np.float64], facts: CandidateFacts, config: RerankConfig):
        n = len(scores)
        self.scores, self.facts, self.config = scores, facts, config
        #: not removed and not chosen yet
        self.open = np.fromiter(map(operator.not_, facts.removed), bool, n)
        #: the scores of the open candidates, -inf for the others (the best open one is
        #: what a rule may have kept out of a slot)
        self.open_scores = np.where(self.open, scores, -np.inf)
        self.capped = {rule: np.zeros(n, bool) for rule in RELAXED_FIRST}
        self.any_cap = np.zeros(n, bool)
        #: open and within every cap: ``open & ~any_cap``
        self.eligible = self.open.copy()
        self.relevance = config.mmr_lambda * scores
        self.diversity = 1.0 - config.mmr_lambda
        #: ``diversity`` times the highest cosine to an item chosen
        self.penalty = np.zeros(n)
        self.artists: dict[int, int] = {}
        self.genres: dict[int, int] = {}
        #: each genre index's cap (past the end: ``max_per_genre``), as Python ints
        self.genre_caps: list[int] = [] if facts.genre_caps is None else facts.genre_caps.tolist()
        self.popular = 0
        self.rotation = np.zeros(n, bool) if facts.rotation is None else facts.rotation
        self.rotated = 0
        #: how many caps the last :meth:`loosest` relaxed
        self.relaxed = 0
        if config.max_popular == 0:
            self._cap("popular_cap", facts.popular)
        if config.max_rotation == 0:
            self._cap("rotation_cap", self.rotation)
        self.result = Reranked(mmr=np.full(n, np.nan))

    def free(self, with_caps: bool, relaxed: int = 0) -> NDArray[np.bool_]:
        """The candidates still open; with the caps, but the first ``relaxed`` of
        :data:`RELAXED_FIRST`. The masks without a cap relaxed are the live state:
        read them, do not change them."""
        if not with_caps:
            return self.open
        if not relaxed:
            return self.eligible
        free = self.open.copy()
        for rule in RELAXED_FIRST[relaxed:]:
            free &= ~self.capped[rule]
        return free

    def loosest(self, among: NDArray[np.bool_] | None = None) -> NDArray[np.bool_] | None:
        """The open candidates (of ``among``, if given) the caps allow, the caps relaxed
        one at a time (least vital first, counted) until some are; None if none is open."""
        for relaxed in range(len(RELAXED_FIRST) + 1):
            allowed = self.free(with_caps=True, relaxed=relaxed)
            if among is not None:
                allowed = allowed & among
            if allowed.any():
                if relaxed:  # a short list helps nobody
                    self.result.rule_counts["caps_relaxed"] += 1
                self.relaxed = relaxed
                return allowed
        return None

    def fill(self, size: int) -> None:
        """Greedy MMR picks until the list holds ``size`` (or no candidate is left)."""
        while len(self.result.picks) < size:
            allowed = self.loosest()
            if allowed is None:
                return
            value = np.where(allowed, self.relevance - self.penalty, -np.inf)
            at = int(value.argmax())
            self._count_change(at, self.relaxed)
            self.result.mmr[at] = value[at]
            self.take(at, RANKED)

    def _count_change(self, at: int, relaxed: int) -> None:
        """Which rule, if any, kept the best-scoring open candidate out of this slot."""
        best = int(self.open_scores.argmax())
        if best == at:
            return
        blocking = next((rule for rule in RELAXED_FIRST[relaxed:] if self.capped[rule][best]), None)
        self.result.rule_counts[blocking or "mmr"] += 1

    def discover(self) -> None:
        """The discovery slot: the best new-artist candidate, within the caps if any is."""
        pool = self.loosest(self.facts.new_artist)
        if pool is not None:
            self.take(int(np.where(pool, self.scores, -np.inf).argmax()), DISCOVERY)
            self.result.rule_counts["discovery"] += 1

    def take(self, at: int, slot: str, arm: str | None = None) -> None:
        facts, config = self.facts, self.config
        self.open[at] = self.eligible[at] = False
        self.open_scores[at] = -np.inf
        self.result.picks.append(Pick(at, slot, arm))
        if slot == EXPLORATION and arm == NEW_ARTIST:
            self.result.rule_counts["discovery"] += 1
        similarity = self.diversity * (facts.unit @ facts.unit[at])
        np.maximum(self.penalty, similarity, out=self.penalty)
        artist = int(facts.artist[at])
        if artist >= 0:
            count = self.artists[artist] = self.artists.get(artist, 0) + 1
            if count == config.max_per_artist:
                self._cap("artist_cap", facts.artist == artist)
        for genre in facts.genres[at].tolist():
            if genre >= 0:
                count = self.genres[genre] = self.genres.get(genre, 0) + 1
                cap = self._genre_cap(genre)
                if config.max_per_genre < count <= cap:  # the user's diet made room for it
                    self.result.rule_counts["genre_diet"] += 1
                if count == cap:
                    self._cap("genre_cap", _holding(facts.genres, genre))
        if facts.popular[at]:
            self.popular += 1
            if self.popular == config.max_popular:
                self._cap("popular_cap", facts.popular)
        if self.rotation[at]:
            self.rotated += 1
            self.result.rule_counts["rotation"] += 1
            if self.rotated == config.max_rotation:
                self._cap("rotation_cap", self.rotation)

    def _genre_cap(self, genre: int) -> int:
        caps = self.genre_caps
        return caps[genre] if genre < len(caps) else self.config.max_per_genre

    def _cap(self, rule: str, reached: NDArray[np.bool_]) -> None:
        self.capped[rule] |= reached
        self.any_cap |= reached
        self.eligible &= ~reached


def _holding(genres: NDArray[np.intp], genre: int) -> NDArray[np.bool_]:
    """Which rows of ``genres`` hold ``genre``: ``(genres == genre).any(axis=1)``, column
    by column (NumPy's reduction along rows of a few genres costs several times more)."""
    holds = genres[:, 0] == genre
    for column in genres.T[1:]:
        holds |= column == genre
    return holds


__all__ = [
    "DISCOVERY",
    "EXPLORATION",
    "RANKED",
    "REMOVALS",
    "RULES",
    "SLOT_RULES",
    "CandidateFacts",
    "Pick",
    "RerankConfig",
    "Reranked",
    "diet_genre_caps",
    "rerank",
]
