"""Synthetic listeners for the closed-loop simulation: what they like, how they tire, whether
they come back.

Reading order: :class:`ListenerParams` (every constant of the model, each with why),
:class:`Context` (the moment of a session), :class:`Catalog` (the simulator's tracks with
the two traits this model adds: a content vector and an energy), :class:`Listener` (one
listener's hidden state and decisions).

The world is :class:`~streams.tools.simulator.Population`'s: its Zipf-popular catalog, and
its users' genre tastes, favourite artists, hour profiles, device and context-type mixes,
time zones and skippiness. This module adds, for listener ``u``, track ``i``, context ``c``
(local hour, device, context type) and time ``t``:

* **fit** ``q = w_g g + w_c (1 + cos(x_u, y_i)) / 2 + w_m exp(-(e_i - e_u(c))^2 / (2 s_m^2))``:
  ``g`` is :meth:`User.affinity <streams.tools.simulator.User.affinity>` (genre share,
  favourite artist bonus), ``x_u`` / ``y_i`` the listener's and the track's content vectors,
  ``e_i`` the track's energy and ``e_u(c)`` the energy the listener's mood asks for now: a
  base by hour, shifted by device and context type, plus the listener's own offset (what
  their favourite genres' energy is);
* **fatigue** ``F = 1 - exp(-(k_t n_t + k_a n_a))``: ``n_t``, ``n_a`` are the listener's
  plays of the track and of its artist, each decayed with its half-life ``h_t``, ``h_a``;
* **novelty** ``N = nu (a_u - 1/2)`` for an artist the listener never heard, else 0:
  ``a_u``, the appetite for discovery, is drawn per listener from Beta(2, 2), so some seek
  new artists and others avoid them;
* **value** ``v = clip(q - phi F + N, 0, 1)``: the true preference;
* a started track is **skipped** with ``P = sigmoid(k_s (z0 * skippiness_u - v))``, else
  played; a play is **saved** (once per track) with ``P = r_s v^4``;
* after a session its **reward** ``r = clip(fit (1 - w_v + w_v variety) - w_r repetition, 0, 1)``:
  ``fit`` the mean of ``v`` over the tracks started (a skip counts 0), ``variety`` the
  distinct artists / tracks among the plays (0 without a play), ``repetition`` the share of
  tracks started that the listener had heard within ``repeat_window_days``. Variety
  multiplies fit: varied listening that does not fit is not worth more (an additive
  variety term paid a list of random tracks, skipped 42% of the time, more than a fitting
  one);
* **satisfaction** ``S`` in [0, 1] moves toward it: ``S += eta (r - S)``; a day without a
  session lets it drift back toward ``s0``: ``S += delta (s0 - S)``;
* the listener **returns** for a session on a day with
  ``P = clip(activity_u (b0 + b1 S), p_min, p_max)``, ``activity_u`` drawn per listener.

Nothing here is Kafka, and no global random state is used: the caller hands every draw
its :class:`random.Random`.

>>> from streams.tools.simulator import Population, PopulationConfig
>>> population = Population(PopulationConfig(seed=1, n_users=3, n_tracks=60, n_artists=12))
>>> catalog = Catalog(population, ListenerParams())
>>> listener = Listener(population.users[0], catalog, ListenerParams(), seed=1)
>>> context = Context(hour=8, device="mobile", context_type="playlist")
>>> 0.0 <= listener.value(5, context, now_ms=0) <= 1.0
True
>>> listener.satisfaction
0.5
"""

from __future__ import annotations

import math
import random
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from streams.tools.simulator import CONTEXT_TYPES, DEVICES, GENRES, Population, User

_DAY_MS: Final = 86_400_000

#: How much energy each genre has, 0..1 (a track's energy is its genres' mean plus noise).
GENRE_ENERGY: Final = {
    "pop": 0.65,
    "rock": 0.7,
    "hiphop": 0.7,
    "electronic": 0.8,
    "rnb": 0.5,
    "latin": 0.7,
    "indie": 0.5,
    "jazz": 0.35,
    "classical": 0.2,
    "folk": 0.35,
    "metal": 0.9,
    "ambient": 0.1,
}
#: The energy a mood asks for by local hour: low at night, highest in the day.
HOUR_ENERGY: Final = (
    (0.25,) * 6 + (0.55,) * 4 + (0.6,) * 8 + (0.5,) * 4 + (0.35,) * 2
)  # hours 0-5, 6-9, 10-17, 18-21, 22-23
DEVICE_ENERGY: Final = {"mobile": 0.0, "desktop": -0.05, "speaker": 0.1, "car": 0.1, "tv": -0.05}
CONTEXT_ENERGY: Final = {
    "playlist": 0.0,
    "album": 0.0,
    "radio": 0.05,
    "editorial": 0.05,
    "search": 0.0,
}


@dataclass(frozen=True)
class ListenerParams:
    """Every constant of the listener model (see the module docstring for the equations).

    The values were set once, from what they mean, before any policy was compared, and
    are not tuned to favour one:

    * fit weights ``w_genre`` 0.5, ``w_content`` 0.25, ``w_mood`` 0.25 (sum 1): the
      genre / artist fit the open-loop simulator already skips by leads; content and mood
      refine it; ``mood_width`` 0.25 of energy: a quiet track at a party still fits a bit;
    * fatigue: ``k_track`` 0.35 per recent play of the track (half-life 3 days: a track
      played twice yesterday costs about a quarter of its value), ``k_artist`` 0.08 per
      play of its artist (half-life 1 day: six plays of one artist today cost about a
      third), ``fatigue_weight`` (phi) 0.5;
    * ``novelty_weight`` (nu) 0.3: a new artist is worth up to +-0.15, by appetite;
    * skips: ``skip_slope`` 8 and ``skip_midpoint`` 0.45: a track of value 0.9 is skipped
      about 3% of the time, one of 0.3 about 77% (the open-loop simulator's range);
    * ``save_rate`` 0.2: a fresh favourite (v ~ 0.9) is saved about 13% of its plays;
    * session reward: ``reward_variety`` 0.4 (a session of one artist keeps 60% of its
      fit's worth), ``reward_repeat`` 0.3, repetition counted over ``repeat_window_days`` 7;
    * satisfaction: starts at ``s0`` 0.5, ``eta`` 0.3 per session (a few sessions move
      it), ``delta`` 0.05 a day without one (a fortnight away halves the distance to 0.5);
    * return: ``return_base`` 0.3 + ``return_slope`` 1.4 S, times the listener's
      ``activity`` (uniform ``activity_min``..``activity_max``): at S = 0.5 a listener
      comes back on ``activity`` of the days, at 0.8 on 1.4 times as many, at 0.2 on 0.58;
    * sessions: 1 + an exponential of mean ``session_mean_tracks`` 8 tracks (at most 30);
      after a skip the listener leaves with ``quit_per_skip`` 0.12 times the skips in a row;
    * ``own_share`` uniform 0.2..0.5 per listener: the share of tracks they pick themselves
      (of which ``own_favourite`` 0.35 by a favourite artist, ``own_saved`` 0.25 a track they
      saved, the rest by genre taste and popularity as in the open-loop simulator).
    """

    content_dims: int = 8
    w_genre: float = 0.5
    w_content: float = 0.25
    w_mood: float = 0.25
    mood_width: float = 0.25
    k_track: float = 0.35
    track_half_life_days: float = 3.0
    k_artist: float = 0.08
    artist_half_life_days: float = 1.0
    fatigue_weight: float = 0.5
    novelty_weight: float = 0.3
    skip_slope: float = 8.0
    skip_midpoint: float = 0.45
    save_rate: float = 0.2
    reward_variety: float = 0.4
    reward_repeat: float = 0.3
    repeat_window_days: float = 7.0
    s0: float = 0.5
    eta: float = 0.3
    delta: float = 0.05
    return_base: float = 0.3
    return_slope: float = 1.4
    return_min: float = 0.02
    return_max: float = 0.98
    activity_min: float = 0.45
    activity_max: float = 0.9
    session_mean_tracks: float = 8.0
    session_max_tracks: int = 30
    quit_per_skip: float = 0.12
    own_share_min: float = 0.2
    own_share_max: float = 0.5
    own_favourite: float = 0.35
    own_saved: float = 0.25


@dataclass(frozen=True)
class Context:
    """The moment of a session: the listener's local hour, their device, the context type."""

    hour: int
    device: str
    context_type: str

    def to_dict(self) -> dict[str, object]:
        """The event's ``context`` field."""
        return {"device": self.device, "context_type": self.context_type, "hour": self.hour}


class Catalog:
    """The population's tracks as arrays, with the traits this model adds.

    ``content`` holds one unit vector per track: its genres' centroid (each genre a seeded
    random direction) plus an artist offset and a little noise; ``energy`` is the mean
    :data:`GENRE_ENERGY` of its genres plus noise, clipped to [0, 1]. Seeded by the
    population's seed, so the same population gets the same traits.
    """

    def __init__(self, population: Population, params: ListenerParams) -> None:
        tracks = population.tracks
        self.population = population
        self.track_ids = [t.track_id for t in tracks]
        self.index = {t: i for i, t in enumerate(self.track_ids)}
        artists = sorted({t.artist_id for t in tracks})
        self.artist_ids = artists
        artist_index = {a: i for i, a in enumerate(artists)}
        self.artist_of = np.array([artist_index[t.artist_id] for t in tracks], dtype=np.int64)
        self.genre_index = {g: k for k, g in enumerate(GENRES)}
        self.genres = np.zeros((len(tracks), len(GENRES)), dtype=bool)
        for i, track in enumerate(tracks):
            for genre in track.genres:
                self.genres[i, self.genre_index[genre]] = True
        self.popularity = np.array([t.popularity for t in tracks])
        self.durations = [t.duration_ms for t in tracks]
        self.by_artist: list[list[int]] = [[] for _ in artists]
        for i, a in enumerate(self.artist_of):
            self.by_artist[int(a)].append(i)
        rng = np.random.default_rng([population.config.seed, len(tracks), 77])
        dims = params.content_dims
        self.genre_centroids = _unit(rng.normal(size=(len(GENRES), dims)))
        self.artist_offsets = 0.5 * rng.normal(size=(len(artists), dims))
        centroid = self.genres @ self.genre_centroids / self.genres.sum(axis=1, keepdims=True)
        noise = 0.3 * rng.normal(size=(len(tracks), dims))
        self.content = _unit(centroid + self.artist_offsets[self.artist_of] + noise)
        base = np.array([GENRE_ENERGY[g] for g in GENRES])
        mean_energy = self.genres @ base / self.genres.sum(axis=1)
        self.energy = np.clip(mean_energy + 0.12 * rng.normal(size=len(tracks)), 0.0, 1.0)
        # draws of the listeners' own choices: popularity within each genre
        self.genre_pools: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = []
        for k in range(len(GENRES)):
            members = np.flatnonzero(self.genres[:, k])
            if len(members) == 0:
                members = np.arange(len(tracks))
            self.genre_pools.append((members, np.cumsum(self.popularity[members])))

    def records(self) -> list[dict[str, object]]:
        """The tracks' catalog records, as the pipeline is given them, each with its
        ``content_vector``: the content vector and the energy. A real catalog's acoustic
        features are observable traits of the same kind (the Spotify sessions dataset's
        ``acoustic_vector_*`` and ``energy``); what a listener makes of them, their own
        vector and mood, stays hidden."""
        records: list[dict[str, object]] = []
        for i, track in enumerate(self.population.tracks):
            vector = [round(float(x), 4) for x in self.content[i]]
            records.append(
                {**track.to_dict(), "content_vector": [*vector, round(float(self.energy[i]), 4)]}
            )
        return records

    def draw_in_genre(self, genre: int, rng: random.Random) -> int:
        """A track of ``genre``, drawn in proportion to its popularity."""
        members, cumulative = self.genre_pools[genre]
        at = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return int(members[min(at, len(members) - 1)])


def _unit(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0.0, 1.0, norms)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class SessionTally:
    """What a session was: tracks started, plays, skips, saves, the value heard."""

    started: int = 0
    plays: int = 0
    skips: int = 0
    saves: int = 0
    value: float = 0.0
    repeats: int = 0
    played_artists: set[int] = field(default_factory=set)

    def reward(self, params: ListenerParams) -> float:
        """``clip(fit (1 - w_v + w_v variety) - w_r repetition, 0, 1)`` (module docstring).

        >>> tally = SessionTally(started=4, plays=3, skips=1, value=2.1, repeats=1,
        ...                      played_artists={1, 2})
        >>> round(tally.reward(ListenerParams()), 4)  # 0.525 * (0.6 + 0.4 * 2 / 3) - 0.3 / 4
        0.38
        """
        if self.started == 0:
            return params.s0
        fit = self.value / self.started
        variety = len(self.played_artists) / self.plays if self.plays else 0.0
        repetition = self.repeats / self.started
        weight = params.reward_variety
        raw = fit * (1.0 - weight + weight * variety) - params.reward_repeat * repetition
        return min(1.0, max(0.0, raw))


@dataclass(frozen=True)
class Outcome:
    """What the listener did with a started track, and its value to them then."""

    kind: str  # "play" or "skip"
    saved: bool
    ms_played: int
    value: float


class Listener:
    """One listener's hidden taste, mood, fatigue, appetite and satisfaction.

    ``seed`` draws their per-listener traits (appetite, activity, own share, content taste
    noise); the decisions draw from the generator each call is given.
    """

    def __init__(self, user: User, catalog: Catalog, params: ListenerParams, seed: int) -> None:
        self.user = user
        self.user_id = user.user_id
        self.catalog = catalog
        self.params = params
        rng = random.Random(f"closed-loop-listener:{seed}:{user.user_id}")
        self.appetite = rng.betavariate(2.0, 2.0)
        self.activity = rng.uniform(params.activity_min, params.activity_max)
        self.own_share = rng.uniform(params.own_share_min, params.own_share_max)
        self.satisfaction = params.s0
        top = max(user.taste.values())
        genre_fit = np.array([user.taste[g] / top for g in GENRES])
        fit = np.max(np.where(catalog.genres, genre_fit, 0.0), axis=1)
        favourites = {catalog.artist_ids.index(a) for a in user.favourite_artists}
        self.favourites = sorted(favourites)
        is_favourite = np.isin(catalog.artist_of, self.favourites)
        self.genre_fit = np.minimum(1.0, fit + 0.3 * is_favourite)  # = User.affinity
        weights = np.array([user.taste[g] for g in GENRES])
        noise = np.array([rng.gauss(0.0, 0.3) for _ in range(params.content_dims)])
        taste = weights @ catalog.genre_centroids + noise
        if self.favourites:
            taste = taste + 0.5 * catalog.artist_offsets[self.favourites].mean(axis=0)
        self.content_taste = _unit(taste)
        content_fit = (1.0 + catalog.content @ self.content_taste) / 2.0
        #: the context-free part of the fit, per track
        self.static_fit = params.w_genre * self.genre_fit + params.w_content * content_fit
        own_energy = sum(user.taste[g] * GENRE_ENERGY[g] for g in GENRES)
        self.energy_offset = own_energy - 0.5 + rng.gauss(0.0, 0.05)
        self.taste_cumulative = np.cumsum(weights)
        # fatigue: decayed play counts as (count, at_ms); what they heard and saved
        self.track_plays: dict[int, tuple[float, int]] = {}
        self.artist_plays: dict[int, tuple[float, int]] = {}
        self.last_heard_ms: dict[int, int] = {}
        self.known_artists: set[int] = set()
        self.saved: list[int] = []
        self._saved_set: set[int] = set()

    def __repr__(self) -> str:
        return (
            f"Listener({self.user_id}, appetite={self.appetite:.2f}, "
            f"activity={self.activity:.2f}, satisfaction={self.satisfaction:.3f})"
        )

    # --- the true preference -----------------------------------------------------------

    def target_energy(self, context: Context) -> float:
        """The energy the listener's mood asks for in ``context``."""
        raw = (
            HOUR_ENERGY[context.hour % 24]
            + DEVICE_ENERGY.get(context.device, 0.0)
            + CONTEXT_ENERGY.get(context.context_type, 0.0)
            + self.energy_offset
        )
        return min(1.0, max(0.0, raw))

    def _decayed(
        self, plays: tuple[float, int] | None, half_life_days: float, now_ms: int
    ) -> float:
        if plays is None:
            return 0.0
        count, at_ms = plays
        return count * 0.5 ** (max(0, now_ms - at_ms) / (half_life_days * _DAY_MS))

    def value(self, track: int, context: Context, now_ms: int) -> float:
        """``v``: the listener's true preference for ``track`` now (module docstring)."""
        p, catalog = self.params, self.catalog
        mood = math.exp(
            -((catalog.energy[track] - self.target_energy(context)) ** 2) / (2.0 * p.mood_width**2)
        )
        fit = float(self.static_fit[track]) + p.w_mood * mood
        artist = int(catalog.artist_of[track])
        n_track = self._decayed(self.track_plays.get(track), p.track_half_life_days, now_ms)
        n_artist = self._decayed(self.artist_plays.get(artist), p.artist_half_life_days, now_ms)
        fatigue = 1.0 - math.exp(-(p.k_track * n_track + p.k_artist * n_artist))
        novelty = 0.0 if artist in self.known_artists else p.novelty_weight * (self.appetite - 0.5)
        return min(1.0, max(0.0, fit - p.fatigue_weight * fatigue + novelty))

    def values(self, context: Context, now_ms: int) -> NDArray[np.float64]:
        """:meth:`value` of every track of the catalog at once."""
        p, catalog = self.params, self.catalog
        mood = np.exp(
            -((catalog.energy - self.target_energy(context)) ** 2) / (2.0 * p.mood_width**2)
        )
        fit = self.static_fit + p.w_mood * mood
        artist_load = np.zeros(len(catalog.artist_ids))
        for artist, plays in self.artist_plays.items():
            artist_load[artist] = p.k_artist * self._decayed(plays, p.artist_half_life_days, now_ms)
        load = artist_load[catalog.artist_of]
        for track, plays in self.track_plays.items():
            load[track] += p.k_track * self._decayed(plays, p.track_half_life_days, now_ms)
        fatigue = 1.0 - np.exp(-load)
        known = np.zeros(len(catalog.artist_ids), dtype=bool)
        known[list(self.known_artists)] = True
        novelty = np.where(known[catalog.artist_of], 0.0, p.novelty_weight * (self.appetite - 0.5))
        return np.clip(fit - p.fatigue_weight * fatigue + novelty, 0.0, 1.0)

    # --- decisions -----------------------------------------------------------------------

    def skip_probability(self, value: float) -> float:
        """``sigmoid(k_s (z0 * skippiness - v))``."""
        p = self.params
        return _sigmoid(p.skip_slope * (p.skip_midpoint * self.user.skippiness - value))

    def listen(
        self, track: int, context: Context, now_ms: int, rng: random.Random, tally: SessionTally
    ) -> Outcome:
        """Start ``track`` at ``now_ms``: play it through (maybe save it) or skip it; the
        listener's fatigue, memory and the session's ``tally`` take it in."""
        p = self.params
        value = self.value(track, context, now_ms)
        duration = self.catalog.durations[track]
        artist = int(self.catalog.artist_of[track])
        tally.started += 1
        heard_at = self.last_heard_ms.get(track)
        if heard_at is not None and now_ms - heard_at <= p.repeat_window_days * _DAY_MS:
            tally.repeats += 1
        saved = False
        if rng.random() < self.skip_probability(value):
            kind, ms_played = "skip", 1_000 + int(rng.random() * 29_000)
            tally.skips += 1
        else:
            kind = "play"
            ms_played = (
                duration if rng.random() < 0.75 else int(duration * (0.5 + rng.random() / 2))
            )
            tally.plays += 1
            tally.value += value
            tally.played_artists.add(artist)
            if track not in self._saved_set and rng.random() < p.save_rate * value**4:
                saved = True
                self.saved.append(track)
                self._saved_set.add(track)
                tally.saves += 1
            self._count(track, artist, now_ms)
        self.last_heard_ms[track] = now_ms
        self.known_artists.add(artist)
        return Outcome(kind, saved, ms_played, value)

    def _count(self, track: int, artist: int, now_ms: int) -> None:
        p = self.params
        n_track = self._decayed(self.track_plays.get(track), p.track_half_life_days, now_ms)
        self.track_plays[track] = (n_track + 1.0, now_ms)
        n_artist = self._decayed(self.artist_plays.get(artist), p.artist_half_life_days, now_ms)
        self.artist_plays[artist] = (n_artist + 1.0, now_ms)

    def own_choice(self, rng: random.Random, avoid: Container[int] = ()) -> int:
        """A track the listener picks themselves: a favourite artist's, one they saved, or
        one of a genre they like by popularity (not one of ``avoid`` when it can help)."""
        p, catalog = self.params, self.catalog
        for _ in range(5):
            draw = rng.random()
            if draw < p.own_favourite and self.favourites:
                tracks = catalog.by_artist[
                    self.favourites[int(rng.random() * len(self.favourites))]
                ]
                track = tracks[int(rng.random() * len(tracks))]
            elif draw < p.own_favourite + p.own_saved and self.saved:
                track = self.saved[int(rng.random() * len(self.saved))]
            else:
                cumulative = self.taste_cumulative
                genre = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right"))
                track = catalog.draw_in_genre(min(genre, len(GENRES) - 1), rng)
            if track not in avoid:
                return track
        return track

    def wants_own_choice(self, rng: random.Random) -> bool:
        return rng.random() < self.own_share

    def quits_after_skip(self, skips_in_a_row: int, rng: random.Random) -> bool:
        return rng.random() < self.params.quit_per_skip * skips_in_a_row

    def session_length(self, rng: random.Random) -> int:
        p = self.params
        return 1 + min(p.session_max_tracks - 1, int(rng.expovariate(1.0 / p.session_mean_tracks)))

    def session_context(self, rng: random.Random) -> tuple[float, Context]:
        """When (local hour, fractional) and in which context a session starts."""
        user = self.user
        hour = _pick(user.hour_weights, rng)
        device = DEVICES[_pick([user.device_weights[d] for d in DEVICES], rng)]
        context_type = CONTEXT_TYPES[_pick([user.context_weights[c] for c in CONTEXT_TYPES], rng)]
        return hour + rng.random(), Context(hour, device, context_type)

    # --- the long term -------------------------------------------------------------------

    def return_probability(self) -> float:
        """``clip(activity (b0 + b1 S), p_min, p_max)``: the chance of a session today."""
        p = self.params
        chance = self.activity * (p.return_base + p.return_slope * self.satisfaction)
        return min(p.return_max, max(p.return_min, chance))

    def end_session(self, tally: SessionTally) -> float:
        """Satisfaction moves toward the session's reward; the reward."""
        reward = tally.reward(self.params)
        self.satisfaction += self.params.eta * (reward - self.satisfaction)
        return reward

    def rest_day(self) -> None:
        """A day without a session: satisfaction drifts back toward ``s0``."""
        self.satisfaction += self.params.delta * (self.params.s0 - self.satisfaction)


def _pick(weights: Sequence[float], rng: random.Random) -> int:
    total = math.fsum(weights)
    target = rng.random() * total
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if target < running:
            return index
    return len(weights) - 1


__all__ = [
    "CONTEXT_ENERGY",
    "DEVICE_ENERGY",
    "GENRE_ENERGY",
    "HOUR_ENERGY",
    "Catalog",
    "Context",
    "Listener",
    "ListenerParams",
    "Outcome",
    "SessionTally",
]
