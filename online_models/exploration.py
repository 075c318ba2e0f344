"""Exploration: which candidate source fills a list's exploration slot, learned from what followed.

Ranking by predicted engagement alone serves "empty calories": more of what
the user clicks now. One slot of each list is therefore left to a *source*
(``"taste"``, ``"trending"``, ``"new_artist"``, ``"editorial"``, ...) chosen
by a bandit, and the bandit is paid in long-term satisfaction, not clicks: a
save and a return the next day count for more than a play (:class:`RewardConfig`).

- :class:`RewardConfig`, :class:`OfferOutcome`, :func:`reward_of` — the reward
  of one offered track, in [0, 1].
- :class:`OfferMemory` — what each published list offered, and what came of it
  so far: bounded by a capacity and an age.
- :class:`ExplorationPolicy` — Thompson sampling over sources, one Beta per source.
- :func:`offer`, :func:`credit`, :func:`credit_session_event`,
  :func:`credit_return` — the glue the worker calls, pure like the rest.

How a reward reaches the policy. Feedback arrives in pieces and late: a play
in seconds, a save in minutes, a return within a day, and for most offers
nothing at all. So each offered slot counts as one trial of its source *when
the list is published*, with reward 0 (:func:`offer`): silence is the most
common answer and must weigh. Every piece of evidence then sets a flag of the
slot (engaged, saved, skipped, returned, session events) and *revises* that
trial's reward to :func:`reward_of` the outcome known so far. A flag is set
once, so a repeated event credits nothing twice; and the policy always holds,
per offered slot, exactly one trial of reward ``reward_of(what we know)``,
whatever the order the pieces came in. Until its evidence arrives, a recent
offer reads as 0: a source's mean read now is a little below its settled one.

The clock is injected: every call takes event time in epoch milliseconds.

>>> config = RewardConfig()
>>> memory, policy = OfferMemory(), ExplorationPolicy(seed=7)
>>> arm = policy.choose(["taste", "new_artist"])
>>> offer(memory, policy, "r1", "u1", 0, {"t9": arm})  # one slot, counted as reward 0
1
>>> event = {"type": "save", "recommendation_id": "r1", "track_id": "t9", "ts": 60_000}
>>> credit(memory, policy, event, config).reward  # a save is worth 0.3
0.3
>>> credit(memory, policy, event, config).status  # ... once
'repeat'
>>> credit_return(memory, policy, "u1", 3 * HOUR_MS, config)  # back 3 hours later: +0.35
1
>>> round(policy.stats()[arm]["mean_reward"], 6)  # one trial: 0.3 + 0.35
0.65
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, Self, get_args

from features import TrackInfo
from features.base import read_state, versioned_state
from features.event_types import PLAY, SAVE, SKIP
from online_models.example import engagement_label

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000


def _whole(value: int, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be a whole number >= {least}, got {value!r}")
    return value


def _reward_value(value: float, what: str = "a reward") -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return value


# --- the reward ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """The weights of the reward of one offered track; the gains sum to 1.

    reward = clip(engaged x 0.2 + saved x 0.3 + returned x 0.35
                  + session x min(events after / 10, 1) - skipped x 0.2, 0, 1)

    Why these defaults. Half the weight is the moment (a play heard through,
    a save) and half is what follows (a return within a day, a longer session):
    a track that is played and then ends the listening earns 0.2 of the 1
    possible. A save is a deliberate act, worth more than a play (0.3 > 0.2).
    Coming back within ``return_within_ms`` (a day) is the single largest
    term (0.35): the long-term satisfaction we optimise. ``session`` pays for
    the listening the offer led to, saturating at ``session_events_target``
    events. A skip takes back a play's worth (0.2) and the total is clipped at
    0, so a skipped track with nothing else to show earns 0, not less.

    ``engaged`` uses the engagement model's own label
    (:func:`online_models.example.engagement_label`): half the track heard, or
    30 s when its duration is unknown.

    >>> RewardConfig(engaged=0.5)
    Traceback (most recent call last):
    ...
    ValueError: the gains of a RewardConfig must sum to 1, got 1.3
    """

    engaged: float = 0.2
    saved: float = 0.3
    returned: float = 0.35
    session: float = 0.15
    skip_penalty: float = 0.2
    session_events_target: int = 10
    return_within_ms: int = DAY_MS

    def __post_init__(self) -> None:
        for name in ("engaged", "saved", "returned", "session", "skip_penalty"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"RewardConfig.{name} must be in [0, 1], got {value!r}")
        gains = math.fsum((self.engaged, self.saved, self.returned, self.session))
        if not math.isclose(gains, 1.0, abs_tol=1e-9):
            raise ValueError(f"the gains of a RewardConfig must sum to 1, got {gains:g}")
        _whole(self.session_events_target, "RewardConfig.session_events_target", 1)
        _whole(self.return_within_ms, "RewardConfig.return_within_ms", 1)


@dataclass(frozen=True, slots=True)
class OfferOutcome:
    """What the user did with one offered track, as far as it is known."""

    engaged: bool = False
    saved: bool = False
    skipped: bool = False
    returned_within_day: bool = False
    session_events_after: int = 0


def reward_of(outcome: OfferOutcome, config: RewardConfig) -> float:
    """The reward of ``outcome`` under ``config``'s weights: always in [0, 1].

    >>> config = RewardConfig()
    >>> reward_of(OfferOutcome(engaged=True), config)  # a click and nothing after
    0.2
    >>> reward_of(OfferOutcome(engaged=True, returned_within_day=True), config)
    0.55
    >>> reward_of(OfferOutcome(skipped=True, session_events_after=4), config)  # 0.06 - 0.2
    0.0
    """
    session_share = min(max(outcome.session_events_after, 0) / config.session_events_target, 1.0)
    raw = math.fsum(
        (
            config.engaged * outcome.engaged,
            config.saved * outcome.saved,
            config.returned * outcome.returned_within_day,
            config.session * session_share,
            -config.skip_penalty * outcome.skipped,
        )
    )
    return min(max(raw, 0.0), 1.0)


# --- the memory of offers --------------------------------------------------------------


@dataclass(slots=True)
class OfferSlot:
    """One offered track: the source (arm) that filled it and the evidence so far.

    ``credited`` is the reward the policy now holds for this slot's trial; None
    until the trial is counted (a list remembered without :func:`offer`).
    """

    arm: str
    engaged: bool = False
    saved: bool = False
    skipped: bool = False
    credited: float | None = None


@dataclass(slots=True)
class OfferedList:
    """One published list as remembered: whose, when, its slots, and its aftermath.

    ``returned`` and ``session_events_after`` belong to the list (the user
    came back; the listening that followed it), ``session_open`` says whether
    the session it was offered in is still running (events still count).
    """

    recommendation_id: str
    user_id: str
    offered_at_ms: int
    slots: dict[str, OfferSlot]
    returned: bool = False
    session_events_after: int = 0
    session_open: bool = True

    def outcome(self, track_id: str) -> OfferOutcome:
        """The outcome known so far of the offer of ``track_id`` (which must be offered)."""
        slot = self.slots[track_id]
        return OfferOutcome(
            engaged=slot.engaged,
            saved=slot.saved,
            skipped=slot.skipped,
            returned_within_day=self.returned,
            session_events_after=self.session_events_after,
        )


class OfferMemory:
    """What each published list offered, by ``recommendation_id``; oldest forgotten first.

    Lists are kept in the order they were remembered, which is time order for
    one stream of lists. A list leaves when ``capacity`` lists are newer, when
    it is older than ``max_age_ms`` before the newest list remembered, or when
    :meth:`forget_before` passes its time. Keep ``max_age_ms`` at least
    :attr:`RewardConfig.return_within_ms`, or a return is never credited. A
    list remembered out of time order waits behind newer ones for the age rule,
    but never outlives ``capacity``.

    Remember only the slots a bandit chose (the exploration slot): crediting
    the other slots would teach it about choices it did not make.

    Memory bound: ``capacity`` lists. A list of one slot with 32-character ids
    takes about 0.9 kB (its record, slot, dicts, ids and the per-user index, as
    measured with ``tracemalloc``); each further slot about 0.15 kB. The default
    100 000 lists of one slot: ~90 MB at most.

    >>> memory = OfferMemory(capacity=2)
    >>> for i in range(3):
    ...     _ = memory.remember(f"r{i}", "u1", i * 1000, {"t1": "trending"})
    >>> memory.arm_of("r0", "t1") is None, memory.arm_of("r2", "t1")  # r0: over capacity
    (True, 'trending')
    """

    def __init__(self, capacity: int = 100_000, max_age_ms: int = DAY_MS) -> None:
        self.capacity = _whole(capacity, "capacity", 1)
        self.max_age_ms = _whole(max_age_ms, "max_age_ms", 1)
        self._lists: OrderedDict[str, OfferedList] = OrderedDict()  # oldest first
        self._by_user: dict[str, dict[str, None]] = {}  # user -> their ids, oldest first

    def remember(
        self, recommendation_id: str, user_id: str, at_ms: int, items: Mapping[str, str]
    ) -> int:
        """Remember that list ``recommendation_id`` offered ``items`` (track -> arm) at ``at_ms``.

        Returns how many lists were forgotten to keep the bounds. The first
        remembering of an id wins (a list published twice must not count twice),
        and a list with no items is not kept: there is nothing to credit.
        """
        if recommendation_id in self._lists or not items:
            return 0
        slots = {str(track_id): OfferSlot(str(arm)) for track_id, arm in items.items()}
        self._add(OfferedList(recommendation_id, user_id, int(at_ms), slots))
        forgotten = self.forget_before(int(at_ms) - self.max_age_ms)
        while len(self._lists) > self.capacity:
            self._drop_oldest()
            forgotten += 1
        return forgotten

    def arm_of(self, recommendation_id: str, track_id: str) -> str | None:
        """The arm that filled ``track_id``'s slot in the list; None if forgotten or not offered."""
        offered = self._lists.get(recommendation_id)
        slot = offered.slots.get(track_id) if offered is not None else None
        return slot.arm if slot is not None else None

    def get(self, recommendation_id: str) -> OfferedList | None:
        """The remembered list, or None if it was forgotten (or never remembered)."""
        return self._lists.get(recommendation_id)

    def lists_of(self, user_id: str) -> list[OfferedList]:
        """The user's remembered lists, oldest first."""
        return [self._lists[rid] for rid in self._by_user.get(user_id, ())]

    def forget_before(self, ts_ms: int) -> int:
        """Forget lists offered before ``ts_ms``, from the oldest end; return how many."""
        forgotten = 0
        while self._lists and next(iter(self._lists.values())).offered_at_ms < ts_ms:
            self._drop_oldest()
            forgotten += 1
        return forgotten

    def __len__(self) -> int:
        return len(self._lists)

    def __contains__(self, recommendation_id: object) -> bool:
        return recommendation_id in self._lists

    def __iter__(self) -> Iterator[OfferedList]:
        """The remembered lists, oldest first."""
        return iter(self._lists.values())

    def __repr__(self) -> str:
        return f"OfferMemory(capacity={self.capacity}, max_age_ms={self.max_age_ms})"

    def _add(self, offered: OfferedList) -> None:
        self._lists[offered.recommendation_id] = offered
        self._by_user.setdefault(offered.user_id, {})[offered.recommendation_id] = None

    def _drop_oldest(self) -> None:
        recommendation_id, offered = self._lists.popitem(last=False)
        ids = self._by_user[offered.user_id]
        del ids[recommendation_id]
        if not ids:
            del self._by_user[offered.user_id]

    def to_state(self) -> dict[str, Any]:
        """The bounds and every list, oldest first, as a JSON-safe dict (``"v": 1``).

        A list is ``[id, user, offered_at_ms, returned, session_events_after,
        session_open, slots]``, a slot ``[track_id, arm, engaged, saved, skipped,
        credited]``.
        """
        return versioned_state(
            capacity=self.capacity,
            max_age_ms=self.max_age_ms,
            lists=[
                [
                    o.recommendation_id,
                    o.user_id,
                    o.offered_at_ms,
                    o.returned,
                    o.session_events_after,
                    o.session_open,
                    [
                        [track_id, s.arm, s.engaged, s.saved, s.skipped, s.credited]
                        for track_id, s in o.slots.items()
                    ],
                ]
                for o in self._lists.values()
            ],
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_state` output; ``ValueError`` for another version or a
        malformed state. Lists beyond ``capacity`` keep the newest."""
        capacity, max_age_ms, lists = read_state(
            state, cls.__name__, "capacity", "max_age_ms", "lists"
        )
        memory = cls(capacity, max_age_ms)
        try:
            for at, entry in enumerate(lists[-memory.capacity :]):
                memory._add(_list_from_state(entry, at))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{cls.__name__} state: {exc}") from exc
        return memory


def _list_from_state(entry: Any, at: int) -> OfferedList:
    rid, user, offered_at_ms, returned, session_events, session_open, slots = entry
    if not (isinstance(rid, str) and isinstance(user, str) and isinstance(slots, list)):
        raise ValueError(f"list {at} is not [id, user, ..., slots]")
    offered = OfferedList(
        recommendation_id=rid,
        user_id=user,
        offered_at_ms=_whole(offered_at_ms, f"list {at}'s offered_at_ms", -(2**63)),
        slots={},
        returned=bool(returned),
        session_events_after=_whole(session_events, f"list {at}'s session_events_after", 0),
        session_open=bool(session_open),
    )
    for track_id, arm, engaged, saved, skipped, credited in slots:
        if not (isinstance(track_id, str) and isinstance(arm, str)):
            raise ValueError(f"list {at} ({rid!r}) has a slot that is not [track, arm, ...]")
        value = None if credited is None else _reward_value(credited, f"list {at}'s credit")
        offered.slots[track_id] = OfferSlot(arm, bool(engaged), bool(saved), bool(skipped), value)
    return offered


# --- the policy ------------------------------------------------------------------------


def _check_arm(arm: str) -> str:
    if not isinstance(arm, str) or not arm:
        raise ValueError(f"an arm is a non-empty source name, got {arm!r}")
    return arm


@dataclass(slots=True)
class _ArmStats:
    pulls: int = 0  # times chosen
    trials: float = 0.0  # rewards counted (scaled down past the horizon)
    reward_sum: float = 0.0


class ExplorationPolicy:
    """Thompson sampling over arms (source names), a Beta posterior per arm.

    Each arm's posterior is ``Beta(prior_alpha + rewards, prior_beta + trials
    - rewards)``, a reward in [0, 1] adding its value to the successes and the
    rest to the failures (the fractional Beta update). :meth:`choose` draws a
    mean from every offered arm's posterior and takes the highest: an arm is
    chosen as often as it is likely to be the best, so a source with little
    evidence is still tried, and a poor one less and less.

    Why not River's ``bandit.ThompsonSampling(proba.Beta())``: in River 0.26,
    ``proba.Beta.update(x)`` adds a whole success for any truthy ``x`` (0.3
    counts as 1), and the policy keeps one random generator per arm in private
    attributes, not JSON. The draw here is the one River's Beta makes
    (``random.betavariate``); the generator of the ``n``-th choice is seeded by
    ``(seed, n)``, so choices are reproducible and a restored policy goes on
    exactly where it stopped.

    ``horizon`` bounds the evidence of an arm: past it, every new trial scales
    the old ones down so they sum to ``horizon`` (older evidence fades
    geometrically). The posterior never grows so sure that it stops exploring,
    and a source that improves is noticed. (A revision of a trial made before
    such a scaling applies its full change: approximate, and clipped to stay a
    valid Beta.) ``None``: remember everything.

    Memory bound: three numbers per arm ever seen, O(arms).

    >>> policy = ExplorationPolicy(seed=1)
    >>> for _ in range(200):
    ...     policy.reward("trending", 0.1)
    ...     policy.reward("new_artist", 0.6)
    >>> picks = [policy.choose(["trending", "new_artist"]) for _ in range(100)]
    >>> picks.count("new_artist") > 95
    True
    """

    def __init__(
        self,
        seed: int = 0,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        horizon: int | None = 10_000,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        for name, prior in (("prior_alpha", prior_alpha), ("prior_beta", prior_beta)):
            if not (isinstance(prior, int | float) and 0.0 < prior < math.inf):
                raise ValueError(f"{name} must be a finite number > 0, got {prior!r}")
        self.seed = seed
        self.prior_alpha = float(prior_alpha)
        self.prior_beta = float(prior_beta)
        self.horizon = None if horizon is None else _whole(horizon, "horizon", 1)
        self.choices = 0  # choices made so far: seeds the next one
        self._arms: dict[str, _ArmStats] = {}

    def choose(self, arms: Sequence[str]) -> str:
        """The arm that fills the next exploration slot, among ``arms`` (in their order
        on a tie); ``ValueError`` if there are none."""
        best = self.sample(arms, str(self.choices))
        self.choices += 1
        self._stats(best).pulls += 1
        return best

    def sample(self, arms: Sequence[str], draw_key: str) -> str:
        """The arm a Thompson draw seeded by ``(seed, draw_key)`` picks among ``arms``;
        changes nothing, so a served (read-only) policy gives the same list for the
        same key: a worker draws with the triggering event's id.

        >>> policy = ExplorationPolicy(seed=3)
        >>> policy.sample(["taste", "trending"], "e1") == policy.sample(["taste", "trending"], "e1")
        True
        """
        candidates = list(dict.fromkeys(arms))
        if not candidates:
            raise ValueError("choose needs at least one arm")
        for arm in candidates:
            _check_arm(arm)
        rng = random.Random(f"{self.seed}/{draw_key}")
        best, best_draw = candidates[0], -1.0
        for arm in candidates:
            stats = self._arms.get(arm) or _ArmStats()
            draw = rng.betavariate(*self._posterior(stats))
            if draw > best_draw:
                best, best_draw = arm, draw
        return best

    def reward(self, arm: str, value: float) -> None:
        """Count one trial of ``arm`` with reward ``value`` in [0, 1]."""
        value = _reward_value(value)
        stats = self._stats(arm)
        stats.trials += 1.0
        stats.reward_sum += value
        if self.horizon is not None and stats.trials > self.horizon:
            scale = self.horizon / stats.trials
            stats.trials = float(self.horizon)
            stats.reward_sum *= scale

    def revise(self, arm: str, old: float, new: float) -> None:
        """Change the reward of one trial of ``arm`` already counted from ``old`` to ``new``."""
        old, new = _reward_value(old), _reward_value(new)
        stats = self._stats(arm)
        stats.reward_sum = min(max(stats.reward_sum + (new - old), 0.0), stats.trials)

    def apply(self, feedback: Iterable[FeedbackEntry]) -> int:
        """Count what a :class:`FeedbackLog` recorded elsewhere (a worker's offers and
        credits, applied by the learner); how many entries were applied."""
        applied = 0
        for arm, old, new in feedback:
            if old is None:  # a new trial: the slot was offered (and counts as a pull)
                self._stats(arm).pulls += 1
                self.reward(arm, new)
            else:
                self.revise(arm, old, new)
            applied += 1
        return applied

    def mean_reward(self, arm: str) -> float | None:
        """The mean reward of ``arm``'s trials; None before its first."""
        stats = self._arms.get(arm)
        return stats.reward_sum / stats.trials if stats and stats.trials else None

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per arm, by name: ``pulls`` (times chosen), ``trials`` (rewards counted),
        ``mean_reward`` (None before a trial) and ``posterior_mean``; JSON-safe."""
        out: dict[str, dict[str, Any]] = {}
        for arm in sorted(self._arms):
            stats = self._arms[arm]
            alpha, beta = self._posterior(stats)
            out[arm] = {
                "pulls": stats.pulls,
                "trials": stats.trials,
                "mean_reward": self.mean_reward(arm),
                "posterior_mean": alpha / (alpha + beta),
            }
        return out

    def __repr__(self) -> str:
        return (
            f"ExplorationPolicy(seed={self.seed}, prior_alpha={self.prior_alpha}, "
            f"prior_beta={self.prior_beta}, horizon={self.horizon})"
        )

    def _stats(self, arm: str) -> _ArmStats:
        stats = self._arms.get(arm)
        if stats is None:
            stats = self._arms[_check_arm(arm)] = _ArmStats()
        return stats

    def _posterior(self, stats: _ArmStats) -> tuple[float, float]:
        successes = min(max(stats.reward_sum, 0.0), stats.trials)
        return self.prior_alpha + successes, self.prior_beta + stats.trials - successes

    def to_state(self) -> dict[str, Any]:
        """Hyperparameters, the choice count and ``[pulls, trials, reward_sum]`` per arm,
        as a JSON-safe dict (``"v": 1``)."""
        return versioned_state(
            seed=self.seed,
            prior_alpha=self.prior_alpha,
            prior_beta=self.prior_beta,
            horizon=self.horizon,
            choices=self.choices,
            arms={a: [s.pulls, s.trials, s.reward_sum] for a, s in self._arms.items()},
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_state` output; ``ValueError`` for another version or a
        malformed state."""
        seed, prior_alpha, prior_beta, horizon, choices, arms = read_state(
            state, cls.__name__, "seed", "prior_alpha", "prior_beta", "horizon", "choices", "arms"
        )
        policy = cls(seed, prior_alpha, prior_beta, horizon)
        try:
            policy.choices = _whole(choices, "choices", 0)
            for arm, (pulls, trials, reward_sum) in arms.items():
                stats = policy._stats(arm)
                stats.pulls = _whole(pulls, f"arm {arm!r}'s pulls", 0)
                stats.trials, stats.reward_sum = float(trials), float(reward_sum)
                if not 0.0 <= stats.reward_sum <= stats.trials < math.inf:
                    raise ValueError(f"arm {arm!r} has {reward_sum!r} rewards in {trials!r} trials")
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"{cls.__name__} state: {exc}") from exc
        return policy


# --- where rewards go: the policy itself, or a log of them for the learner -------------

#: One reward as recorded: ``(arm, old, new)``; ``old`` is None for a new trial.
FeedbackEntry = tuple[str, float | None, float]


class RewardSink(Protocol):
    """What the glue below pays rewards into: an :class:`ExplorationPolicy`, or a
    :class:`FeedbackLog` that carries them to where the policy learns."""

    def reward(self, arm: str, value: float) -> None: ...

    def revise(self, arm: str, old: float, new: float) -> None: ...


class FeedbackLog:
    """Rewards recorded instead of applied: a worker credits its offers into one, and the
    learner applies the entries to the one policy every worker draws from
    (:meth:`ExplorationPolicy.apply`). Entries are JSON-safe lists.

    >>> log = FeedbackLog()
    >>> log.reward("trending", 0.0); log.revise("trending", 0.0, 0.3)
    >>> policy = ExplorationPolicy()
    >>> policy.apply(log.entries), policy.mean_reward("trending")
    (2, 0.3)
    """

    def __init__(self) -> None:
        self.entries: list[FeedbackEntry] = []

    def reward(self, arm: str, value: float) -> None:
        self.entries.append((_check_arm(arm), None, _reward_value(value)))

    def revise(self, arm: str, old: float, new: float) -> None:
        self.entries.append((_check_arm(arm), _reward_value(old), _reward_value(new)))


def read_feedback(item: Any) -> FeedbackEntry:
    """One entry back from its JSON form ``[arm, old, new]``; ``ValueError`` if malformed.

    >>> read_feedback(["taste", None, 0.2])
    ('taste', None, 0.2)
    """
    try:
        arm, old, new = item
        return (
            _check_arm(arm),
            None if old is None else _reward_value(old),
            _reward_value(new),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an exploration feedback entry: {item!r} ({exc})") from exc


# --- the glue: from events to rewards --------------------------------------------------

CreditStatus = Literal[
    "credited",  # the slot's evidence changed; the policy now holds its new reward
    "repeat",  # this (list, track, kind) was credited before: nothing changes
    "not_engaged",  # a play too short to count as engaged: no evidence either way
    "no_recommendation",  # the event names no recommendation_id
    "unknown_list",  # the list was forgotten (or never remembered)
    "not_offered",  # the list did not offer this track in a remembered slot
    "unknown_type",  # not a play, skip or save
]
#: Every credit status, for pre-declared counter labels.
CREDIT_STATUSES: Final[tuple[CreditStatus, ...]] = get_args(CreditStatus)


@dataclass(frozen=True, slots=True)
class Credit:
    """What :func:`credit` did with one event; ``arm`` and ``reward`` (the slot's reward
    now) are known once the slot is found."""

    status: CreditStatus
    arm: str | None = None
    reward: float | None = None


def offer(
    memory: OfferMemory,
    policy: RewardSink,
    recommendation_id: str,
    user_id: str,
    at_ms: int,
    items: Mapping[str, str],
) -> int:
    """Remember a published list's chosen slots (track -> arm) and count each as one trial
    of its arm with reward 0 for now; return how many were counted (0 for a list seen
    before)."""
    if recommendation_id in memory:
        return 0
    memory.remember(recommendation_id, user_id, at_ms, items)
    offered = memory.get(recommendation_id)
    if offered is None:  # no items
        return 0
    for slot in offered.slots.values():
        policy.reward(slot.arm, 0.0)
        slot.credited = 0.0
    return len(offered.slots)


def credit(
    memory: OfferMemory,
    policy: RewardSink,
    event: Mapping[str, Any],
    config: RewardConfig,
    track: TrackInfo | None = None,
) -> Credit:
    """Credit the immediate part of a listening event to the arm that filled its slot.

    ``event`` is a listening event (``type``, ``track_id``, ``recommendation_id``,
    ``ms_played``): a play heard through sets *engaged* (by
    :func:`~online_models.example.engagement_label`, with ``track``'s duration
    when known), a skip *skipped*, a save *saved*; each once per (list, track).
    """
    recommendation_id = event.get("recommendation_id")
    if not recommendation_id:
        return Credit("no_recommendation")
    offered = memory.get(str(recommendation_id))
    if offered is None:
        return Credit("unknown_list")
    track_id = str(event.get("track_id"))
    slot = offered.slots.get(track_id)
    if slot is None:
        return Credit("not_offered")
    kind = event.get("type")
    if kind == PLAY:
        if not engagement_label(event, track):
            return Credit("not_engaged", slot.arm, slot.credited)
        flag = "engaged"
    elif kind == SKIP:
        flag = "skipped"
    elif kind == SAVE:
        flag = "saved"
    else:
        return Credit("unknown_type", slot.arm, slot.credited)
    if getattr(slot, flag):
        return Credit("repeat", slot.arm, slot.credited)
    setattr(slot, flag, True)
    return Credit("credited", slot.arm, _recredit(policy, offered, track_id, config))


def credit_session_event(
    memory: OfferMemory,
    policy: RewardSink,
    user_id: str,
    ts_ms: int,
    config: RewardConfig,
) -> int:
    """One more event of the user at ``ts_ms`` in their running session: each list offered
    before it in that session gains a session event (up to the target, where the reward
    stops growing). Returns how many lists gained one."""
    counted = 0
    for offered in memory.lists_of(user_id):
        if (
            offered.session_open
            and offered.offered_at_ms < ts_ms
            and offered.session_events_after < config.session_events_target
        ):
            offered.session_events_after += 1
            for track_id in offered.slots:
                _recredit(policy, offered, track_id, config)
            counted += 1
    return counted


def credit_return(
    memory: OfferMemory,
    policy: RewardSink,
    user_id: str,
    now_ms: int,
    config: RewardConfig,
) -> int:
    """The user came back: a new session starts at ``now_ms``.

    Every list of the user offered within ``config.return_within_ms`` before
    ``now_ms`` and not credited with a return yet is credited, once; the
    sessions of all their earlier lists are over (no more session events).
    Returns how many lists were credited with the return.
    """
    returned = 0
    for offered in memory.lists_of(user_id):
        if offered.offered_at_ms >= now_ms:
            continue
        offered.session_open = False
        if not offered.returned and now_ms - offered.offered_at_ms <= config.return_within_ms:
            offered.returned = True
            for track_id in offered.slots:
                _recredit(policy, offered, track_id, config)
            returned += 1
    return returned


def _recredit(
    policy: RewardSink, offered: OfferedList, track_id: str, config: RewardConfig
) -> float:
    """Bring the policy's trial of one slot to the reward of its outcome so far."""
    slot = offered.slots[track_id]
    new = reward_of(offered.outcome(track_id), config)
    if slot.credited is None:
        policy.reward(slot.arm, new)
    elif new != slot.credited:
        policy.revise(slot.arm, slot.credited, new)
    slot.credited = new
    return new


__all__ = [
    "CREDIT_STATUSES",
    "DAY_MS",
    "HOUR_MS",
    "Credit",
    "CreditStatus",
    "ExplorationPolicy",
    "FeedbackEntry",
    "FeedbackLog",
    "OfferMemory",
    "OfferOutcome",
    "OfferSlot",
    "OfferedList",
    "RewardConfig",
    "RewardSink",
    "credit",
    "credit_return",
    "credit_session_event",
    "offer",
    "read_feedback",
    "reward_of",
]
