"""Scoring the lists a pipeline *published*, by the offline evaluation's definitions.

:mod:`online_models.list_evaluation` builds each policy's list in process at a
sampled event. Here the lists come from outside (read back from the
``recommendations`` topic after a replay, or built by the worker's own planner
in process): :class:`PublishedListScore` is fed the input events in event-time
order and the list records, and judges every positive event against the list
the user had **just before** it.

**Which list.** A list is the user's from the moment its trigger event
(``trigger_event_id``) has been folded: the worker builds it from the user's
state *after* that event. So for a positive event (a save or a play heard
through of a catalogued track: :func:`~online_models.list_evaluation.is_positive`)
the list judged is the one triggered by the latest earlier event of the same user
that triggered one. A positive event with no such list (the user's first events,
or a list that never came) is counted in ``unlisted`` and judged against nothing.
Lists whose trigger is not among the events are ignored (``foreign_lists``).

**Definitions**: those of :class:`~online_models.list_evaluation.ListTally`
(``hit_rate_at_10``, ``ndcg_at_10``, ``coverage``, ``distinct_artists``,
``distinct_genres``, ``artist_gini``, ``discovery_share``, ``lists``, ...),
over every positive event that had a list; ``recent`` and ``discovery`` are
tested as there, on the user's rolling features before the event
(:func:`~online_models.recommender.recently_heard` with the default
re-ranking window; an item's artist is a discovery when the user had never
played it). One difference from the offline evaluation: there, a list is
built *at* each sampled event; here every positive event is judged, and one
list may be judged several times (the user played on without a new list).

``late_lists`` counts the judgements whose list was generated (``generated_at``,
wall clock) after the positive event's own ``ts``: live and paced, the listener
could not have seen it in time. In process the clock is the events' own, so it
stays 0.

Memory: the list records given (their track ids), and per user the rolling
features and one list reference.

>>> from features import TrackInfo
>>> catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i}", ("rock",), 200_000) for i in range(4)}
>>> events = [{"event_id": f"e{i}", "user_id": "u1", "track_id": f"t{i}", "type": "save",
...            "ts": i * 60_000} for i in range(3)]
>>> lists = [{"user_id": "u1", "trigger_event_id": "e0", "generated_at": 10,
...           "items": [{"track_id": "t3"}, {"track_id": "t1"}]}]
>>> report = score_published(events, lists, catalog)
>>> report["judged"], report["unlisted"], report["figures"]["hit_rate_at_10"]
(2, 1, 0.5)
>>> round(report["figures"]["ndcg_at_10"], 4)  # t1 at rank 2 once: (1 / log2(3)) / 2
0.3155
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from features import TrackInfo, UserFeatures
from online_models.list_evaluation import ListTally, is_positive
from online_models.list_quality import ListItem
from online_models.recommender import recently_heard
from online_models.reranking import RerankConfig


class PublishedListScore:
    """Judges positive events against the list each user had just before them.

    Feed it with :meth:`add_list` (any time before the events that follow the
    list's trigger) and :meth:`process` (the events, in event-time order).

    >>> from features import TrackInfo
    >>> score = PublishedListScore({"t1": TrackInfo("t1", "a1", (), 200_000)})
    >>> score.add_list({"user_id": "u", "trigger_event_id": "e1", "generated_at": 0,
    ...                 "items": [{"track_id": "t1"}]})
    >>> for i in (1, 2):
    ...     score.process({"event_id": f"e{i}", "user_id": "u", "track_id": "t1",
    ...                    "type": "save", "ts": i})
    >>> score.tally.lists, score.tally.hits, score.unlisted
    (1, 1, 1)
    """

    def __init__(
        self, catalog: Mapping[str, TrackInfo], rerank: RerankConfig | None = None
    ) -> None:
        self.catalog = catalog
        self.catalogue_artists = len({info.artist_id for info in catalog.values()})
        self.rerank = rerank or RerankConfig()
        #: trigger event id -> (track ids, generated_at)
        self.lists: dict[str, tuple[tuple[str, ...], int]] = {}
        self.users: dict[str, UserFeatures] = {}
        self.current: dict[str, tuple[tuple[str, ...], int]] = {}
        self.tally = ListTally()
        self.events = self.positives = self.unlisted = self.late = self.repeats = 0
        self.lists_used: set[str] = set()

    def __repr__(self) -> str:
        return f"PublishedListScore({len(self.catalog)} tracks, {len(self.lists)} lists)"

    def add_list(self, record: Mapping[str, Any]) -> None:
        """One published list record (``trigger_event_id``, ``generated_at``, ``items``)."""
        track_ids = tuple(str(item["track_id"]) for item in record["items"])
        self.lists[str(record["trigger_event_id"])] = (track_ids, int(record["generated_at"]))

    def process(self, event: Mapping[str, Any]) -> None:
        """Judge ``event`` if positive, then fold it and take up the list it triggered."""
        user_id, ts = str(event["user_id"]), int(event["ts"])
        user = self.users.setdefault(user_id, UserFeatures())
        info = self.catalog.get(str(event["track_id"]))
        if is_positive(event, self.catalog):
            self.positives += 1
            self._judge(event, user, ts)
        user.update(event, info)
        self.events += 1
        event_id = str(event["event_id"])
        listed = self.lists.get(event_id)
        if listed is not None:
            self.current[user_id] = listed
            self.lists_used.add(event_id)

    def _judge(self, event: Mapping[str, Any], user: UserFeatures, ts: int) -> None:
        listed = self.current.get(str(event["user_id"]))
        if listed is None:
            self.unlisted += 1
            return
        track_ids, generated_at = listed
        target = str(event["track_id"])
        recent = target in recently_heard(user, ts, self.rerank)
        self.repeats += recent
        self.late += generated_at > ts
        known = user.first_play_ms
        self.tally.add([self._item(t, known) for t in track_ids], target, recent)

    def _item(self, track_id: str, known: Mapping[str, int]) -> ListItem:
        info = self.catalog.get(track_id)
        if info is None:
            return ListItem(track_id, None, (), False)
        return ListItem(track_id, info.artist_id, info.genres, info.artist_id not in known)

    def report(self) -> dict[str, Any]:
        """JSON-safe: the accounting, and the figures (the offline evaluation's keys)."""
        judged = self.tally.lists
        return {
            "events": self.events,
            "positives": self.positives,
            "judged": judged,
            "unlisted": self.unlisted,
            "late_lists": self.late,
            "repeat_share": self.repeats / judged if judged else None,
            "lists_read": len(self.lists),
            "lists_used": len(self.lists_used),
            "foreign_lists": len(self.lists) - len(self.lists_used),
            "catalogue_tracks": len(self.catalog),
            "figures": self.tally.figures(len(self.catalog), self.catalogue_artists),
        }


def score_published(
    events: Iterable[Mapping[str, Any]],
    lists: Iterable[Mapping[str, Any]],
    catalog: Mapping[str, TrackInfo],
    rerank: RerankConfig | None = None,
) -> dict[str, Any]:
    """:class:`PublishedListScore` of ``events`` (in event-time order) and ``lists``."""
    score = PublishedListScore(catalog, rerank)
    for record in lists:
        score.add_list(record)
    for event in events:
        score.process(event)
    return score.report()


__all__ = ["PublishedListScore", "score_published"]
