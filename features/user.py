"""Per-user rolling features: activity, taste, diet, context and session, in event time.

One :class:`UserFeatures` per user folds that user's events in one at a time
(``update``) and answers a JSON-safe dict of named features (``read``). It is
built from the primitives of this package, so every number has their
exactness: decayed counts and affinities are exact whatever the arrival order,
and the session view is exact for events within ``lateness_ms``. An event more
than ``lateness_ms`` older than the user's newest is *too late*: ``update``
refuses it and changes nothing, and the caller dead-letters it.

Definitions (``h`` is a horizon: 1h, 1d, 7d half-lives):

* ``plays_h`` / ``skips_h`` / ``saves_h``: decayed counts of each event type.
* ``skip_rate_h = (skips_h + r * w) / (plays_h + skips_h + w)``: skips among
  listens, smoothed towards the prior rate ``r`` with ``w`` pseudo-listens, so a
  new user reads ``r`` rather than 0 or 1. ``save_rate_7d = (saves_7d + r' * w')
  / (plays_7d + w')``: saves per play.
* ``completion_ratio_7d``: decayed mean of ``min(1, ms_played / duration_ms)`` over
  plays and skips of tracks whose duration the catalog knows (None before any).
* ``artist_affinity`` / ``genre_affinity``: the 10 heaviest of at most ``top_k``
  decayed weights (a play adds 1, a save 2, a skip nothing); ``artist_diversity``
  and ``genre_diversity`` are the entropies (bits) of those maps: the listening diet.
* ``new_artist_share_7d``: decayed share of plays (of catalogued tracks) whose
  artist the user had never played before, in event time.
* ``last_played_ms``: per track and per artist, the newest play, for the
  ``recent_k`` most recent of each.
* ``context``: shares of hour of day and day of week (UTC), device and context
  type over all events, decayed with a 28-day half-life.
* ``session``: the running session (:mod:`features.session`).

Memory bound: 9 counters and 3 sums (a few floats each), 2 affinity maps of
``top_k`` keys, 4 context maps (24 + 7 + a few keys), ``2 * recent_k`` recency
entries, ``max_known_artists`` first-play times and the session's events. About
4-9 KB of JSON per active user with the defaults (measured: ``make bench``).

>>> from features.catalog import TrackInfo
>>> user = UserFeatures()
>>> track = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)
>>> play = {"type": "play", "track_id": "t1", "ts": 0, "ms_played": 100_000}
>>> user.update(play, track)
True
>>> f = user.read(3_600_000)  # an hour later
>>> f["plays_1h"], f["completion_ratio_7d"], round(f["artist_affinity"][0][1], 4)
(0.5, 0.5, 0.9959)
>>> user.update({**play, "ts": 3_600_000}, track), user.too_late(3_000_000)
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from features.affinity import DecayedTopK
from features.base import read_state, versioned_state
from features.catalog import TrackInfo
from features.decay import DecayedCounter, DecayedSum
from features.session import SessionTracker

EVENT_TYPES = ("play", "skip", "save")
#: Affinity added per event type: a save says more than a play; a skip says nothing.
AFFINITY_WEIGHT = {"play": 1.0, "save": 2.0, "skip": 0.0}
TOP_SHOWN = 10
_WEEK_S = 7 * 86_400.0
_PROFILE_HALF_LIFE_S = 28 * 86_400.0
_NEVER_MS = -(2**62)


@dataclass(frozen=True)
class UserFeatureConfig:
    """Horizons, bounds and priors of the user features; the defaults suit the demo."""

    horizons: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("1d", 86_400.0), ("7d", _WEEK_S))
    lateness_ms: int = 300_000
    session_gap_ms: int = 1_800_000
    top_k: int = 50
    recent_k: int = 50
    max_known_artists: int = 200
    skip_prior: tuple[float, float] = (0.3, 5.0)
    save_prior: tuple[float, float] = (0.05, 5.0)
    rate_horizons: tuple[str, ...] = field(default=("1d", "7d"))

    def __post_init__(self) -> None:
        names = [name for name, _ in self.horizons]
        if "7d" not in names or not set(self.rate_horizons) <= set(names):
            raise ValueError("horizons must include 7d and every rate horizon")
        if not 0 <= self.lateness_ms < self.session_gap_ms:
            raise ValueError("lateness_ms must be >= 0 and below session_gap_ms")


class UserFeatures:
    """One user's rolling features. ``update`` per event, ``read`` at a time."""

    def __init__(self, config: UserFeatureConfig | None = None) -> None:
        self.config = config = config or UserFeatureConfig()
        self.latest_ts_ms = _NEVER_MS
        self.events_seen = 0
        self.counts = {
            (kind, name): DecayedCounter(half_life_s)
            for kind in EVENT_TYPES
            for name, half_life_s in config.horizons
        }
        self.completion_sum = DecayedSum(_WEEK_S)
        self.completion_n = DecayedCounter(_WEEK_S)
        self.new_artist_plays = DecayedSum(_WEEK_S)
        self.known_artist_plays = DecayedCounter(_WEEK_S)
        self.first_play_ms: dict[str, int] = {}
        self.artists = DecayedTopK(_WEEK_S, config.top_k)
        self.genres = DecayedTopK(_WEEK_S, config.top_k)
        self.track_last_ms: dict[str, int] = {}
        self.artist_last_ms: dict[str, int] = {}
        self.profile = {
            "hour_of_day": DecayedTopK(_PROFILE_HALF_LIFE_S, 24),
            "day_of_week": DecayedTopK(_PROFILE_HALF_LIFE_S, 7),
            "device": DecayedTopK(_PROFILE_HALF_LIFE_S, 8),
            "context_type": DecayedTopK(_PROFILE_HALF_LIFE_S, 8),
        }
        self.session = SessionTracker(config.session_gap_ms)

    def __repr__(self) -> str:
        return f"UserFeatures(events_seen={self.events_seen}, latest_ts_ms={self.latest_ts_ms})"

    def too_late(self, ts_ms: int) -> bool:
        """Whether an event at ``ts_ms`` is older than the newest by more than the lateness."""
        return ts_ms < self.latest_ts_ms - self.config.lateness_ms

    def update(self, event: Mapping[str, Any], track: TrackInfo | None) -> bool:
        """Fold in one event (with its catalog entry, if known); False, unchanged, if too late."""
        ts, kind = int(event["ts"]), str(event["type"])
        if self.too_late(ts):
            return False
        self.latest_ts_ms = max(self.latest_ts_ms, ts)
        self.events_seen += 1
        for name, _ in self.config.horizons:
            self.counts[(kind, name)].update(ts)
        context = event.get("context") or {}
        self._update_profile(ts, context)
        self.session.update(ts, kind, context)
        if track is None:
            return True
        if kind != "save" and track.duration_ms:
            ratio = min(1.0, int(event.get("ms_played") or 0) / track.duration_ms)
            self.completion_sum.update(ts, ratio)
            self.completion_n.update(ts)
        weight = AFFINITY_WEIGHT[kind]
        if weight:
            self.artists.update(ts, track.artist_id, weight)
            for genre in track.genres:
                self.genres.update(ts, genre, weight)
        if kind == "play":
            self._update_recency(ts, track)
        return True

    def _update_profile(self, ts: int, context: Mapping[str, Any]) -> None:
        moment = datetime.fromtimestamp(ts / 1000, UTC)
        self.profile["hour_of_day"].update(ts, str(moment.hour))
        self.profile["day_of_week"].update(ts, str(moment.weekday()))
        for name in ("device", "context_type"):
            if context.get(name):
                self.profile[name].update(ts, str(context[name]))

    def _update_recency(self, ts: int, track: TrackInfo) -> None:
        _keep_newest(self.track_last_ms, track.track_id, ts, self.config.recent_k)
        _keep_newest(self.artist_last_ms, track.artist_id, ts, self.config.recent_k)
        self.known_artist_plays.update(ts)
        first = self.first_play_ms.get(track.artist_id)
        if first is None:
            self.new_artist_plays.update(ts, 1.0)
            self.first_play_ms[track.artist_id] = ts
            if len(self.first_play_ms) > self.config.max_known_artists:
                # Forget the artist met longest ago: if it comes back it counts as new.
                oldest = min(self.first_play_ms, key=self.first_play_ms.__getitem__)
                del self.first_play_ms[oldest]
        elif ts < first:
            # A late play precedes the one thought first: move the "new" mark onto it.
            self.new_artist_plays.update(first, -1.0)
            self.new_artist_plays.update(ts, 1.0)
            self.first_play_ms[track.artist_id] = ts

    def read(self, ts_ms: int) -> dict[str, Any]:
        """Every feature as of ``ts_ms`` (as of the newest event, if that is later)."""
        at = max(ts_ms, self.latest_ts_ms)
        features: dict[str, Any] = {"as_of_ms": at, "events_seen": self.events_seen}
        for (kind, name), counter in self.counts.items():
            features[f"{kind}s_{name}"] = counter.read(at)
        skip_rate, skip_weight = self.config.skip_prior
        for name in self.config.rate_horizons:
            plays, skips = features[f"plays_{name}"], features[f"skips_{name}"]
            features[f"skip_rate_{name}"] = (skips + skip_rate * skip_weight) / (
                plays + skips + skip_weight
            )
        save_rate, save_weight = self.config.save_prior
        features["save_rate_7d"] = (features["saves_7d"] + save_rate * save_weight) / (
            features["plays_7d"] + save_weight
        )
        n = self.completion_n.read(at)
        features["completion_ratio_7d"] = self.completion_sum.read(at) / n if n > 0 else None
        known = self.known_artist_plays.read(at)
        features["new_artist_share_7d"] = self.new_artist_plays.read(at) / known if known else None
        features["artist_affinity"] = [[k, w] for k, w in self.artists.top(at, TOP_SHOWN)]
        features["genre_affinity"] = [[k, w] for k, w in self.genres.top(at, TOP_SHOWN)]
        features["artist_diversity"] = self.artists.entropy(at)
        features["genre_diversity"] = self.genres.entropy(at)
        features["last_played_ms"] = {
            "tracks": dict(self.track_last_ms),
            "artists": dict(self.artist_last_ms),
        }
        features["context"] = {name: _shares(m.read(at)) for name, m in self.profile.items()}
        features["session"] = self.session.read(ts_ms).to_dict()
        return features

    def to_state(self) -> dict[str, Any]:
        return versioned_state(
            latest_ts_ms=self.latest_ts_ms,
            events_seen=self.events_seen,
            counts={f"{kind}:{name}": c.to_state() for (kind, name), c in self.counts.items()},
            completion=[self.completion_sum.to_state(), self.completion_n.to_state()],
            new_artists=[self.new_artist_plays.to_state(), self.known_artist_plays.to_state()],
            first_play_ms=self.first_play_ms,
            artists=self.artists.to_state(),
            genres=self.genres.to_state(),
            last_ms=[self.track_last_ms, self.artist_last_ms],
            profile={name: m.to_state() for name, m in self.profile.items()},
            session=self.session.to_state(),
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: UserFeatureConfig | None = None) -> Self:
        """Rebuild from ``to_state()``; the config is not stored (it is the deployment's)."""
        fields_ = read_state(
            state, "UserFeatures", "latest_ts_ms", "events_seen", "counts", "completion",
            "new_artists", "first_play_ms", "artists", "genres", "last_ms", "profile", "session",
        )  # fmt: skip
        latest, seen, counts, completion, new_artists, first, artists, genres = fields_[:8]
        last_ms, profile, session = fields_[8:]
        user = cls(config)
        user.latest_ts_ms, user.events_seen = int(latest), int(seen)
        for key, counter_state in counts.items():
            kind, name = key.split(":")
            if (kind, name) in user.counts:  # a horizon dropped from the config is dropped
                user.counts[(kind, name)] = DecayedCounter.from_state(counter_state)
        user.completion_sum = DecayedSum.from_state(completion[0])
        user.completion_n = DecayedCounter.from_state(completion[1])
        user.new_artist_plays = DecayedSum.from_state(new_artists[0])
        user.known_artist_plays = DecayedCounter.from_state(new_artists[1])
        user.first_play_ms = {str(k): int(v) for k, v in first.items()}
        user.artists = DecayedTopK.from_state(artists)
        user.genres = DecayedTopK.from_state(genres)
        user.track_last_ms, user.artist_last_ms = (dict(m) for m in last_ms)
        user.profile = {name: DecayedTopK.from_state(s) for name, s in profile.items()}
        user.session = SessionTracker.from_state(session)
        return user


def _keep_newest(latest: dict[str, int], key: str, ts: int, bound: int) -> None:
    """Keep the newest ``ts`` per key, for the ``bound`` keys with the newest times."""
    if ts > latest.get(key, _NEVER_MS):
        latest[key] = ts
    if len(latest) > bound:
        del latest[min(latest, key=latest.__getitem__)]


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {key: w / total for key, w in weights.items()} if total > 0 else {}
