"""One training example per listening event: what we knew before it, and what the user did.

The engagement model answers "will this user play this track through, or skip
it, in this context?". Each event gives one example, built from the state
*before* the event is folded in (the model must never see the answer in its
inputs):

* **user**: skip rates (1 d, 7 d), save rate (7 d), completion ratio (7 d),
  artist and genre diversity, recent activity (decayed plays of the shortest
  horizon, an hour, log scale), and the running session (position, skips in a
  row);
* **track**: catalog facts (explicit, years since release, duration) and, where
  the track's statistics are at hand, its trend, skip and save rates and
  popularity (log scale);
* **context**: hour of day and weekday as points on a circle (23:00 is next to
  00:00), device and context type as one-hot flags (``device=mobile``);
* **crosses**: the user's affinity for this track's artist and best-fitting
  genre (as a share of their total), whether the artist is new to the user, how
  long since the user last played this track and this artist (log seconds;
  absent if not among their recent plays), and the taste model's similarity.

Missing values are left out rather than filled with a made-up number: River's
linear models read an absent feature as 0, and every feature is centred so that
0 means "typical" or "unknown" (rates minus their priors, for example).

**Label** (:func:`features.event_types.engagement_label`, re-exported here): a
skip is 0; a save is 1; a play is 1 when half of the track (or 30 s of one of
unknown duration) was heard.

>>> from features import TrackInfo, UserFeatures
>>> user = UserFeatures()
>>> track = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)
>>> event = {"type": "play", "track_id": "t1", "ts": 3_600_000, "ms_played": 150_000,
...          "context": {"device": "mobile", "context_type": "playlist"}}
>>> x = build_example(user, event, track)
>>> x["device=mobile"], x["artist_new"], engagement_label(event, track)
(1.0, 1.0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from features import TrackInfo, UserFeatures
from features.event_types import (
    COMPLETION_THRESHOLD,
    MIN_PLAY_MS,
    PLAY,
    SAVE,
    SKIP,
    engagement_label,
)
from features.track import SAVE_PRIOR as TRACK_SAVE_PRIOR
from features.track import SKIP_PRIOR as TRACK_SKIP_PRIOR

#: What a track reads with no history (:mod:`features.track`'s priors) and a user's
#: typical completion: subtracted so that 0 is typical.
SKIP_PRIOR = TRACK_SKIP_PRIOR[0]
SAVE_PRIOR = TRACK_SAVE_PRIOR[0]
COMPLETION_PRIOR = 0.5
#: Release year taken as "now" for the age of a track: fixed, so examples do not
#: depend on the wall clock.
_AGE_BASE_YEAR = 2026
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday
_TAU = 2.0 * math.pi
#: Scales that bring unbounded inputs near [-1, 1], so one SGD step size suits all:
#: the entropy of a diet of 32 artists is 5 bits; log seconds reach 10 within 6 hours.
_ENTROPY_SCALE_BITS = 5.0
_LOG_SECONDS_SCALE = 10.0

Example = dict[str, float]


def build_example(
    user: UserFeatures,
    event: Mapping[str, Any],
    track: TrackInfo | None,
    track_stats: Mapping[str, float] | None = None,
    taste_similarity: float | None = None,
) -> Example:
    """The example of ``event`` from the user's state before it (see the module doc)."""
    ts = int(event["ts"])
    context = event.get("context")
    x = user_side(user, ts)
    x.update(context_side(ts, context if isinstance(context, Mapping) else {}))
    if track is not None:
        x.update(track_side(track))
        x.update(crosses(user, track, ts))
    if track_stats is not None:
        x.update(track_stats_side(track_stats))
    if taste_similarity is not None:
        x["taste_similarity"] = taste_similarity
    recency = log_seconds_since(user.track_last_ms.get(str(event.get("track_id"))), ts)
    if recency is not None:
        x["track_last_played_log_s"] = recency
    return x


def user_side(user: UserFeatures, ts: int) -> Example:
    """The user's habits as of ``ts``: cheap reads of the rolling features, with the
    features' own smoothing (:mod:`features.user`), centred on their priors."""
    config = user.config
    horizon = {name: i for i, (name, _) in enumerate(config.horizons)}
    plays, skips = user.counts[PLAY], user.counts[SKIP]
    skip_rate, skip_weight = config.skip_prior
    x: Example = {}
    for name in config.rate_horizons:
        played, skipped = plays[horizon[name]].read(ts), skips[horizon[name]].read(ts)
        smoothed = (skipped + skip_rate * skip_weight) / (played + skipped + skip_weight)
        x[f"u_skip_rate_{name}"] = smoothed - skip_rate
    save_rate, save_weight = config.save_prior
    saves, played = user.counts[SAVE][horizon["7d"]].read(ts), plays[horizon["7d"]].read(ts)
    x["u_save_rate_7d"] = (saves + save_rate * save_weight) / (played + save_weight) - save_rate
    x["u_plays_log"] = math.log1p(plays[0].read(ts))  # the shortest horizon: recent activity
    x["u_artist_diversity"] = user.artists.entropy(ts) / _ENTROPY_SCALE_BITS
    x["u_genre_diversity"] = user.genres.entropy(ts) / _ENTROPY_SCALE_BITS
    listens = user.completion_n.read(ts)
    if listens > 0.0:
        x["u_completion_7d"] = user.completion_sum.read(ts) / listens - COMPLETION_PRIOR
    session = user.session.read(ts)
    if session.active:
        x["s_position_log"] = math.log1p(session.position)
        x["s_skips_in_a_row"] = float(min(session.skips_in_a_row, 10))
    return x


def context_side(ts: int, context: Mapping[str, Any]) -> Example:
    """Hour and weekday on a circle; device and context type as flags."""
    hour = (ts % _DAY_MS) / _HOUR_MS
    weekday = (ts // _DAY_MS + _EPOCH_WEEKDAY) % 7
    x = {
        "hour_sin": math.sin(_TAU * hour / 24.0),
        "hour_cos": math.cos(_TAU * hour / 24.0),
        "weekday_sin": math.sin(_TAU * weekday / 7.0),
        "weekday_cos": math.cos(_TAU * weekday / 7.0),
    }
    for name in ("device", "context_type"):
        value = context.get(name)
        if value:
            x[f"{name}={value}"] = 1.0
    return x


def track_side(track: TrackInfo) -> Example:
    """Catalog facts of the track."""
    x = {"explicit": 1.0 if track.explicit else 0.0}
    if track.release_year is not None:
        x["track_age_years_log"] = math.log1p(max(0, _AGE_BASE_YEAR - track.release_year))
    if track.duration_ms:
        x["track_minutes"] = track.duration_ms / 60_000.0 - 3.5
    return x


#: What :func:`track_stats_side` reads of a track's statistics
#: (:meth:`features.TrackFeatures.read`): what a snapshot serves of each track.
TRACK_STATS = ("trending", "skip_rate_1d", "save_rate_7d", "popularity")
#: Every feature of a track alone (:func:`track_side`, :func:`track_stats_side`): the
#: part of an example that is the same for every user, served as arrays by track.
TRACK_FEATURES = (
    "explicit",
    "track_age_years_log",
    "track_minutes",
    "t_trending_log",
    "t_skip_rate_1d",
    "t_save_rate_7d",
    "t_popularity_log",
)


def track_stats_side(stats: Mapping[str, float]) -> Example:
    """The track's rolling statistics (:data:`TRACK_STATS` of
    :meth:`features.TrackFeatures.read`)."""
    return {
        "t_trending_log": math.log(stats["trending"]),
        "t_skip_rate_1d": stats["skip_rate_1d"] - SKIP_PRIOR,
        "t_save_rate_7d": stats["save_rate_7d"] - SAVE_PRIOR,
        "t_popularity_log": math.log1p(stats["popularity"]),
    }


def crosses(user: UserFeatures, track: TrackInfo, ts: int) -> Example:
    """How this track meets this user's taste."""
    artists_total = user.artists.total(ts)
    genres_total = user.genres.total(ts)
    x = {
        "artist_new": 0.0 if track.artist_id in user.first_play_ms else 1.0,
        "artist_affinity_share": share_of(user.artists.weight(ts, track.artist_id), artists_total),
        "genre_affinity_share": max(
            (share_of(user.genres.weight(ts, genre), genres_total) for genre in track.genres),
            default=0.0,
        ),
    }
    recency = log_seconds_since(user.artist_last_ms.get(track.artist_id), ts)
    if recency is not None:
        x["artist_last_played_log_s"] = recency
    return x


def share_of(part: float, whole: float, prior: float = 0.0) -> float:
    """``part / whole``, or ``prior`` when there is no whole yet."""
    return part / whole if whole > 0.0 else prior


def log_seconds_since(then_ms: int | None, ts: int) -> float | None:
    """Log seconds since ``then_ms``, scaled to about 0..1.5 (a day is 1.1)."""
    if then_ms is None:
        return None
    return math.log1p(max(0, ts - then_ms) / 1000.0) / _LOG_SECONDS_SCALE


__all__ = [
    "COMPLETION_THRESHOLD",
    "MIN_PLAY_MS",
    "TRACK_FEATURES",
    "TRACK_STATS",
    "Example",
    "build_example",
    "context_side",
    "crosses",
    "engagement_label",
    "log_seconds_since",
    "share_of",
    "track_side",
    "track_stats_side",
    "user_side",
]
