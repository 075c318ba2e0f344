"""``tunestream simulate --closed-loop``: listeners who read their lists, answer them, and
come back (or not) depending on how they were served.

Reading order: :class:`ClosedLoopConfig`, :class:`ClosedLoop` (one policy's run, day by
day: who returns, their sessions, their events), :func:`run_closed_loop` (every policy on
the same world), :func:`result_table`.

**A day.** Each listener (:class:`~streams.tools.listeners.Listener`) first draws whether
they come back today, with the chance their satisfaction sets; a listener who does not
rests (their satisfaction drifts back toward the start). One who does opens a session at
an hour drawn from their hour profile (in their time zone), on a device and in a context
type drawn from their habits, at least 30 minutes after their previous session ended.
The sessions of all listeners then run interleaved in event time. At each track the
listener reads their current list from the policy (:meth:`Policy.lists_for
<streams.tools.loop_policies.Policy.lists_for>`) and takes its first item not yet
offered in this session, unless they pick a track themselves (their ``own_share`` of the
time, or when the list has nothing new); they play it through (maybe save it) or skip it
(:meth:`~streams.tools.listeners.Listener.listen`). Each track makes a ``play`` or
``skip`` event stamped when the listening ends, and a ``save`` a second or two later,
each carrying the ``recommendation_id`` of the list the track came from (none for their
own picks); the policy observes them at once, so the worker's next list already answers
them. A session ends after its drawn length, or sooner after skips; its reward moves the
listener's satisfaction. The draws of each listener-day come from a generator seeded by
(seed, listener, day), the same for every policy: policies meet the same listeners,
who decide to come back on the first day with the same chance.

**The figures**, per day (the day a session starts in; ``None`` when nobody listened):

* ``skip_rate``: skips / tracks started; ``save_rate``: saves / tracks started
  (own picks included: it is the listener's whole listening);
* ``diversity``: distinct artists among the tracks played through, per session (the mean
  over the day's sessions);
* ``return_rate``: listeners with a session that day / listeners;
* ``satisfaction``: the mean satisfaction state of all listeners at the day's end.

``summary``: skip and save rates pooled over the whole run, ``diversity`` the mean over
every session, ``return_rate`` and ``satisfaction`` the means of the daily series, and
``satisfaction_last_week`` the mean of the last 7 days' (the long-term figure).

Deterministic: the same config gives the same result, byte for byte (the in-process run).

>>> result = run_closed_loop(ClosedLoopConfig(days=2, listeners=4, tracks=60, artists=12,
...                                           policies=("random", "oracle")))
>>> sorted(result["policies"]), result["policies"]["oracle"]["days"]
(['oracle', 'random'], [0, 1])
>>> sorted(result["policies"]["random"]["summary"])  # doctest: +NORMALIZE_WHITESPACE
['diversity', 'return_rate', 'satisfaction', 'satisfaction_last_week', 'save_rate',
 'skip_rate']
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from streams.settings import Settings
from streams.tools.console import Table
from streams.tools.editorial_demo import demo_editorial_sets
from streams.tools.listeners import Catalog, Context, Listener, ListenerParams, SessionTally
from streams.tools.loop_policies import (
    NO_EXPLORATION_RERANK,
    ORACLE,
    POLICIES,
    POPULARITY,
    RANDOM,
    TUNESTREAM,
    Event,
    OraclePolicy,
    PlannerPolicy,
    Policy,
    PopularityPolicy,
    RandomPolicy,
    ablation_settings,
)
from streams.tools.simulator import SESSION_GAP_MS, Population, PopulationConfig

_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS
#: 2025-12-01T00:00:00Z: the in-process clock's start (the worker accepts any ts after 2000).
DEFAULT_START_MS: Final = 1_764_547_200_000
LAST_WEEK_DAYS: Final = 7
SUMMARY_KEYS: Final = (
    "skip_rate",
    "save_rate",
    "diversity",
    "return_rate",
    "satisfaction",
    "satisfaction_last_week",
)


@dataclass(frozen=True)
class ClosedLoopConfig:
    """What is simulated: the world (seed, listeners, catalog), how long, which policies.

    ``snapshot_every_s`` is how often, in event time, the in-process learner publishes a
    snapshot the planner swaps in (the worker's learner: every 5 s of wall time, which
    under a live load of this size is a few events; an hour of simulated time keeps the
    run short and the in-process tunestream no fresher than live).

    >>> ClosedLoopConfig(days=0)
    Traceback (most recent call last):
    ...
    ValueError: days must be a whole number >= 1, got 0
    """

    days: int = 21
    listeners: int = 200
    tracks: int = 2000
    artists: int = 300
    seed: int = 7
    policies: tuple[str, ...] = POLICIES
    list_size: int = 10
    start_ts_ms: int = DEFAULT_START_MS
    snapshot_every_s: float = 3600.0
    params: ListenerParams = field(default_factory=ListenerParams)

    def __post_init__(self) -> None:
        for name in ("days", "listeners", "tracks", "artists", "list_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.artists > self.tracks:
            raise ValueError(f"artists ({self.artists}) must not exceed tracks ({self.tracks})")
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise ValueError(
                f"unknown policy {', '.join(unknown) or '(none)'}; known: {', '.join(POLICIES)}"
            )
        if len(set(self.policies)) != len(self.policies):
            raise ValueError(f"a policy is named twice: {', '.join(self.policies)}")
        if not math.isfinite(self.snapshot_every_s) or self.snapshot_every_s <= 0:
            raise ValueError(f"snapshot_every_s must be > 0, got {self.snapshot_every_s!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        values = dataclasses.asdict(self)
        values["policies"] = list(self.policies)
        return values


#: A run small enough for tests (a few seconds for all five policies).
QUICK: Final = ClosedLoopConfig(days=6, listeners=40, tracks=400, artists=60)


@dataclass
class DayTally:
    """One day's figures, summed."""

    started: int = 0
    skips: int = 0
    saves: int = 0
    sessions: int = 0
    artists_played: int = 0


@dataclass
class _Session:
    listener: Listener
    user_id: str
    rng: random.Random
    context: Context
    session_id: str
    left: int
    tally: SessionTally = field(default_factory=SessionTally)
    offered: set[int] = field(default_factory=set)
    skips_in_row: int = 0


class ClosedLoop:
    """One policy's run: the listeners, their sessions in event time, the daily figures.

    ``user_prefix`` and ``id_prefix`` make the user ids and event ids (a live run's must
    differ from any earlier run's on the same broker).
    """

    def __init__(
        self,
        config: ClosedLoopConfig,
        catalog: Catalog,
        policy: Policy,
        listeners: dict[str, Listener],
        id_prefix: str = "",
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.policy = policy
        self.listeners = listeners
        self.id_prefix = id_prefix
        self.heap: list[tuple[int, int, _Session]] = []
        self.sequence = 0
        self.events_made = 0
        self.last_end_ms: dict[str, int] = {}
        self.sessions_opened: dict[str, int] = {}
        self.day_tally = DayTally()
        self.series: dict[str, list[Any]] = {
            key: [] for key in ("days", "skip_rate", "save_rate", "diversity", "return_rate")
        }
        self.series["satisfaction"] = []
        self.totals = DayTally()

    def start_day(self, day: int) -> None:
        """Who comes back today, and when their session starts."""
        self.day_tally = DayTally()
        day_start = self.config.start_ts_ms + day * _DAY_MS
        for user_id, listener in self.listeners.items():
            rng = random.Random(f"closed-loop-day:{self.config.seed}:{listener.user_id}:{day}")
            if rng.random() >= listener.return_probability():
                listener.rest_day()
                continue
            local_hour, context = listener.session_context(rng)
            utc_hour = (local_hour - listener.user.utc_offset_h) % 24
            start_ms = day_start + int(utc_hour * _HOUR_MS)
            previous = self.last_end_ms.get(user_id)
            if previous is not None:
                start_ms = max(start_ms, previous + SESSION_GAP_MS)
            number = self.sessions_opened.get(user_id, 0)
            self.sessions_opened[user_id] = number + 1
            session = _Session(
                listener,
                user_id,
                rng,
                context,
                f"{self.id_prefix}{user_id}-s{number}",
                listener.session_length(rng),
            )
            self.day_tally.sessions += 1
            self._push(start_ms, session)

    def _push(self, at_ms: int, session: _Session) -> None:
        heapq.heappush(self.heap, (at_ms, self.sequence, session))
        self.sequence += 1

    @property
    def next_ms(self) -> int | None:
        """When the next track of any session starts; None when today's sessions are over."""
        return self.heap[0][0] if self.heap else None

    def step_until(self, until_ms: float = math.inf) -> None:
        """Every track that starts before ``until_ms``."""
        while self.heap and self.heap[0][0] < until_ms:
            at_ms, _, session = heapq.heappop(self.heap)
            self._step(at_ms, session)

    def _step(self, now_ms: int, session: _Session) -> None:
        listener, rng, catalog = session.listener, session.rng, self.catalog
        list_id, items = self.policy.lists_for(session.user_id, session.context, now_ms)
        track: int | None = None
        if not listener.wants_own_choice(rng):
            for track_id in items:
                index = catalog.index.get(track_id)
                if index is not None and index not in session.offered:
                    track = index
                    break
        if track is None:
            track, list_id = listener.own_choice(rng, session.offered), None
        session.offered.add(track)
        outcome = listener.listen(track, session.context, now_ms, rng, session.tally)
        end_ms = now_ms + outcome.ms_played
        events = [self._event(session, track, outcome.kind, end_ms, outcome.ms_played, list_id)]
        if outcome.saved:
            end_ms += 1_000 + int(rng.random() * 2_000)
            events.append(self._event(session, track, "save", end_ms, 0, list_id))
        self.policy.observe(events)
        tally = self.day_tally
        tally.started += 1
        tally.saves += outcome.saved
        session.left -= 1
        if outcome.kind == "skip":
            tally.skips += 1
            session.skips_in_row += 1
            leaves = listener.quits_after_skip(session.skips_in_row, rng)
        else:
            session.skips_in_row = 0
            leaves = False
        if session.left <= 0 or leaves:
            listener.end_session(session.tally)
            tally.artists_played += len(session.tally.played_artists)
            self.last_end_ms[session.user_id] = end_ms
        else:
            self._push(end_ms + int(rng.random() * 2_000), session)

    def _event(
        self,
        session: _Session,
        track: int,
        kind: str,
        ts_ms: int,
        ms_played: int,
        list_id: str | None,
    ) -> Event:
        event: Event = {
            "event_id": f"{self.id_prefix}{session.user_id}-e{self.events_made}",
            "user_id": session.user_id,
            "track_id": self.catalog.track_ids[track],
            "type": kind,
            "ts": ts_ms,
            "ms_played": ms_played,
            "session_id": session.session_id,
            "context": session.context.to_dict(),
        }
        if list_id is not None:
            event["recommendation_id"] = list_id
        self.events_made += 1
        return event

    def end_day(self, day: int) -> None:
        """Today's figures into the series."""
        tally, totals = self.day_tally, self.totals
        for name in ("started", "skips", "saves", "sessions", "artists_played"):
            setattr(totals, name, getattr(totals, name) + getattr(tally, name))
        series = self.series
        series["days"].append(day)
        series["skip_rate"].append(_ratio(tally.skips, tally.started))
        series["save_rate"].append(_ratio(tally.saves, tally.started))
        series["diversity"].append(_ratio(tally.artists_played, tally.sessions))
        series["return_rate"].append(tally.sessions / len(self.listeners))
        satisfaction = math.fsum(lis.satisfaction for lis in self.listeners.values())
        series["satisfaction"].append(satisfaction / len(self.listeners))

    def run_day(self, day: int) -> None:
        self.start_day(day)
        self.step_until()
        self.end_day(day)

    def figures(self) -> dict[str, Any]:
        """The policy's entry of the result (the module docstring)."""
        totals, series = self.totals, self.series
        last_week = series["satisfaction"][-LAST_WEEK_DAYS:]
        summary = {
            "skip_rate": _ratio(totals.skips, totals.started),
            "save_rate": _ratio(totals.saves, totals.started),
            "diversity": _ratio(totals.artists_played, totals.sessions),
            "return_rate": _mean(series["return_rate"]),
            "satisfaction": _mean(series["satisfaction"]),
            "satisfaction_last_week": _mean(last_week),
        }
        return {**{key: list(values) for key, values in series.items()}, "summary": summary}


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def make_world(config: ClosedLoopConfig) -> tuple[Population, Catalog]:
    """The simulator's population (tracks, users) and this model's traits of its tracks."""
    population = Population(
        PopulationConfig(
            seed=config.seed,
            n_users=config.listeners,
            n_tracks=config.tracks,
            n_artists=config.artists,
            start_ts_ms=config.start_ts_ms,
        )
    )
    return population, Catalog(population, config.params)


def make_listeners(
    config: ClosedLoopConfig, population: Population, catalog: Catalog, user_prefix: str = ""
) -> dict[str, Listener]:
    """Fresh listeners (every policy starts from the same), keyed by their event user id."""
    return {
        f"{user_prefix}{user.user_id}": Listener(user, catalog, config.params, config.seed)
        for user in population.users
    }


def worker_settings(config: ClosedLoopConfig) -> Settings:
    """The worker's default settings (not the environment's: the run is reproducible)."""
    return Settings().replace(list_size=config.list_size)


def make_policy(
    name: str,
    config: ClosedLoopConfig,
    catalog: Catalog,
    listeners: dict[str, Listener],
) -> Policy:
    """An in-process policy by name (:data:`~streams.tools.loop_policies.POLICIES`)."""
    if name in (TUNESTREAM, NO_EXPLORATION_RERANK):
        settings = worker_settings(config)
        if name == NO_EXPLORATION_RERANK:
            settings = ablation_settings(settings)
        editorial = demo_editorial_sets([t.to_dict() for t in catalog.population.tracks])
        return PlannerPolicy(
            name, settings, catalog, config.start_ts_ms, editorial, config.snapshot_every_s
        )
    if name == RANDOM:
        return RandomPolicy(catalog, config.list_size, config.seed)
    if name == POPULARITY:
        return PopularityPolicy(config.list_size)
    if name == ORACLE:
        return OraclePolicy(listeners, catalog, config.list_size)
    raise ValueError(f"unknown policy {name!r}")


#: ``(policy, day, days)`` after each simulated day.
Progress = Callable[[str, int, int], None]


def run_policy(
    name: str,
    config: ClosedLoopConfig,
    population: Population,
    catalog: Catalog,
    on_day: Progress | None = None,
) -> dict[str, Any]:
    """One in-process policy over ``config.days``: its entry of the result."""
    listeners = make_listeners(config, population, catalog)
    loop = ClosedLoop(config, catalog, make_policy(name, config, catalog, listeners), listeners)
    for day in range(config.days):
        loop.run_day(day)
        if on_day is not None:
            on_day(name, day + 1, config.days)
    return loop.figures()


def run_closed_loop(
    config: ClosedLoopConfig | None = None, on_day: Progress | None = None
) -> dict[str, Any]:
    """Every policy of ``config`` in process, on the same world; JSON-safe:
    ``{"config": ..., "policies": {name: {"days", "skip_rate", ..., "summary"}}}``."""
    config = config or ClosedLoopConfig()
    population, catalog = make_world(config)
    policies = {
        name: run_policy(name, config, population, catalog, on_day) for name in config.policies
    }
    return {"config": {**config.to_dict(), "mode": "in-process"}, "policies": policies}


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def result_table(result: dict[str, Any]) -> Table:
    """The summaries side by side."""
    config = result["config"]
    title = (
        f"closed loop: {config['listeners']} listeners, {config['days']} days, "
        f"{config['tracks']} tracks, seed {config['seed']} ({config['mode']})"
    )
    headers = (
        "policy",
        "skip rate",
        "save rate",
        "artists/session",
        "return rate",
        "satisfaction",
        "satisfaction, last week",
    )
    rows = []
    for name, figures in result["policies"].items():
        summary = figures["summary"]
        rows.append(
            (
                name,
                _cell(summary["skip_rate"]),
                _cell(summary["save_rate"]),
                _cell(summary["diversity"], 2),
                _cell(summary["return_rate"]),
                _cell(summary["satisfaction"]),
                _cell(summary["satisfaction_last_week"]),
            )
        )
    return title, headers, rows


def verdict(result: dict[str, Any]) -> str | None:
    """The target, in one line: tunestream's last-week satisfaction against the ablation's."""
    policies = result["policies"]
    if TUNESTREAM not in policies or NO_EXPLORATION_RERANK not in policies:
        return None
    ours = policies[TUNESTREAM]["summary"]["satisfaction_last_week"]
    theirs = policies[NO_EXPLORATION_RERANK]["summary"]["satisfaction_last_week"]
    if ours is None or theirs is None:
        return None
    met = "met" if ours > theirs else "missed"
    return (
        f"target {met}: long-term satisfaction (last week) {TUNESTREAM} {ours:.3f} "
        f"against {NO_EXPLORATION_RERANK} {theirs:.3f} ({ours - theirs:+.3f})"
    )


__all__ = [
    "DEFAULT_START_MS",
    "QUICK",
    "SUMMARY_KEYS",
    "ClosedLoop",
    "ClosedLoopConfig",
    "make_listeners",
    "make_policy",
    "make_world",
    "result_table",
    "run_closed_loop",
    "run_policy",
    "verdict",
]
