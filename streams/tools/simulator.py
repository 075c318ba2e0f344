"""A deterministic, seeded synthetic listening population.

Reading order: :class:`PopulationConfig` (the knobs), :class:`Track` and
:class:`User` (the world it builds: a Zipf-popular catalog, and listeners with
a hidden taste and habits), :class:`Population` (the events).

Listeners have a taste (a distribution over :data:`GENRES` and a few favourite
artists), a home hour profile, a device mix and a context-type mix. They
listen in sessions: one device and one context per session (a playlist, an
album, radio, an editorial playlist or search), a run of tracks chosen by
taste x popularity, each track played (``play``, mostly to the end) or skipped
(``skip``, within 30 s; likelier the worse the track fits the taste), and a
``save`` sometimes right after a play (likelier the better it fits).

Two clocks:

- the *story clock* of each listener is realistic: a track lasts as long as it
  is heard, sessions start at hours drawn from the listener's hour profile and
  are at least :data:`SESSION_GAP_MS` apart. ``context.hour`` is the listener's
  local hour on this clock.
- the *event time* ``ts`` is the stream's clock: the population's events are
  merged in story order (a heap of every listener's next event) and stamped
  with a clock that advances by exponential gaps of mean
  ``1 / events_per_second``, so the stream arrives at the configured rate
  whatever the number of users. Event time is therefore story time squeezed:
  gaps in ``ts`` say nothing about ``ms_played`` or inactivity; sessions are
  told by ``session_id``.

  With ``clock="story"`` the event time is the story clock itself: each
  listener's events lie as far apart as their listening does (a heavy listener
  sends some 20 events a day), and ``events_per_second`` is unused. That is the
  stream of one listener as a worker sees it over weeks, for measuring what a
  user's state grows to.

No Kafka here, and no global random state: the same config gives the same
events, byte for byte (on one platform and Python version).

>>> population = Population(PopulationConfig(seed=1, n_users=5, n_tracks=50, n_artists=10))
>>> first = population.take(3)
>>> sorted(first[0])
['context', 'event_id', 'ms_played', 'session_id', 'track_id', 'ts', 'type', 'user_id']
>>> first[0]["ts"] == population.config.start_ts_ms
True
>>> first == Population(PopulationConfig(seed=1, n_users=5, n_tracks=50, n_artists=10)).take(3)
True
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Final

Event = dict[str, Any]

GENRES: Final = (
    "pop",
    "rock",
    "hiphop",
    "electronic",
    "rnb",
    "latin",
    "indie",
    "jazz",
    "classical",
    "folk",
    "metal",
    "ambient",
)
DEVICES: Final = ("mobile", "desktop", "speaker", "car", "tv")
CONTEXT_TYPES: Final = ("playlist", "album", "radio", "editorial", "search")
#: When a user listens, in their local time.
HOUR_PROFILES: Final = ("morning", "daytime", "evening", "night")
#: Event-time clocks: the stream's (story time squeezed to a rate), or the story's.
CLOCKS: Final = ("stream", "story")
#: The least story-time inactivity between two sessions of one user.
SESSION_GAP_MS: Final = 30 * 60 * 1000
#: The newest release year in the catalog.
CATALOG_YEAR: Final = 2026

_MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01, the published schema's lower bound for ts
_MAX_TS_MS: Final = 32_503_680_000_000  # 3000-01-01, its upper bound
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS
_ZIPF_EXPONENT: Final = 0.8
_PEAK_HOURS: Final = {
    "morning": (7.5,),
    "daytime": (10.5, 15.0),
    "evening": (20.0,),
    "night": (23.5,),
}
_DEVICE_BIAS: Final = {
    "morning": {"car": 1.5, "mobile": 1.0},
    "daytime": {"desktop": 2.0},
    "evening": {"speaker": 1.2, "tv": 0.8},
    "night": {"mobile": 1.5},
}
_UTC_OFFSETS_H: Final = (-8, -6, -5, -3, 0, 0, 1, 1, 2, 3, 5, 8, 9, 10)
#: Added to the skip probability in each context: people skip on radio, not in albums.
_CONTEXT_SKIP: Final = {
    "playlist": -0.03,
    "album": -0.05,
    "radio": 0.08,
    "editorial": 0.0,
    "search": -0.08,
}
#: Chance that a track of the session comes from the whole catalog instead (off taste, often).
_CONTEXT_EXPLORE: Final = {
    "playlist": 0.15,
    "album": 0.0,
    "radio": 0.35,
    "editorial": 0.10,
    "search": 0.05,
}
_FAVOURITE_BONUS: Final = 0.3


@dataclass(frozen=True)
class PopulationConfig:
    """The knobs of the synthetic world; every value is checked on construction.

    ``start_ts_ms`` is the event time of the first event (and the start of the
    story clock); ``events_per_second`` is the mean rate in event time, for the
    ``"stream"`` clock; the ``"story"`` clock stamps each event with its story time.

    >>> PopulationConfig(n_users=10).n_users
    10
    >>> PopulationConfig(events_per_second=0)
    Traceback (most recent call last):
    ...
    ValueError: events_per_second must be a finite number > 0, got 0
    """

    seed: int = 7
    n_users: int = 200
    n_tracks: int = 2000
    n_artists: int = 300
    start_ts_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    events_per_second: float = 200.0
    clock: str = "stream"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        for name in ("seed", "n_users", "n_tracks", "n_artists", "start_ts_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        for name in ("n_users", "n_tracks", "n_artists"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_artists > self.n_tracks:
            raise ValueError(
                f"n_artists ({self.n_artists}) must not exceed n_tracks ({self.n_tracks}): "
                "every artist has at least one track"
            )
        if not _MIN_TS_MS <= self.start_ts_ms < _MAX_TS_MS:
            raise ValueError(
                "start_ts_ms must be epoch milliseconds between 2000-01-01 and 3000-01-01, "
                f"got {self.start_ts_ms}"
            )
        rate = self.events_per_second
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise ValueError(f"events_per_second must be a finite number > 0, got {rate!r}")


@dataclass(frozen=True, slots=True)
class Track:
    """A catalog entry; :meth:`to_dict` is its ``track-catalog`` record.

    ``popularity`` is the hidden Zipf weight that draws listens (the top track
    has 1.0); it is not published: the system has to learn it from the stream.

    >>> track = Track("t00042", "a0007", ("jazz",), 200_000, 2019, False, True, 0.25)
    >>> track.to_dict()["genres"], "popularity" in track.to_dict()
    (['jazz'], False)
    """

    track_id: str
    artist_id: str
    genres: tuple[str, ...]
    duration_ms: int
    release_year: int
    explicit: bool
    editorial: bool
    popularity: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready catalog record (no popularity)."""
        return {
            "track_id": self.track_id,
            "artist_id": self.artist_id,
            "genres": list(self.genres),
            "duration_ms": self.duration_ms,
            "release_year": self.release_year,
            "explicit": self.explicit,
            "editorial": self.editorial,
        }


@dataclass(frozen=True)
class User:
    """A listener's hidden taste and habits: what the models try to learn.

    The mappings are read-only by convention. ``taste`` and every ``*_weights``
    sum to 1; ``hour_weights`` is indexed by local hour; ``playlists`` maps
    each of the user's playlist ids to the genre it is mostly made of;
    ``skippiness`` scales how readily the user skips.

    >>> user = Population(PopulationConfig(seed=1, n_users=2, n_tracks=30, n_artists=5)).users[0]
    >>> user.user_id, round(sum(user.taste.values()), 9), len(user.hour_weights)
    ('u0000', 1.0, 24)
    """

    user_id: str
    taste: dict[str, float]
    favourite_artists: tuple[str, ...]
    hour_profile: str
    utc_offset_h: int
    hour_weights: tuple[float, ...]
    device_weights: dict[str, float]
    context_weights: dict[str, float]
    playlists: dict[str, str]
    skippiness: float

    def affinity(self, track: Track) -> float:
        """How well ``track`` fits this user's taste, 0..1.

        The share of the track's best genre relative to the user's favourite
        genre, plus 0.3 (capped at 1) for a favourite artist. Skips get likelier
        as it falls, saves as it rises.

        >>> config = PopulationConfig(seed=1, n_users=1, n_tracks=30, n_artists=5)
        >>> user = Population(config).users[0]
        >>> best = max(user.taste, key=user.taste.__getitem__)
        >>> user.affinity(Track("t1", "a-none", (best,), 200_000, 2020, False, False, 1.0))
        1.0
        """
        top = max(self.taste.values())
        fit = max(self.taste[genre] for genre in track.genres) / top
        if track.artist_id in self.favourite_artists:
            fit += _FAVOURITE_BONUS
        return min(1.0, fit)


class Population:
    """A seeded catalog and user base, and their listening events.

    The catalog depends only on ``seed``, ``n_tracks`` and ``n_artists``; the
    users also on ``n_users``; :meth:`events` starts from the beginning on every
    call.

    >>> population = Population(PopulationConfig(seed=3, n_users=4, n_tracks=40, n_artists=8))
    >>> len(population.tracks), population.tracks[0].track_id, len(population.users)
    (40, 't00000', 4)
    >>> events = population.take(100)
    >>> all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    True
    >>> {e["type"] for e in events} <= {"play", "skip", "save"}
    True
    """

    def __init__(self, config: PopulationConfig | None = None) -> None:
        self.config = config or PopulationConfig()
        cfg = self.config
        catalog_rng = random.Random(f"tunestream-catalog:{cfg.seed}:{cfg.n_tracks}:{cfg.n_artists}")
        self.tracks: list[Track] = _make_catalog(catalog_rng, cfg.n_tracks, cfg.n_artists)
        self._world = _World(self.tracks, cfg.n_artists)
        users_rng = random.Random(f"tunestream-users:{cfg.seed}")
        self.users: list[User] = [_make_user(users_rng, i, self._world) for i in range(cfg.n_users)]
        identity = (cfg.seed, cfg.n_users, cfg.n_tracks, cfg.n_artists, cfg.start_ts_ms)
        identity_text = f"{identity}:{float(cfg.events_per_second)!r}"
        if cfg.clock != "stream":  # ids of the stream clock stay as they were
            identity_text += f":{cfg.clock}"  # equal configs, equal ids
        digest = blake2b(identity_text.encode(), digest_size=4).hexdigest()
        #: Every event id and session id starts with it: distinct for any other config,
        #: so two runs started at different times never share an id.
        self.id_prefix = f"sim{cfg.seed}-{digest}-"

    def events(self) -> Iterator[Event]:
        """The population's events, forever, in non-decreasing ``ts`` order.

        >>> population = Population(PopulationConfig(seed=2, n_users=3, n_tracks=20, n_artists=4))
        >>> stream = population.events()
        >>> next(stream)["event_id"] == population.id_prefix + "0"
        True
        """
        step = _Run(self).step
        while True:
            yield step()

    def take(self, n: int) -> list[Event]:
        """The first ``n`` events of :meth:`events`.

        >>> len(Population(PopulationConfig(n_users=3, n_tracks=20, n_artists=4)).take(7))
        7
        """
        return list(itertools.islice(self.events(), n))


# --- building the world -------------------------------------------------------------------------


def _zipf_weights(rng: random.Random, n: int, exponent: float) -> list[float]:
    """``1 / rank**exponent`` for a random ranking of ``n`` items."""
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    return [rank**-exponent for rank in ranks]


def _make_catalog(rng: random.Random, n_tracks: int, n_artists: int) -> list[Track]:
    artist_genres = [
        tuple(rng.sample(GENRES, 2 if rng.random() < 0.3 else 1)) for _ in range(n_artists)
    ]
    debut_year = [CATALOG_YEAR - min(60, int(rng.expovariate(1 / 12))) for _ in range(n_artists)]
    # Every artist has a track; some artists have many.
    prolific = _zipf_weights(rng, n_artists, 0.7)
    owners = list(range(n_artists)) + rng.choices(
        range(n_artists), weights=prolific, k=n_tracks - n_artists
    )
    rng.shuffle(owners)
    popularity = _zipf_weights(rng, n_tracks, _ZIPF_EXPONENT)
    tracks = []
    for i, artist in enumerate(owners):
        tracks.append(
            Track(
                track_id=f"t{i:05d}",
                artist_id=f"a{artist:04d}",
                genres=artist_genres[artist],
                duration_ms=int(rng.triangular(120_000, 420_000, 200_000)),
                release_year=min(CATALOG_YEAR, debut_year[artist] + int(rng.expovariate(1 / 5))),
                explicit=rng.random() < 0.10,
                editorial=rng.random() < 0.05,
                popularity=popularity[i],
            )
        )
    return tracks


class _Pool:
    """Track indices to draw from in proportion to popularity (one bisect per draw)."""

    __slots__ = ("cumulative", "hi", "indices", "total")

    def __init__(self, indices: list[int], tracks: Sequence[Track]) -> None:
        self.indices = indices
        self.cumulative = list(itertools.accumulate(tracks[i].popularity for i in indices))
        self.total = self.cumulative[-1]
        self.hi = len(indices) - 1

    def draw(self, rng: random.Random) -> int:
        return self.indices[bisect(self.cumulative, rng.random() * self.total, 0, self.hi)]


class _World:
    """The catalog in the shapes the hot loop wants: indices, pools, per-artist lists."""

    def __init__(self, tracks: list[Track], n_artists: int) -> None:
        genre_index = {genre: g for g, genre in enumerate(GENRES)}
        self.tracks = tracks
        self.track_ids = [t.track_id for t in tracks]
        self.durations = [t.duration_ms for t in tracks]
        self.track_genres = [tuple(genre_index[g] for g in t.genres) for t in tracks]
        self.artist_index = {f"a{a:04d}": a for a in range(n_artists)}
        self.track_artist = [self.artist_index[t.artist_id] for t in tracks]
        self.by_artist: list[list[int]] = [[] for _ in range(n_artists)]
        for i, artist in enumerate(self.track_artist):
            self.by_artist[artist].append(i)
        everything = _Pool(list(range(len(tracks))), tracks)
        self.all = everything
        self.genre: list[_Pool] = []
        self.editorial: list[_Pool] = []
        editorial_indices = [i for i, t in enumerate(tracks) if t.editorial]
        editorial_all = _Pool(editorial_indices, tracks) if editorial_indices else everything
        for g in range(len(GENRES)):
            in_genre = [i for i, genres in enumerate(self.track_genres) if g in genres]
            pool = _Pool(in_genre, tracks) if in_genre else everything
            self.genre.append(pool)
            picked = [i for i in in_genre if tracks[i].editorial]
            self.editorial.append(_Pool(picked, tracks) if picked else editorial_all)


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {key: value / total for key, value in weights.items()}


def _make_user(rng: random.Random, i: int, world: _World) -> User:
    user_id = f"u{i:04d}"
    liked = rng.sample(GENRES, rng.choice((1, 2, 2, 3)))
    taste = _normalised(
        {g: rng.uniform(2.0, 3.0) if g in liked else rng.uniform(0.0, 0.2) for g in GENRES}
    )
    favourites: list[str] = []
    for _ in range(rng.randint(2, 5)):
        pool = world.genre[GENRES.index(rng.choice(liked))]
        artist = world.tracks[pool.draw(rng)].artist_id
        if artist not in favourites:
            favourites.append(artist)
    profile = rng.choice(HOUR_PROFILES)
    hours = [0.03 + sum(_bump(h + 0.5, peak) for peak in _PEAK_HOURS[profile]) for h in range(24)]
    bias = _DEVICE_BIAS[profile]
    devices = {d: rng.random() ** 2 + 0.05 + bias.get(d, 0.0) * rng.random() for d in DEVICES}
    contexts = {c: rng.random() ** 2 + 0.05 for c in CONTEXT_TYPES}
    genres, shares = list(taste), list(taste.values())
    playlists = {
        f"pl-{user_id}-{k}": rng.choices(genres, weights=shares)[0]
        for k in range(rng.randint(1, 4))
    }
    return User(
        user_id=user_id,
        taste=taste,
        favourite_artists=tuple(favourites),
        hour_profile=profile,
        utc_offset_h=rng.choice(_UTC_OFFSETS_H),
        hour_weights=tuple(h / sum(hours) for h in hours),
        device_weights=_normalised(devices),
        context_weights=_normalised(contexts),
        playlists=playlists,
        skippiness=rng.uniform(0.7, 1.3),
    )


def _bump(hour: float, peak: float, width_h: float = 1.5) -> float:
    """A bell around ``peak`` on the 24-hour circle."""
    distance = abs(hour - peak) % 24
    distance = min(distance, 24 - distance)
    return math.exp(-(distance**2) / (2 * width_h**2))


# --- running the world --------------------------------------------------------------------------


class _Listener:
    """One user's running state: habits as cumulative weights, the session, the next event."""

    __slots__ = (
        "album",
        "album_at",
        "context_cumulative",
        "context_type",
        "device",
        "device_cumulative",
        "explore",
        "favourite_artists",
        "favourites",
        "fit",
        "genre_fit",
        "hour_cumulative",
        "kind",
        "left",
        "ms_played",
        "offset_ms",
        "playlist_id",
        "playlists",
        "pool",
        "session_id",
        "sessions",
        "skip_base",
        "skippiness",
        "taste_cumulative",
        "track",
        "user_id",
    )

    def __init__(self, user: User, world: _World) -> None:
        top = max(user.taste.values())
        self.user_id = user.user_id
        self.offset_ms = user.utc_offset_h * _HOUR_MS
        self.genre_fit = [user.taste[g] / top for g in GENRES]  # as in User.affinity
        self.favourites = tuple(world.artist_index[a] for a in user.favourite_artists)
        self.favourite_artists = frozenset(self.favourites)
        self.taste_cumulative = list(itertools.accumulate(user.taste[g] for g in GENRES))
        self.hour_cumulative = list(itertools.accumulate(user.hour_weights))
        self.device_cumulative = list(itertools.accumulate(user.device_weights.values()))
        self.context_cumulative = list(itertools.accumulate(user.context_weights.values()))
        self.playlists = [(pid, GENRES.index(g)) for pid, g in user.playlists.items()]
        self.skippiness = user.skippiness
        self.sessions = 0
        self.left = 0  # tracks left in the session
        self.session_id = ""
        self.device = ""
        self.context_type = ""
        self.playlist_id: str | None = None
        self.pool: _Pool | None = None
        self.album: list[int] | None = None
        self.album_at = 0
        self.explore = 0.0
        self.skip_base = 0.0
        # the pending event
        self.track = 0
        self.kind = "play"
        self.ms_played = 0
        self.fit = 0.0


def _pick(cumulative: list[float], rng: random.Random) -> int:
    return bisect(cumulative, rng.random() * cumulative[-1], 0, len(cumulative) - 1)


class _Run:
    """One pass over the population's events: the random stream, both clocks, the heap."""

    def __init__(self, population: Population) -> None:
        cfg = population.config
        self.world = population._world
        self.rng = random.Random(f"tunestream-events:{cfg.seed}")
        self.prefix = population.id_prefix
        self.clock_ms = float(cfg.start_ts_ms)
        self.squeezed = cfg.clock == "stream"
        self.start_ms = cfg.start_ts_ms
        self.mean_gap_ms = 1000.0 / cfg.events_per_second
        self.count = 0
        self.listeners = [_Listener(user, self.world) for user in population.users]
        # Heap of (story time of the listener's next event, listener index).
        self.heap = [
            (self._next_track(listener, cfg.start_ts_ms - SESSION_GAP_MS), i)
            for i, listener in enumerate(self.listeners)
        ]
        heapq.heapify(self.heap)

    def step(self) -> Event:
        """Emit the earliest pending event and prepare that listener's next one."""
        rng = self.rng
        story_ms, i = self.heap[0]
        listener = self.listeners[i]
        context = {
            "device": listener.device,
            "context_type": listener.context_type,
            "hour": int((story_ms + listener.offset_ms) // _HOUR_MS) % 24,
        }
        if listener.playlist_id is not None:
            context["playlist_id"] = listener.playlist_id
        event = {
            "event_id": f"{self.prefix}{self.count}",
            "user_id": listener.user_id,
            "track_id": self.world.track_ids[listener.track],
            "type": listener.kind,
            "ts": int(self.clock_ms if self.squeezed else max(story_ms, self.start_ms)),
            "ms_played": listener.ms_played,
            "session_id": listener.session_id,
            "context": context,
        }
        self.count += 1
        self.clock_ms += rng.expovariate(1.0) * self.mean_gap_ms
        if listener.kind == "play" and rng.random() < 0.01 + 0.09 * listener.fit**2:
            listener.kind = "save"
            listener.ms_played = 0
            next_ms = story_ms + 500.0 + 2500.0 * rng.random()
        else:
            next_ms = self._next_track(listener, story_ms + 2000.0 * rng.random())
        heapq.heapreplace(self.heap, (next_ms, i))
        return event

    def _next_track(self, listener: _Listener, free_ms: float) -> float:
        """Choose the listener's next track and its outcome; return when it is reported."""
        rng = self.rng
        world = self.world
        if listener.left <= 0:
            free_ms = self._start_session(listener, free_ms)
        listener.left -= 1
        if listener.album is not None:
            track = listener.album[listener.album_at % len(listener.album)]
            listener.album_at += 1
        elif rng.random() < listener.explore:
            track = world.all.draw(rng)
        elif listener.pool is not None:
            track = listener.pool.draw(rng)
        elif listener.favourites and rng.random() < 0.5:  # search: an artist they love
            artist = listener.favourites[int(rng.random() * len(listener.favourites))]
            tracks = world.by_artist[artist]
            track = tracks[int(rng.random() * len(tracks))]
        else:  # search: something in a genre they like
            track = world.genre[_pick(listener.taste_cumulative, rng)].draw(rng)
        genres = world.track_genres[track]
        fit = listener.genre_fit[genres[0]]
        if len(genres) > 1:
            fit = max(fit, listener.genre_fit[genres[1]])
        if world.track_artist[track] in listener.favourite_artists:
            fit = min(1.0, fit + _FAVOURITE_BONUS)
        listener.track = track
        listener.fit = fit
        duration_ms = world.durations[track]
        if rng.random() < listener.skip_base + listener.skippiness * 0.55 * (1.0 - fit):
            listener.kind = "skip"
            listener.ms_played = int(rng.random() * 30_001)
        else:
            listener.kind = "play"
            listener.ms_played = (
                duration_ms if rng.random() < 0.7 else int(duration_ms * (0.5 + 0.5 * rng.random()))
            )
        return free_ms + listener.ms_played

    def _start_session(self, listener: _Listener, free_ms: float) -> float:
        """Open a session at an hour drawn from the listener's profile; return its start."""
        rng = self.rng
        world = self.world
        earliest_local = free_ms + SESSION_GAP_MS * (1.0 + rng.random()) + listener.offset_ms
        day_local = earliest_local - earliest_local % _DAY_MS
        start_local = day_local + (_pick(listener.hour_cumulative, rng) + rng.random()) * _HOUR_MS
        if start_local < earliest_local:
            start_local += _DAY_MS
        if rng.random() < 0.15:  # a day off
            start_local += _DAY_MS
        listener.session_id = f"{self.prefix}{listener.user_id}-{listener.sessions}"
        listener.sessions += 1
        listener.device = DEVICES[_pick(listener.device_cumulative, rng)]
        context_type = CONTEXT_TYPES[_pick(listener.context_cumulative, rng)]
        listener.context_type = context_type
        listener.explore = _CONTEXT_EXPLORE[context_type]
        listener.skip_base = listener.skippiness * 0.10 + _CONTEXT_SKIP[context_type]
        listener.playlist_id = None
        listener.pool = None
        listener.album = None
        length = 1 + min(40, int(rng.expovariate(1 / 9)))
        if context_type == "playlist":
            listener.playlist_id, genre = listener.playlists[
                int(rng.random() * len(listener.playlists))
            ]
            listener.pool = world.genre[genre]
        elif context_type == "editorial":
            genre = _pick(listener.taste_cumulative, rng)
            listener.playlist_id = f"ed-{GENRES[genre]}"
            listener.pool = world.editorial[genre]
        elif context_type == "radio":
            listener.pool = world.genre[_pick(listener.taste_cumulative, rng)]
        elif context_type == "album":
            if listener.favourites and rng.random() < 0.6:
                artist = listener.favourites[int(rng.random() * len(listener.favourites))]
            else:
                pool = world.genre[_pick(listener.taste_cumulative, rng)]
                artist = world.track_artist[pool.draw(rng)]
            listener.album = world.by_artist[artist]
            # from a random track on, wrapping round
            listener.album_at = int(rng.random() * len(listener.album))
            length = min(length, len(listener.album))
        listener.left = length
        return start_local - listener.offset_ms
