"""The planner's list step: a user's list from the served models, as the output record.

:class:`ListMaker` hands the pure :class:`~online_models.recommender.ListBuilder`
what it needs at the moment of the triggering event: the user's state after
it, the snapshot served now (:class:`~streams.pipeline.learning.ModelSlot`),
the trending board's best tracks, the editorial picks that fit the event's
time and context, and the exploration policy when exploration is on. It
decides nothing itself.

>>> from features import TrackInfo
>>> from online_models.recommender import ListBuilder
>>> from online_models.trending import PartitionTop, TrendingBoard
>>> from streams.state.keyed_state import UserState
>>> top, board = PartitionTop(), TrendingBoard()
>>> top.offer("t9", value=1.0, ts_ms=1_000)
>>> board.merge(top.snapshot(partition=0))
>>> maker = ListMaker(ListBuilder(), ModelSlot(None), board)
>>> trigger = {"event_id": "e1", "user_id": "u1", "type": "play", "track_id": "t1", "ts": 1_000}
>>> built = maker.build(trigger, UserState.empty())
>>> record = maker.record(trigger, built, now_ms=1_050, list_id="r1")
>>> [item["track_id"] for item in record["items"]], record["model_version"]
(['t9'], 'popularity-v1+rerank-v2')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from features.editorial import EditorialSets
from online_models.base import Ranker
from online_models.recommender import BuiltList, ListBuilder, ListRequest
from streams.contracts.events import Event
from streams.contracts.recommendations import recommendation_list
from streams.pipeline.learning import ModelSlot
from streams.state.keyed_state import UserState

#: Trending tracks a list's retrieval takes.
TRENDING_CANDIDATES = 100


class ListMaker:
    """Builds users' lists with one builder, the served models and the live sources."""

    def __init__(
        self,
        builder: ListBuilder,
        models: ModelSlot,
        trending: Ranker,
        editorial: EditorialSets | None = None,
        exploring: bool = False,
        trending_candidates: int = TRENDING_CANDIDATES,
    ) -> None:
        self.builder = builder
        self.models = models
        self.trending = trending
        self.editorial = editorial if editorial is not None else EditorialSets()
        self.exploring = exploring
        self.trending_candidates = trending_candidates

    def build(self, trigger: Event, state: UserState, explain: bool = False) -> BuiltList:
        """The list of the user whose ``state`` (after ``trigger``) is given."""
        models = self.models.current
        ts = int(trigger["ts"])
        context = trigger.get("context")
        context = context if isinstance(context, Mapping) else {}
        vector = None if state.taste is None else state.taste.astype("float64")
        request = ListRequest(state.features, vector, ts, context, str(trigger["event_id"]))
        return self.builder.build(
            request,
            models,
            self.trending.rank(self.trending_candidates, ts),
            self.editorial.picks(ts, context),
            models.exploration if self.exploring else None,
            explain,
        )

    def record(
        self, trigger: Event, built: BuiltList, now_ms: int, list_id: str | None = None
    ) -> dict[str, Any]:
        """The output record of ``built`` (:mod:`streams.contracts.recommendations`)."""
        items = [item.to_record() for item in built.items]
        return recommendation_list(trigger, items, built.model_version, now_ms, list_id)


__all__ = ["TRENDING_CANDIDATES", "ListMaker"]
