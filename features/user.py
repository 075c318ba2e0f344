"""Per-user rolling features: activity, taste, diet, context and session, in event time.

One :class:`UserFeatures` per user folds that user's events in one at a time
(``update``) and answers a JSON-safe dict of named features (``read``). It is
built from the primitives of this package and keeps their exactness: for every
event within ``lateness_ms`` of the user's newest, the arrival order changes no
feature. An event more than ``lateness_ms`` older than the newest is *too late*:
``update`` refuses it (returns False), changes no feature and only counts it in
``too_late_count``; the caller dead-letters it.

Timeline (``h`` = hours; half-lives 1 h, 1 d, 7 d)::

    t=0 play     t=1h play                 read at t=2h
      weighs 1/4   weighs 1/2          ->  plays_1h = 0.25 + 0.5 = 0.75

Definitions (``H`` is a horizon of ``config.horizons``: 1h, 1d, 7d half-lives;
"decayed" means each event weighs ``2**(-age / half_life)`` at the read time):

* ``plays_H`` / ``skips_H`` / ``saves_H``: decayed counts of each event type.
* ``skip_rate_H = (skips_H + r * w) / (plays_H + skips_H + w)`` for the rate
  horizons (1d, 7d): skips among listens (play and skip events), smoothed towards
  the prior rate ``r`` with ``w`` pseudo-listens (``skip_prior = (r, w)``), so a
  new user reads ``r`` rather than 0 or 1. This is ``DecayedRate``'s formula,
  computed from the counts above rather than from a second copy of them.
* ``save_rate_7d = (saves_7d + r * w) / (plays_7d + w)`` (``save_prior``): saves
  per play. A save is an event of its own, not an outcome of a play, so this
  ratio of two counts can exceed 1 for a user who saves more than they play.
* ``completion_ratio_7d``: decayed (7 d) mean of ``min(1, ms_played / duration_ms)``
  over play and skip events of tracks whose duration the catalog knows; None
  before any.
* ``artist_affinity`` / ``genre_affinity``: ``[key, weight]`` of the 10 heaviest
  of at most ``top_k`` decayed weights (``affinity_half_life_s``): a play of a
  catalogued track adds 1 to its artist and each of its genres, a save 2, a skip
  nothing. ``artist_diversity`` / ``genre_diversity``: the entropy in bits of
  those maps' shares (0 for one artist; the listening diet).
* ``new_artist_share_7d``: decayed (7 d) share of plays of catalogued tracks
  whose artist the user had not played at any earlier event time; None before
  any such play. A late play that precedes an artist's first known play takes
  over the "new" mark (removed at the old time, added at its own).
* ``last_played_ms``: ``{"tracks": {track_id: ts}, "artists": {artist_id: ts}}``,
  the newest play per key, for the ``recent_k`` keys played most recently,
  newest first.
* ``recent_feedback``: ``{"skipped": {track_id: ts}, "liked": {track_id: ts}}``,
  the same for the ``feedback_k`` [12] tracks skipped and those engaged with
  (saved, or played through: :func:`features.event_types.engagement_label`)
  most recently, catalogued or not.
  Lists leave out what was skipped, and look for more like what was liked.
* ``hour_of_day`` (24 numbers, hour 0 first) and ``day_of_week`` (7, Monday
  first): decayed (``context_half_life_s``) weights of all events by the UTC hour
  and weekday of their event time. ``device_mix`` / ``context_type_mix``: shares
  of the decayed weights of the events naming a device / a context type.
* ``session``: the running session, :class:`features.session.SessionFeatures`.
* ``as_of_ms`` (the read time: the newest event's time if that is later),
  ``events_seen`` (events folded in) and ``too_late_count`` (events refused).

Exactness. Everything above is exact for any arrival within the lateness, up to
float rounding, while the bounds hold: at most ``top_k`` artists and genres, 8
devices and 8 context types (the lightest forgotten beyond), ``max_known_artists``
artists remembered as heard (the least recently played forgotten beyond; it counts
as new again), and the session's bound (:mod:`features.session`). A state round
trip (``from_state(to_state())``) changes no feature: floats are stored bit for bit.

Memory bound (defaults in brackets): 9 decayed counters and 4 decayed sums, 2
affinity maps of ``top_k`` [24] keys, context maps of 24 + 7 + 8 + 8 keys,
``2 * recent_k + 2 * feedback_k`` [2 * 20 + 2 * 12] recency entries,
``max_known_artists`` [128] artists heard (with a first-play time only for those
first played within the lateness) and ``session_max_events`` [32] session events.
Saved (:meth:`UserFeatures.to_state`) that is about 11 characters per float, 9 per
artist held and 12 per recent track: some 3 KB of JSON for a user of 1,000 events
and 170 artists (1.9 KB deflated, as the worker stores it), at most about 5 KB with
every bound full and ids of 6 characters. ``update`` is O(1) apart from the
session's list insert and, when a map is full, an O(``top_k`` or ``recent_k``)
scan; nothing is recomputed over history.

>>> from features.catalog import TrackInfo
>>> user = UserFeatures()
>>> track = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)
>>> play = {"type": "play", "track_id": "t1", "ts": 0, "ms_played": 100_000}
>>> user.update(play, track)
True
>>> f = user.read(3_600_000)  # an hour later
>>> f["plays_1h"], f["completion_ratio_7d"], f["artist_affinity"][0][0]
(0.5, 0.5, 'a1')
>>> user.update({**play, "ts": 7_200_000}, track), user.too_late(7_200_000 - 300_001)
(True, True)
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from features.affinity import DecayedTopK
from features.base import (
    pack_floats,
    pack_unsigned,
    read_state,
    state_version,
    unpack_floats,
    unpack_unsigned,
    versioned_state,
)
from features.catalog import TrackInfo
from features.decay import Decayed, DecayedCounter, DecayedSum
from features.event_types import ENGAGEMENT_WEIGHTS, EVENT_TYPES, SKIP, engagement_label
from features.session import SessionTracker

#: Keys shown in ``artist_affinity`` and ``genre_affinity``.
TOP_SHOWN = 10
#: Distinct devices and context types held; clients send a handful.
MAX_CONTEXT_VALUES = 8

_WEEK_S = 7 * 86_400.0
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0, as in datetime.weekday()
_HOURS = tuple(str(hour) for hour in range(24))
_WEEKDAYS = tuple(str(day) for day in range(7))
_CALENDAR_INDEX = {str(index): index for index in range(24)}  # "13" -> 13, for hours and days
_NEVER_MS = -(2**62)  # "no event yet": earlier than any real event time, still JSON-safe
#: A first play older than any play the lateness admits: its time is not kept.
_LONG_AGO_MS = _NEVER_MS
#: Version 2 packs the state into columns (:meth:`UserFeatures.to_state`); version 1
#: (still read) held plain maps.
STATE_VERSION = 2
_PLAIN_VERSION = 1
_COUNTED = tuple(f"{kind}s" for kind in EVENT_TYPES)  # "plays", "skips", "saves"

_Sum = TypeVar("_Sum", bound=DecayedSum)


@dataclass(frozen=True)
class UserFeatureConfig:
    """Horizons, bounds and priors of the user features; the defaults suit the demo.

    ``horizons`` are named half-lives in seconds (``dict(config.horizons)``); the
    names become feature suffixes (``plays_1h``). ``skip_prior`` and ``save_prior``
    are ``(rate, weight)``: the rate a new user reads and its pseudo-event count.
    """

    horizons: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("1d", 86_400.0), ("7d", _WEEK_S))
    rate_horizons: tuple[str, ...] = ("1d", "7d")
    lateness_ms: int = 300_000
    session_gap_ms: int = 1_800_000
    #: Events of the last sessions kept; must cover a lateness window of listening
    #: (5 minutes of skipping through tracks is some 30 events).
    session_max_events: int = 32
    affinity_half_life_s: float = _WEEK_S
    context_half_life_s: float = 28 * 86_400.0
    #: Artists (genres) weighed: the 10 shown, with room for the runners-up to rise.
    top_k: int = 24
    #: Tracks and artists in ``last_played_ms``.
    recent_k: int = 20
    #: Tracks in ``recent_feedback`` (each of skipped and liked): what lists leave out
    #: and where they look for more like it.
    feedback_k: int = 12
    #: Artists remembered as heard, for ``new_artist_share_7d``: weeks of listening
    #: for a heavy listener (one of 170 artists in 8 weeks, in the simulator), months
    #: for most; the least recently played beyond counts as new again ("rediscovered").
    max_known_artists: int = 128
    skip_prior: tuple[float, float] = (0.3, 5.0)
    save_prior: tuple[float, float] = (0.05, 5.0)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.horizons]
        if len(set(names)) != len(names) or "7d" not in names:
            raise ValueError(f"horizons must have distinct names including '7d', got {names}")
        if not set(self.rate_horizons) <= set(names):
            raise ValueError(f"rate_horizons {self.rate_horizons} must be among {names}")
        if not 0 <= self.lateness_ms < self.session_gap_ms:
            raise ValueError("lateness_ms must be >= 0 and below session_gap_ms")
        for name in ("top_k", "recent_k", "feedback_k", "max_known_artists"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("skip_prior", "save_prior"):
            rate, weight = getattr(self, name)
            if not (0.0 <= rate <= 1.0 and weight > 0.0):
                raise ValueError(f"{name} must be (rate in [0, 1], weight > 0), got {rate, weight}")


class UserFeatures:
    """One user's rolling features: ``update`` per event, ``read`` at a time.

    Memory bound: set by the config (the module docstring's "Memory bound" lists
    it): about 3 KB of saved state after 1,000 events, 5 KB with every bound full.
    """

    def __init__(self, config: UserFeatureConfig | None = None) -> None:
        self.config = config = config or UserFeatureConfig()
        self.latest_ts_ms: int = _NEVER_MS
        self.events_seen = 0
        self.too_late_count = 0
        # Per event type, one counter per horizon, in the order of config.horizons.
        self.counts = {
            kind: tuple(DecayedCounter(half_life_s) for _, half_life_s in config.horizons)
            for kind in EVENT_TYPES
        }
        self.completion_sum = DecayedSum(_WEEK_S)
        self.completion_n = DecayedCounter(_WEEK_S)
        self.new_artist_plays = DecayedSum(_WEEK_S)  # a sum: a moved mark subtracts
        self.catalogued_plays = DecayedCounter(_WEEK_S)
        # Artist -> earliest play time; least recently played first (the eviction order).
        self.first_play_ms: dict[str, int] = {}
        self.artists = DecayedTopK(config.affinity_half_life_s, config.top_k)
        self.genres = DecayedTopK(config.affinity_half_life_s, config.top_k)
        self.track_last_ms: dict[str, int] = {}
        self.artist_last_ms: dict[str, int] = {}
        self.track_skipped_ms: dict[str, int] = {}
        self.track_liked_ms: dict[str, int] = {}
        self.hour_of_day = DecayedTopK(config.context_half_life_s, len(_HOURS))
        self.day_of_week = DecayedTopK(config.context_half_life_s, len(_WEEKDAYS))
        self.devices = DecayedTopK(config.context_half_life_s, MAX_CONTEXT_VALUES)
        self.context_types = DecayedTopK(config.context_half_life_s, MAX_CONTEXT_VALUES)
        self.session = SessionTracker(config.session_gap_ms, config.session_max_events)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(events_seen={self.events_seen}, "
            f"latest_ts_ms={self.latest_ts_ms}, too_late_count={self.too_late_count})"
        )

    def too_late(self, ts_ms: int) -> bool:
        """Whether an event at ``ts_ms`` is older than the newest by more than the lateness."""
        return ts_ms < self.latest_ts_ms - self.config.lateness_ms

    def update(self, event: Mapping[str, Any], track: TrackInfo | None) -> bool:
        """Fold in one event, with its catalog entry if known.

        Returns False for a too-late event: no feature changes, ``too_late_count``
        goes up. ``ValueError`` (and no change at all) for an unknown ``type`` or a
        negative ``ms_played``.
        """
        ts, kind = int(event["ts"]), event["type"]
        counters = self.counts.get(kind)
        if counters is None:
            raise ValueError(f"type: expected one of {EVENT_TYPES}, got {kind!r}")
        ms_played = int(event.get("ms_played") or 0)
        if ms_played < 0:
            raise ValueError(f"ms_played: must be >= 0, got {ms_played}")
        if ts < self.latest_ts_ms - self.config.lateness_ms:
            self.too_late_count += 1
            return False
        if ts > self.latest_ts_ms:
            self.latest_ts_ms = ts
        self.events_seen += 1
        for counter in counters:
            counter.update(ts)
        context = event.get("context")
        context = context if isinstance(context, Mapping) else {}
        self._update_context(ts, context)
        self.session.update(ts, kind, context)
        if event.get("track_id"):
            self._update_recent_tracks(ts, kind, str(event["track_id"]), event, track)
        if track is None:
            return True
        if kind != "save" and track.duration_ms:
            self.completion_sum.update(ts, min(1.0, ms_played / track.duration_ms))
            self.completion_n.update(ts)
        weight = ENGAGEMENT_WEIGHTS[kind]
        if weight:
            self.artists.update(ts, track.artist_id, weight)
            for genre in track.genres:
                self.genres.update(ts, genre, weight)
        if kind == "play":
            self._update_artist_plays(ts, track.artist_id)
        return True

    def _update_recent_tracks(
        self, ts: int, kind: str, track_id: str, event: Mapping[str, Any], track: TrackInfo | None
    ) -> None:
        if kind == "play":
            _keep_newest(self.track_last_ms, track_id, ts, self.config.recent_k)
        if kind == SKIP:
            _keep_newest(self.track_skipped_ms, track_id, ts, self.config.feedback_k)
        elif engagement_label(event, track):
            _keep_newest(self.track_liked_ms, track_id, ts, self.config.feedback_k)

    def _update_context(self, ts: int, context: Mapping[str, Any]) -> None:
        # Integer arithmetic, not datetime: exact, and a fraction of the cost per event.
        self.hour_of_day.update(ts, _HOURS[ts // _HOUR_MS % 24])
        self.day_of_week.update(ts, _WEEKDAYS[(ts // _DAY_MS + _EPOCH_WEEKDAY) % 7])
        device, context_type = context.get("device"), context.get("context_type")
        if device:
            self.devices.update(ts, str(device))
        if context_type:
            self.context_types.update(ts, str(context_type))

    def _update_artist_plays(self, ts: int, artist_id: str) -> None:
        _keep_newest(self.artist_last_ms, artist_id, ts, self.config.recent_k)
        self.catalogued_plays.update(ts)
        known = self.first_play_ms
        first = known.pop(artist_id, None)  # re-inserted last: most recently played
        if first is None:
            self.new_artist_plays.update(ts, 1.0)
            first = ts
        elif ts < first:
            # A late play precedes the one thought first: move the "new" mark onto it.
            self.new_artist_plays.update(first, -1.0)
            self.new_artist_plays.update(ts, 1.0)
            first = ts
        known[artist_id] = first
        if len(known) > self.config.max_known_artists:
            del known[next(iter(known))]  # the least recently played: O(1), no scan

    def read(self, ts_ms: int) -> dict[str, Any]:
        """Every feature as of ``ts_ms`` (as of the newest event, if that is later)."""
        at = ts_ms if ts_ms > self.latest_ts_ms else self.latest_ts_ms
        config = self.config
        features: dict[str, Any] = {
            "as_of_ms": at,
            "events_seen": self.events_seen,
            "too_late_count": self.too_late_count,
        }
        for kind, counters in self.counts.items():
            for (name, _), counter in zip(config.horizons, counters, strict=True):
                features[f"{kind}s_{name}"] = counter.read(at)
        rate, weight = config.skip_prior
        for name in config.rate_horizons:
            plays, skips = features[f"plays_{name}"], features[f"skips_{name}"]
            features[f"skip_rate_{name}"] = (skips + rate * weight) / (plays + skips + weight)
        rate, weight = config.save_prior
        features["save_rate_7d"] = (features["saves_7d"] + rate * weight) / (
            features["plays_7d"] + weight
        )
        listens = self.completion_n.read(at)
        features["completion_ratio_7d"] = (
            self.completion_sum.read(at) / listens if listens > 0.0 else None
        )
        plays = self.catalogued_plays.read(at)
        features["new_artist_share_7d"] = (
            self.new_artist_plays.read(at) / plays if plays > 0.0 else None
        )
        features["artist_affinity"] = [[k, w] for k, w in self.artists.top(at, TOP_SHOWN)]
        features["genre_affinity"] = [[k, w] for k, w in self.genres.top(at, TOP_SHOWN)]
        features["artist_diversity"] = self.artists.entropy(at)
        features["genre_diversity"] = self.genres.entropy(at)
        features["last_played_ms"] = {
            "tracks": _newest_first(self.track_last_ms),
            "artists": _newest_first(self.artist_last_ms),
        }
        features["recent_feedback"] = {
            "skipped": self.recent_skipped(),
            "liked": self.recent_liked(),
        }
        hours, days = self.hour_of_day.read(at), self.day_of_week.read(at)
        features["hour_of_day"] = [hours.get(hour, 0.0) for hour in _HOURS]
        features["day_of_week"] = [days.get(day, 0.0) for day in _WEEKDAYS]
        features["device_mix"] = _shares(self.devices.read(at))
        features["context_type_mix"] = _shares(self.context_types.read(at))
        features["session"] = self.session.read(at).to_dict()
        return features

    def read_last_tracks(self) -> list[str]:
        """The ``recent_k`` tracks played most recently, newest first (no time needed:
        the order does not decay)."""
        return list(_newest_first(self.track_last_ms))

    def recent_skipped(self) -> dict[str, int]:
        """The ``feedback_k`` tracks skipped most recently and when, newest first."""
        return _newest_first(self.track_skipped_ms)

    def recent_liked(self) -> dict[str, int]:
        """The ``feedback_k`` tracks engaged with most recently and when, newest first."""
        return _newest_first(self.track_liked_ms)

    def to_state(self) -> dict[str, Any]:
        """A compact JSON-safe state: every decayed value as of ``latest_ts_ms``, so one
        time serves them all, and no half-life or bound (they are the config's).

        * ``at``: ``latest_ts_ms``; every other time is stored as a step back from it.
        * ``seen``: ``[events_seen, too_late_count]``.
        * ``counts``: per horizon name, the plays, skips and saves (a horizon at zero
          is left out); ``week``: completion sum and count, new-artist and catalogued
          plays.
        * ``artists``: every artist id once, the ``known`` artists first (least
          recently played first); ``first``: per known artist, its first play as
          ``1 + at - ts``, or 0 if that lies ``lateness_ms`` or more before ``at`` (no
          play the lateness still admits can come before it, so its time is of no
          more use); leading zeros left out, so it covers the last known artists only.
        * ``affinity``: indices into ``artists`` and their weights; ``genres``,
          ``devices``, ``context_types``: keys and weights; ``hours``, ``days``: the
          hours (weekdays) as ints, and weights.
        * ``last_tracks`` / ``last_artists``: keys (artist indices), newest first,
          and their times as steps back, from ``at`` to the first, then to each next;
          ``skipped_tracks`` / ``liked_tracks`` alike (absent when empty: states
          saved before them read as empty).
        * ``session``: :meth:`SessionTracker.to_state` without the configuration.

        Floats are packed with :func:`features.base.pack_floats` (exact), ints with
        :func:`features.base.pack_unsigned`.

        Saving first rebases every decayed stat to ``latest_ts_ms``
        (:meth:`features.decay.Decayed.rebase`: reads move by float rounding at
        most) into the frame ``from_state`` builds: this user and one restored from
        the state then read and update alike, bit for bit.
        """
        at = self.latest_ts_ms
        for stat in self._decayed():
            stat.rebase(at)
        last_tracks = _newest_first(self.track_last_ms)
        session = self.session.to_state()
        del session["gap_ms"], session["max_events"]
        return versioned_state(
            STATE_VERSION,
            at=at,
            seen=[self.events_seen, self.too_late_count],
            counts=self._packed_counts(),
            week=pack_floats(
                stat.read(at)
                for stat in (
                    self.completion_sum,
                    self.completion_n,
                    self.new_artist_plays,
                    self.catalogued_plays,
                )
            ),
            **self._packed_artists(),
            last_tracks=[list(last_tracks), _pack_steps(at, last_tracks)],
            **self._packed_feedback(),
            genres=_pack_weights(self.genres.read(at)),
            hours=_pack_calendar(self.hour_of_day.read(at)),
            days=_pack_calendar(self.day_of_week.read(at)),
            devices=_pack_weights(self.devices.read(at)),
            context_types=_pack_weights(self.context_types.read(at)),
            session=session,
        )

    def _decayed(self) -> list[Decayed]:
        """Every decayed statistic held."""
        counters = [counter for counters in self.counts.values() for counter in counters]
        return [
            *counters,
            self.completion_sum,
            self.completion_n,
            self.new_artist_plays,
            self.catalogued_plays,
            self.artists,
            self.genres,
            self.hour_of_day,
            self.day_of_week,
            self.devices,
            self.context_types,
        ]

    def _packed_artists(self) -> dict[str, Any]:
        """``artists``, ``known``, ``first``, ``affinity`` and ``last_artists`` (see
        :meth:`to_state`): every artist id written once, the others refer to it."""
        at = self.latest_ts_ms
        horizon = at - self.config.lateness_ms
        # In least recently played order, so the first plays within the lateness
        # (of the artists played last) come at the end: the leading old ones go.
        recent_firsts = list(itertools.dropwhile(horizon.__ge__, self.first_play_ms.values()))
        artists = dict(zip(self.first_play_ms, itertools.count()))
        affinity = self.artists.read(at)
        affinity_refs = _index_of(artists, affinity)  # adds the artists not known
        last_artists = _newest_first(self.artist_last_ms)
        last_artist_refs = _index_of(artists, last_artists)
        return {
            "artists": list(artists),
            "known": len(self.first_play_ms),
            "first": pack_unsigned([1 + at - ts if ts > horizon else 0 for ts in recent_firsts]),
            "affinity": [pack_unsigned(affinity_refs), pack_floats(affinity.values())],
            "last_artists": [pack_unsigned(last_artist_refs), _pack_steps(at, last_artists)],
        }

    def _packed_feedback(self) -> dict[str, list[Any]]:
        """``skipped_tracks`` and ``liked_tracks`` (see :meth:`to_state`), if any."""
        at, packed = self.latest_ts_ms, {}
        for name, latest in (
            ("skipped_tracks", self.track_skipped_ms),
            ("liked_tracks", self.track_liked_ms),
        ):
            if latest:
                newest = _newest_first(latest)
                packed[name] = [list(newest), _pack_steps(at, newest)]
        return packed

    def _packed_counts(self) -> dict[str, str]:
        """Per horizon name, the packed plays, skips and saves; horizons at zero left out."""
        at = self.latest_ts_ms
        by_horizon = zip(*self.counts.values(), strict=True)  # in EVENT_TYPES order
        return {
            name: pack_floats(values)
            for (name, _), counters in zip(self.config.horizons, by_horizon, strict=True)
            if any(values := [counter.read(at) for counter in counters])
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: UserFeatureConfig | None = None) -> Self:
        """Rebuild from ``to_state()`` (or a version 1 state); ``ValueError`` on another
        version or a missing field.

        The config is not stored (it is the deployment's): a horizon it no longer
        names is dropped, a new one starts at 0, a smaller bound keeps the heaviest
        (the newest, the most recently played).
        """
        plain = state if state_version(state) == _PLAIN_VERSION else _unpack(state)
        (
            at, events_seen, too_late_count, counts, completion, new_artist_plays,
            first_play_ms, artists, genres, last_played_ms, hours, days, devices,
            context_types, session,
        ) = read_state(
            plain, cls.__name__, "latest_ts_ms", "events_seen", "too_late_count", "counts",
            "completion", "new_artist_plays", "first_play_ms", "artists", "genres",
            "last_played_ms", "hour_of_day", "day_of_week", "devices", "context_types",
            "session",
        )  # fmt: skip
        user = cls(config)
        config = user.config
        at = int(at)
        user.latest_ts_ms, user.events_seen = at, int(events_seen)
        user.too_late_count = int(too_late_count)
        user.counts = {
            kind: tuple(
                _sum_at(DecayedCounter, half_life_s, at, counts.get(f"{kind}s_{name}", 0.0))
                for name, half_life_s in config.horizons
            )
            for kind in EVENT_TYPES
        }
        user.completion_sum = _sum_at(DecayedSum, _WEEK_S, at, completion[0])
        user.completion_n = _sum_at(DecayedCounter, _WEEK_S, at, completion[1])
        user.new_artist_plays = _sum_at(DecayedSum, _WEEK_S, at, new_artist_plays[0])
        user.catalogued_plays = _sum_at(DecayedCounter, _WEEK_S, at, new_artist_plays[1])
        known = [(str(artist), int(ts)) for artist, ts in first_play_ms.items()]
        user.first_play_ms = dict(known[-config.max_known_artists :])
        user.artists = _top_k_at(config.affinity_half_life_s, config.top_k, at, artists)
        user.genres = _top_k_at(config.affinity_half_life_s, config.top_k, at, genres)
        user.track_last_ms, user.artist_last_ms = (
            _newest(latest, config.recent_k) for latest in last_played_ms
        )
        feedback = plain.get("recent_feedback") or [{}, {}]
        user.track_skipped_ms, user.track_liked_ms = (
            _newest(latest, config.feedback_k) for latest in feedback
        )
        context_half_life_s = config.context_half_life_s
        user.hour_of_day = _top_k_at(context_half_life_s, len(_HOURS), at, hours)
        user.day_of_week = _top_k_at(context_half_life_s, len(_WEEKDAYS), at, days)
        user.devices = _top_k_at(context_half_life_s, MAX_CONTEXT_VALUES, at, devices)
        user.context_types = _top_k_at(context_half_life_s, MAX_CONTEXT_VALUES, at, context_types)
        user.session = SessionTracker.from_state(
            {**session, "gap_ms": config.session_gap_ms, "max_events": config.session_max_events}
        )
        return user


def _unpack(state: Mapping[str, Any]) -> dict[str, Any]:
    """The version 1 layout (plain maps) of a version 2 state (:meth:`UserFeatures.to_state`);
    ``ValueError`` on another version."""
    (
        at, seen, counts, week, artists, known, first, affinity, last_artists, last_tracks,
        genres, hours, days, devices, context_types, session,
    ) = read_state(
        state, UserFeatures.__name__, "at", "seen", "counts", "week", "artists", "known",
        "first", "affinity", "last_artists", "last_tracks", "genres", "hours", "days", "devices",
        "context_types", "session", version=STATE_VERSION,
    )  # fmt: skip
    first_ages = unpack_unsigned(first)
    first_ages = [0] * (known - len(first_ages)) + first_ages
    completion_sum, completion_n, new_artist_plays, catalogued_plays = unpack_floats(week)
    affinity_artists, affinity_weights = affinity
    last_artist_indices, last_artist_steps = last_artists
    return versioned_state(
        _PLAIN_VERSION,
        latest_ts_ms=at,
        events_seen=seen[0],
        too_late_count=seen[1],
        counts={
            f"{plural}_{name}": value
            for name, values in counts.items()
            for plural, value in zip(_COUNTED, unpack_floats(values), strict=True)
            if value
        },
        completion=[completion_sum, completion_n],
        new_artist_plays=[new_artist_plays, catalogued_plays],
        first_play_ms={
            artist: at + 1 - age if age else _LONG_AGO_MS
            for artist, age in zip(artists[:known], first_ages, strict=True)
        },
        artists=dict(
            zip(_at(artists, affinity_artists), unpack_floats(affinity_weights), strict=True)
        ),
        last_played_ms=[
            _unpack_steps(at, *last_tracks),
            _unpack_steps(at, _at(artists, last_artist_indices), last_artist_steps),
        ],
        genres=_unpack_weights(genres),
        hour_of_day=_unpack_calendar(hours),
        day_of_week=_unpack_calendar(days),
        devices=_unpack_weights(devices),
        context_types=_unpack_weights(context_types),
        session=session,
        recent_feedback=[
            _unpack_steps(at, *state[name]) if name in state else {}
            for name in ("skipped_tracks", "liked_tracks")
        ],
    )


def _index_of(table: dict[str, int], keys: Iterable[str]) -> list[int]:
    """The index of each key in ``table``, adding the keys it lacks at the end."""
    return [table.setdefault(key, len(table)) for key in keys]


def _at(table: list[str], packed_indices: str) -> list[str]:
    return [table[index] for index in unpack_unsigned(packed_indices)]


def _pack_weights(weights: Mapping[str, float]) -> list[Any]:
    return [list(weights), pack_floats(weights.values())]


def _unpack_weights(packed: list[Any]) -> dict[str, float]:
    keys, weights = packed
    return dict(zip(keys, unpack_floats(weights), strict=True))


def _pack_calendar(weights: Mapping[str, float]) -> list[str]:
    """An hour-of-day or weekday map, whose keys are small ints, as two packed columns."""
    return [
        pack_unsigned(list(map(_CALENDAR_INDEX.__getitem__, weights))),
        pack_floats(weights.values()),
    ]


def _unpack_calendar(packed: list[str]) -> dict[str, float]:
    keys, weights = packed
    return dict(zip(map(str, unpack_unsigned(keys)), unpack_floats(weights), strict=True))


def _pack_steps(at: int, newest_first: Mapping[str, int]) -> str:
    """The times, newest first, as steps back: from ``at`` to the first, then to each next."""
    times = list(newest_first.values())
    return pack_unsigned(list(map(operator.sub, [at, *times], times)))


def _unpack_steps(at: int, keys: list[str], packed_steps: str) -> dict[str, int]:
    times = itertools.accumulate(unpack_unsigned(packed_steps), operator.sub, initial=at)
    next(times)  # ``at`` itself
    return dict(zip(keys, times, strict=True))


def _keep_newest(latest: dict[str, int], key: str, ts: int, bound: int) -> None:
    """Keep the newest ``ts`` per key, for the ``bound`` keys with the newest times.

    Exact in any arrival order: the kept keys are the ``bound`` largest by
    (newest time, key), and a dropped key can only come back with a time newer
    than every time it had, or be dropped again at once.
    """
    if ts > latest.get(key, _NEVER_MS):
        latest[key] = ts
        if len(latest) > bound:
            # Ties broken by key, not by dict order, which depends on the arrival order.
            del latest[min(latest, key=lambda k: (latest[k], k))]


def _newest_first(latest: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(latest.items(), key=_time_then_key, reverse=True))


def _time_then_key(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


def _newest(latest: Mapping[str, Any], bound: int) -> dict[str, int]:
    """A restored recency map, cut to ``bound`` (the config's may have shrunk)."""
    return {str(key): int(ts) for key, ts in list(_newest_first(latest).items())[:bound]}


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {key: w / total for key, w in weights.items()} if total > 0.0 else {}


def _sum_at(kind: type[_Sum], half_life_s: float, ts_ms: int, value: float) -> _Sum:
    """A decayed sum holding ``value`` as of ``ts_ms``."""
    state = versioned_state(half_life_s=half_life_s, value=float(value))
    if ts_ms != _NEVER_MS:
        state["ts_ms"] = ts_ms
    return kind.from_state(state)


def _top_k_at(half_life_s: float, k: int, ts_ms: int, weights: Mapping[str, float]) -> DecayedTopK:
    """A top-k map holding ``weights`` as of ``ts_ms``, the heaviest ``k`` if more."""
    if len(weights) > k:
        heaviest = set(sorted(weights, key=weights.__getitem__, reverse=True)[:k])
        weights = {key: w for key, w in weights.items() if key in heaviest}
    state = versioned_state(half_life_s=half_life_s, k=k, weights=dict(weights))
    if ts_ms != _NEVER_MS:
        state["ts_ms"] = ts_ms
    return DecayedTopK.from_state(state)
