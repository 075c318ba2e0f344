"""The worker's side of exploration: fill each list's exploration slot, and credit what follows.

The policy (:class:`~online_models.exploration.ExplorationPolicy`) is one for
all workers: the learner holds it, and each snapshot carries it. A worker
draws from the policy of the snapshot it serves, without changing it, and
records every reward into a :class:`~online_models.exploration.FeedbackLog`
that goes to the learner with the training examples. What this worker
remembers is what its own lists offered (:class:`~online_models.exploration.OfferMemory`):
a user's lists are made, and their events arrive, in the user's partition.

* the list builder (:mod:`online_models.recommender`) draws the slot's arm and track
  (:mod:`online_models.exploration_slot`), seeded by the triggering event.
* :meth:`Exploration.offered` remembers a published list's slot; it counts as
  one trial of its arm, with reward 0 until evidence arrives.
* :meth:`Exploration.hook` is the ingest hook (before the event is folded): an
  event that opens a new session credits a return to the user's recent lists;
  any other counts as one more event of the session their lists were offered
  in; then the event credits its own slot if it names the list
  (``recommendation_id``) and the offered track.

Feedback is at most once, like the examples: it is sent after the state is
written, and lost if the worker dies first. After a rebalance, the lists the
new owner did not make are unknown to it: their credits count as
``unknown_list`` and are lost.

Memory bound: ``memory_lists`` lists remembered (about 0.9 KB each).

>>> from online_models.exploration import ExplorationPolicy, FeedbackLog
>>> from online_models.exploration_slot import SlotPick
>>> exploration = Exploration(memory_lists=10)
>>> pick = SlotPick("trending", "t2", 0.5)  # what the list builder drew for the slot
>>> log = FeedbackLog()
>>> exploration.offered("r1", "u1", 0, pick, log), log.entries
(1, [('trending', None, 0.0)])
>>> event = {"event_id": "e2", "user_id": "u1", "type": "save", "track_id": "t2",
...          "recommendation_id": "r1", "ts": 60_000}
>>> exploration.observe(event, latest_ts_ms=30_000, track=None, feedback=log)
'credited'
>>> [new for _, _, new in log.entries]  # offered; one session event (0.015); saved (+0.3)
[0.0, 0.015, 0.315]
"""

from __future__ import annotations

from features import TrackInfo, UserFeatureConfig
from online_models.exploration import (
    DAY_MS,
    CreditStatus,
    FeedbackLog,
    OfferMemory,
    RewardConfig,
    credit,
    credit_return,
    credit_session_event,
    offer,
)
from online_models.exploration_slot import SlotPick
from streams.contracts.events import Event
from streams.pipeline.ingest import BeforeFold
from streams.state.keyed_state import UserState

#: Lists a worker remembers by default: about 18 MB.
MEMORY_LISTS = 20_000


class Exploration:
    """One worker's exploration: slot filling, the lists it offered, and their credits."""

    def __init__(
        self,
        reward: RewardConfig | None = None,
        memory_lists: int = MEMORY_LISTS,
        session_gap_ms: int | None = None,
    ) -> None:
        self.reward = reward or RewardConfig()
        # A list must outlive the window a return is credited in.
        self.memory = OfferMemory(memory_lists, max(self.reward.return_within_ms, DAY_MS))
        # One session rule: the features' own (``TUNESTREAM_SESSION_GAP_MS``).
        self.session_gap_ms = session_gap_ms or UserFeatureConfig().session_gap_ms

    def offered(
        self,
        recommendation_id: str,
        user_id: str,
        at_ms: int,
        pick: SlotPick,
        feedback: FeedbackLog,
    ) -> int:
        """Remember a list's slot; its trial goes to ``feedback``. How many were counted."""
        items = {pick.track_id: pick.arm}
        return offer(self.memory, feedback, recommendation_id, user_id, at_ms, items)

    def observe(
        self, event: Event, latest_ts_ms: int, track: TrackInfo | None, feedback: FeedbackLog
    ) -> CreditStatus:
        """Credit ``event`` (the user's newest before it at ``latest_ts_ms``): the session
        it continues or the return it makes, then its own slot; what became of it."""
        user_id, ts = str(event["user_id"]), int(event["ts"])
        if ts - latest_ts_ms > self.session_gap_ms:
            credit_return(self.memory, feedback, user_id, ts, self.reward)
        else:
            credit_session_event(self.memory, feedback, user_id, ts, self.reward)
        return credit(self.memory, feedback, event, self.reward, track).status

    def hook(self, feedback: FeedbackLog, statuses: list[CreditStatus]) -> BeforeFold:
        """The ingest hook for one message: rewards into ``feedback``, each event's credit
        status appended to ``statuses``."""

        def before_fold(event: Event, state: UserState, track: TrackInfo | None) -> None:
            latest = state.features.latest_ts_ms
            statuses.append(self.observe(event, latest, track, feedback))

        return before_fold


__all__ = ["MEMORY_LISTS", "Exploration"]
