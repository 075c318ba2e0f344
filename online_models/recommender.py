"""A user's recommendation list: retrieve, rank in context, re-rank responsibly, explain.

One :class:`ListBuilder` call turns a user's state, the served models and the
moment (the triggering event's time and context) into a list, in three timed
stages:

1. **retrieval** (:mod:`online_models.retrieval`): a few hundred candidates,
   each with its source;
2. **ranking** (:mod:`online_models.ranking`): taste and engagement, blended,
   plus the listener's diet (:mod:`online_models.diet`: their artists and
   genres, lately and in the running session) and editorial boosts;
3. **re-ranking** (:mod:`online_models.reranking`): removals, caps (the genre
   cap following the user's diet), MMR, exposure fairness, the rotation cap,
   the discovery and exploration slots, and each item's reason
   (:mod:`online_models.reasons`).

Cold start is the same code: a user with no taste vector yet gets no taste or
similarity candidates, so their list is trending, editorial, the artists they
just played, and the exploration slot. Before the first snapshot (or with
learning off) the models are untrained: every taste score is the same, so the
list follows the sources' own orders under the same rules.

The list is deterministic: the same state, models, moment and ``draw_key``
(the triggering event's id, which seeds the exploration draw) give the same
items. ``explain=True`` adds every candidate's scores per stage and its fate.

>>> from features import TrackInfo, UserFeatures
>>> from online_models.serving import ServingModels
>>> catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 3}", ("pop",), 200_000) for i in range(9)}
>>> models = ServingModels.untrained(k=4)
>>> models.set_catalog(catalog)
>>> user = UserFeatures()
>>> _ = user.update({"type": "save", "track_id": "t0", "ts": 0}, catalog["t0"])
>>> builder = ListBuilder(ListConfig(rerank=RerankConfig(size=4)))
>>> made = builder.build(ListRequest(user, None, 0, {}, "e1"), models,
...                      trending=[(f"t{i}", 9.0 - i) for i in range(9)])
>>> [(item.track_id, item.source) for item in made.items]
[('t3', 'liked_artist'), ('t6', 'liked_artist'), ('t1', 'trending'), ('t2', 'trending')]
>>> made.items[2].reason, made.items[2].discovery  # a new artist, by the ranking itself
('popular with listeners right now', True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from features import TrackInfo, UserFeatures
from features.editorial import EditorialSet
from online_models.diet import Diet
from online_models.exploration import ExplorationPolicy
from online_models.exploration_slot import NEW_ARTIST, TASTE, SlotPick, fill_slot
from online_models.ranking import AFFINITY_WEIGHT, TASTE_WEIGHT, Scores, rank_in_context
from online_models.reasons import reason_for
from online_models.reranking import (
    DISCOVERY,
    EXPLORATION,
    REMOVALS,
    CandidateFacts,
    Explore,
    Pick,
    RerankConfig,
    Reranked,
    diet_genre_caps,
    rerank,
)
from online_models.retrieval import (
    EDITORIAL,
    ROTATION,
    TRENDING,
    Candidates,
    NeighbourCache,
    RetrievalConfig,
    retrieve,
)
from online_models.rotation import heard_ago, rested_tracks
from online_models.served_tracks import ServedTracks
from online_models.serving import UNTRAINED, ServingModels

#: The version of the re-ranking rules, part of every list's ``model_version``.
RERANK_VERSION = "rerank-v2"  # v2: the diet in the score, rotation, genre cap by diet
STAGES = ("retrieval", "ranking", "reranking")


@dataclass(frozen=True)
class ListConfig:
    """Everything that shapes a list but the user and the models."""

    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    taste_weight: float = TASTE_WEIGHT
    #: weight of the diet's affinity (the user's artists and genres, lately and in the
    #: running session) in the blended score; 0: none
    affinity_weight: float = AFFINITY_WEIGHT
    #: leave explicit tracks out of every list (a clean deployment); an event's
    #: ``context.explicit_filter`` asks the same for its own list
    explicit_filter: bool = False


@dataclass(frozen=True)
class ListRequest:
    """Whose list, and for which moment: the user's state after the triggering event,
    their taste vector (None until the models know them), and the event's time,
    context and id (the draw key)."""

    user: UserFeatures
    user_vector: NDArray[np.float64] | None
    ts_ms: int
    context: Mapping[str, Any]
    draw_key: str


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    """One item of a list, as published, plus what the metrics and the policy need."""

    track_id: str
    artist_id: str | None
    genres: tuple[str, ...]
    score: float
    source: str
    reason: str
    #: the artist is new to the user
    discovery: bool
    #: ``ranked``, ``discovery`` or ``exploration``
    slot: str
    #: the exploration arm, for the exploration slot
    arm: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The item as the output schema has it."""
        return {
            "track_id": self.track_id,
            "artist_id": self.artist_id,
            "score": round(self.score, 6),
            "source": self.source,
            "reason": self.reason,
        }


@dataclass
class BuiltList:
    """A list, what made it, and how long each stage took."""

    items: list[RecommendedItem]
    model_version: str
    rule_counts: dict[str, int]
    stage_seconds: dict[str, float]
    candidates: int
    #: every candidate's scores per stage and its fate (``explain=True`` only)
    explain: list[dict[str, Any]] | None = None

    @property
    def explored(self) -> RecommendedItem | None:
        """The exploration slot's item, if the list has one."""
        return next((item for item in self.items if item.slot == EXPLORATION), None)


class ListBuilder:
    """Builds lists by :class:`ListConfig`; holds no per-user state (only tracks'
    neighbours, :class:`~online_models.retrieval.NeighbourCache`)."""

    def __init__(self, config: ListConfig | None = None) -> None:
        self.config = config or ListConfig()
        #: the ``similar`` source's neighbours, kept across snapshots (bounded)
        self.neighbours = NeighbourCache()

    def build(
        self,
        request: ListRequest,
        models: ServingModels,
        trending: Sequence[tuple[str, float]],
        editorial: Sequence[tuple[str, EditorialSet]] = (),
        policy: ExplorationPolicy | None = None,
        explain: bool = False,
    ) -> BuiltList:
        """The list for ``request``: ``trending`` is the most engaging tracks now, best
        first; ``editorial`` the picks of the sets that fit the moment; ``policy``
        (None: no exploration slot) draws the exploration slot's arm."""
        config, clock = self.config, time.perf_counter
        trained = models.version != UNTRAINED
        vector = request.user_vector if trained else None
        started = clock()
        rested = self._rested(request)
        found = retrieve(
            request.user,
            vector,
            models.served,
            request.ts_ms,
            trending,
            editorial,
            config.retrieval,
            request.draw_key,
            self.neighbours,
            models.created_at_ms,
            rested,
        )
        retrieved = clock()
        # an editorial candidate's retrieval score is its set's boost
        boost = np.where(found.from_source(EDITORIAL), found.retrieval_scores, 0.0)
        diet = Diet.of(request.user, models.served, request.ts_ms)
        scores = rank_in_context(
            request.user,
            vector,
            models.served,
            found.rows,
            models.engagement if trained else None,
            request.ts_ms,
            request.context,
            boost,
            config.taste_weight,
            diet if config.affinity_weight else None,
            config.affinity_weight,
        )
        ranked = clock()
        facts = self._facts(request, models, found, trending, trained, rested, diet)
        explore = None if policy is None else _explorer(policy, request, found, scores, facts)
        result = rerank(scores.blended, facts, config.rerank, explore)
        items = [_item(found, scores, facts, models.catalog, pick) for pick in result.picks]
        done = clock()
        return BuiltList(
            items,
            _model_version(models, items, trained),
            result.rule_counts,
            dict(
                zip(STAGES, (retrieved - started, ranked - retrieved, done - ranked), strict=True)
            ),
            len(found),
            _explain(found, scores, facts, result) if explain else None,
        )

    def _rested(self, request: ListRequest) -> list[tuple[str, int]]:
        """The user's own tracks past the replay rest, for the ``rotation`` source (none
        when it is off)."""
        if not self.config.retrieval.rotation:
            return []
        return rested_tracks(request.user, request.ts_ms, self.config.rerank.replay_after_s)

    def _facts(
        self,
        request: ListRequest,
        models: ServingModels,
        found: Candidates,
        trending: Sequence[tuple[str, float]],
        trained: bool,
        rested: Sequence[tuple[str, int]],
        diet: Diet,
    ) -> CandidateFacts:
        served, rows, config = models.served, found.rows, self.config.rerank
        artist = served.artist[rows]
        user = request.user  # an artist is known once played, or saved (the affinity)
        known = _marked(
            served.artist_index, [*user.first_play_ms, *user.artists.read(user.latest_ts_ms)]
        )
        head = _marked(served.position, [t for t, _ in trending[: config.popular_head]])
        return CandidateFacts(
            artist=artist,
            genres=served.genres.take(rows, axis=0),
            # Untrained vectors are arbitrary: their similarity would be noise.
            unit=served.unit_vectors.take(rows, axis=0) if trained else np.zeros((len(rows), 1)),
            popular=head[rows],
            new_artist=(artist >= 0) & ~known[artist],  # known[-1] is never marked
            removed=self._removals(request, served, rows),
            # whichever source brought it, the user's own rested track counts as rotation
            rotation=_marked(served.position, [t for t, _ in rested])[rows],
            genre_caps=diet_genre_caps(diet.genre_shares(), config)
            if config.genre_cap_by_diet
            else None,
        )

    def _removals(
        self, request: ListRequest, served: ServedTracks, rows: NDArray[np.intp]
    ) -> list[str]:
        """Each candidate's removal reason (:data:`~online_models.reranking.REMOVALS`)
        or ``""``, the first that applies."""
        user, config = request.user, self.config
        heard = _marked(served.position, recently_heard(user, request.ts_ms, config.rerank))
        skip_since = request.ts_ms - config.rerank.skip_memory_s * 1000
        skipped = [t for t, ts in user.recent_skipped().items() if ts >= skip_since]
        clean = config.explicit_filter or request.context.get("explicit_filter") is True
        explicit = served.column("explicit")[rows] > 0 if clean else np.zeros(len(rows), bool)
        applies = (heard[rows], _marked(served.position, skipped)[rows], served.blocked[rows])
        first = np.zeros(len(rows), np.intp)  # 0: kept; i: REMOVALS[i - 1]
        for code, mask in reversed(list(enumerate((*applies, explicit), start=1))):
            first[mask] = code
        return _REMOVAL_NAMES[first].tolist()  # type: ignore[no-any-return]


def recently_heard(user: UserFeatures, ts_ms: int, config: RerankConfig) -> list[str]:
    """The tracks ``user`` heard or liked within ``config.replay_after_s`` of ``ts_ms``
    (the ``recently_played`` removal)."""
    since = ts_ms - config.replay_after_s * 1000
    return [
        track_id
        for times in (user.track_last_ms, user.track_liked_ms)
        for track_id, at in times.items()
        if at >= since
    ]


#: Each removal code's reason, ``""`` (code 0) for a candidate kept.
_REMOVAL_NAMES: Final = np.array(["", *REMOVALS], dtype=object)


def _marked(index: Mapping[str, int], keys: Iterable[str]) -> NDArray[np.bool_]:
    """A flag per position of ``index`` (one more, always False, for ``-1``): set at
    the positions of ``keys`` (keys ``index`` lacks are left out)."""
    marked = np.zeros(len(index) + 1, bool)
    for key in keys:  # a few dozen at most: one at a time beats building an index array
        at = index.get(key)
        if at is not None:
            marked[at] = True
    return marked


def _explorer(
    policy: ExplorationPolicy,
    request: ListRequest,
    found: Candidates,
    scores: Scores,
    facts: CandidateFacts,
) -> Explore:
    """The exploration slot's chooser: the policy draws an arm among the free candidates
    (:mod:`online_models.exploration_slot`)."""
    blended, ids = scores.blended, found.track_ids
    trending = found.from_source(TRENDING)

    def explore(free: NDArray[np.bool_]) -> tuple[int, str] | None:
        options, index = {}, {}  # each option's candidate, by track
        for arm, pool in ((TASTE, free), (NEW_ARTIST, free & facts.new_artist)):
            if pool.any():
                at = int(np.where(pool, blended, -np.inf).argmax())
                options[arm], index[ids[at]] = SlotPick(arm, ids[at], float(blended[at])), at
        in_trend_order = (free & trending).nonzero()[0]  # retrieval kept their order
        if len(in_trend_order):
            at = int(in_trend_order[0])
            options[TRENDING], index[ids[at]] = SlotPick(TRENDING, ids[at], float(blended[at])), at
        pick = fill_slot(policy, options, request.draw_key)
        return None if pick is None else (index[pick.track_id], pick.arm)

    return explore


def _item(
    found: Candidates,
    scores: Scores,
    facts: CandidateFacts,
    catalog: Mapping[str, TrackInfo],
    pick: Pick,
) -> RecommendedItem:
    at = pick.index
    track_id, source, seed = found.track_ids[at], found.sources[at], found.seeds[at]
    if source == ROTATION:  # its retrieval score is the hours since the user heard it
        seed = heard_ago(float(found.retrieval_scores[at]) * 3_600_000)
    info = catalog.get(track_id)
    discovery = bool(facts.new_artist[at])
    return RecommendedItem(
        track_id,
        None if info is None else info.artist_id,
        () if info is None else info.genres,
        float(scores.blended[at]),
        pick.arm or source,  # the exploration slot's source is its arm
        reason_for(source, seed, pick.slot == DISCOVERY, pick.arm),
        discovery,
        pick.slot,
        pick.arm,
    )


def _model_version(models: ServingModels, items: Sequence[RecommendedItem], trained: bool) -> str:
    """Every model that shaped the list, ``+``-joined."""
    parts = []
    if trained:
        parts.append(f"taste-{models.version}")
        if models.engagement is not None:
            parts.append(f"engagement-{models.version}")
    if any(item.source == TRENDING for item in items):
        parts.append("popularity-v1")
    if any(item.slot == EXPLORATION for item in items):
        parts.append(f"exploration-{models.version}")
    parts.append(RERANK_VERSION)
    return "+".join(parts)


def _explain(
    found: Candidates, scores: Scores, facts: CandidateFacts, result: Reranked
) -> list[dict[str, Any]]:
    """Per candidate: its source and each stage's scores, then its fate."""
    place = {pick.index: (rank, pick.slot) for rank, pick in enumerate(result.picks, 1)}
    rows = []
    for i, track_id in enumerate(found.track_ids):
        rank, slot = place.get(i, (None, None))
        fate = slot or (f"removed: {facts.removed[i]}" if facts.removed[i] else "not chosen")
        rows.append(
            {
                "track_id": track_id,
                "source": found.sources[i],
                "retrieval": round(float(found.retrieval_scores[i]), 6),
                "taste": round(float(scores.taste[i]), 6),
                "engagement": round(float(scores.engagement[i]), 6),
                "affinity": 0.0 if scores.affinity is None else round(float(scores.affinity[i]), 6),
                "boost": round(float(scores.boost[i]), 6),
                "score": round(float(scores.blended[i]), 6),
                "mmr": None if np.isnan(result.mmr[i]) else round(float(result.mmr[i]), 6),
                "rank": rank,
                "fate": fate,
            }
        )
    return rows


__all__ = [
    "RERANK_VERSION",
    "STAGES",
    "BuiltList",
    "ListBuilder",
    "ListConfig",
    "ListRequest",
    "RecommendedItem",
]
