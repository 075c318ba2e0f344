"""Taste: online collaborative filtering, learned from every event, cold start included.

Each user and each track has a vector of ``k`` factors; ``user · track +
track bias`` scores how likely the user is to choose the track and engage with
it (a logistic model: the label of :func:`online_models.example.engagement_label`
for the track heard, and 0 for a few tracks drawn from the catalog that the user
did not choose: negative sampling, as for any implicit feedback). Every event is
one SGD step on that log loss, for the user's vector and for the tracks'. A
track's vector is the sum of three parts, each learned:

    track vector = own part + its artist's vector + the mean of its genres' vectors

so a track nobody has heard yet scores by its artist and genres (cold start of a
track), and every play of one track by an artist teaches all of that artist's
tracks a little. A user with no vector yet starts from the vector of the first
track they play (cold start of a user): usable from their first event.

Who owns what. The user vectors are the user's own: the worker that owns the
user's partition updates them at once (:meth:`TasteModel.learn_user`) and keeps
them in the user's state. The shared parts (tracks, artists, genres) learn from
every worker's events (:meth:`TasteModel.learn_shared`), in the learner, and
reach the workers in snapshots (:meth:`TasteModel.shared_arrays`). One event
calls both with the same user vector, so learning in one place or two gives the
same result.

Scoring is NumPy over all candidates at once (:meth:`TasteModel.score_many`):
one matrix-vector product, never a Python loop.

Memory bound: ``k`` floats per user (in the user's state), and ``k + 1`` floats
per track, ``k`` per artist and per genre (the catalog bounds them all).

>>> model = TasteModel(k=4, seed=1)
>>> model.set_catalog({"t1": ("a1", ("jazz",)), "t2": ("a2", ("metal",))})
>>> user = model.new_user_vector("t1")
>>> for _ in range(300):
...     user = model.learn(user, "t1", 1)
...     user = model.learn(user, "t2", 0)
>>> scores = model.score_many(user, ["t1", "t2"])
>>> bool(scores[0] > scores[1])
True
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from online_models.snapshot import array_json, json_array

Vector = NDArray[np.float64]


def names_array(names: Iterable[str]) -> NDArray[np.uint8]:
    """Keys as an array of the UTF-8 bytes of their JSON list (snapshots hold arrays)."""
    return json_array(list(names))


def array_names(array: NDArray[Any]) -> list[str]:
    """The keys of :func:`names_array`; ``ValueError`` if they are not a list of strings."""
    names = array_json(array)
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError("a key array must hold a JSON list of strings")
    return names


#: ``track_id -> (artist_id, genres)``: what the model needs of the catalog.
CatalogView = Mapping[str, tuple[str, Sequence[str]]]


@dataclass
class _Table:
    """Rows of ``k`` floats by key, grown as keys arrive: one NumPy array for all.

    A new key's row starts from small random values drawn from a generator seeded
    by ``(seed, salt, hash of the key)``: every process that meets the key first
    (the learner, each worker) starts it from the same values.
    """

    k: int
    seed: int
    salt: int
    scale: float
    index: dict[str, int] = field(default_factory=dict)
    rows: Vector = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        self.rows = np.zeros((0, self.k))

    def row(self, key: str) -> int:
        """The row of ``key``, added if new."""
        at = self.index.get(key)
        if at is None:
            at = self.index[key] = len(self.index)
            if at == len(self.rows):
                grown = np.zeros((max(16, 2 * len(self.rows)), self.k))
                grown[:at] = self.rows
                self.rows = grown
            self.rows[at] = self.initial(key)
        return at

    def initial(self, key: str) -> Vector:
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        rng = np.random.default_rng((self.seed, self.salt, int.from_bytes(digest, "little")))
        return rng.normal(0.0, self.scale, self.k)


def user_step_from(
    user: Vector, vectors: Vector, biases: Vector, label: int, lr: float, l2: float
) -> Vector:
    """The user's vector after one step on the track in row 0 of ``vectors`` (``label``)
    and the negatives in the other rows (0 each), all from the same old ``user``: the
    sum of :meth:`TasteModel.learn_user`'s steps, as one matrix product.
    """
    labels = np.zeros(len(vectors))
    labels[0] = label
    logits = np.clip(vectors @ user + biases, -30.0, 30.0)
    gradients = 1.0 / (1.0 + np.exp(-logits)) - labels
    return user - lr * (gradients @ vectors + len(vectors) * l2 * user)


class TasteModel:
    """User and track factors with artist and genre parts; logistic loss, plain SGD.

    ``lr`` is the SGD step of the factors, ``bias_lr`` that of the track biases,
    ``l2`` the weight decay of every factor step.
    """

    def __init__(
        self,
        k: int = 16,
        lr: float = 0.1,
        bias_lr: float = 0.1,
        l2: float = 1e-4,
        seed: int = 7,
    ) -> None:
        self.k, self.lr, self.bias_lr, self.l2 = k, lr, bias_lr, l2
        self.tracks = _Table(k, seed, 1, 0.01)
        self.artists = _Table(k, seed, 2, 0.01)
        self.genres = _Table(k, seed, 3, 0.01)
        self.bias: dict[str, float] = {}
        self.catalog: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.examples_seen = 0

    def set_catalog(self, catalog: CatalogView) -> None:
        """Tell the model each track's artist and genres (new tracks may come later)."""
        for track_id, (artist_id, genres) in catalog.items():
            self.catalog[track_id] = (artist_id, tuple(genres))

    def track_vector(self, track_id: str) -> Vector:
        """The track's full vector: own part + artist + mean of genres."""
        own, artist, genres = self._parts(track_id)
        vector = self.tracks.rows[own] + self.artists.rows[artist]
        if genres:
            vector = vector + self.genres.rows[genres].mean(axis=0)
        return vector

    def new_user_vector(self, first_track_id: str | None = None) -> Vector:
        """A user's starting vector: that of the first track they play, if known."""
        if first_track_id is None:
            return np.zeros(self.k)
        return self.track_vector(first_track_id).copy()

    def score(self, user: Vector, track_id: str) -> float:
        """The logit of engagement of ``user`` with one track."""
        return float(user @ self.track_vector(track_id)) + self.bias.get(track_id, 0.0)

    def score_many(self, user: Vector, track_ids: Sequence[str]) -> Vector:
        """The logits of many tracks at once: the parts gathered by index, one matrix
        product (no Python loop over the factors)."""
        return self.track_matrix(track_ids) @ user + self.biases(track_ids)

    def biases(self, track_ids: Sequence[str]) -> Vector:
        """The biases of ``track_ids`` (0 for a track never learned)."""
        bias = self.bias
        return np.fromiter((bias.get(t, 0.0) for t in track_ids), float, len(track_ids))

    def track_matrix(self, track_ids: Sequence[str]) -> NDArray[np.float64]:
        """The full vectors of ``track_ids``, one row each."""
        parts = [self._parts(track_id) for track_id in track_ids]
        matrix = self.tracks.rows[[own for own, _, _ in parts]]
        matrix = matrix + self.artists.rows[[artist for _, artist, _ in parts]]
        counts = np.array([len(genres) for _, _, genres in parts], dtype=np.int64)
        if counts.any():
            sums = np.zeros_like(matrix)
            owners = np.repeat(np.arange(len(parts)), counts)
            np.add.at(sums, owners, self.genres.rows[[g for _, _, gs in parts for g in gs]])
            has = counts > 0
            matrix[has] += sums[has] / counts[has, None]
        return matrix

    def learn(
        self, user: Vector, track_id: str, label: int, negatives: Sequence[str] = ()
    ) -> Vector:
        """One event in one place: the shared parts learn, the user's new vector is
        returned (both from the same, old user vector). ``negatives`` are tracks the
        user did not choose (:meth:`sample_negatives`), each learned as a 0."""
        new_user = self.user_step(user, track_id, label, negatives)
        self.learn_shared(user, track_id, label)
        for negative in negatives:
            self.learn_shared(user, negative, 0)
        return new_user

    def user_step(
        self, user: Vector, track_id: str, label: int, negatives: Sequence[str] = ()
    ) -> Vector:
        """The user's part of :meth:`learn` alone (a worker's): the new user vector."""
        tracks = [track_id, *negatives]
        vectors = np.stack([self.track_vector(t) for t in tracks])
        return user_step_from(user, vectors, self.biases(tracks), label, self.lr, self.l2)

    def sample_negatives(self, rng: random.Random, track_ids: Sequence[str], n: int) -> list[str]:
        """``n`` tracks drawn uniformly from ``track_ids``: what the user could have
        chosen and did not. Uniform draws make the bias learn popularity (a popular
        track is chosen more often than drawn) and the vectors learn taste."""
        return [track_ids[rng.randrange(len(track_ids))] for _ in range(n)] if track_ids else []

    def learn_user(self, user: Vector, track_id: str, label: int) -> Vector:
        """The user's vector after one step towards (or away from) ``track_id``."""
        gradient = self._gradient(user, track_id, label)
        return user - self.lr * (gradient * self.track_vector(track_id) + self.l2 * user)

    def learn_shared(self, user: Vector, track_id: str, label: int) -> None:
        """The track's own, artist and genre parts and its bias take one step for an
        example made with ``user`` (the user's vector before the event)."""
        gradient = self._gradient(user, track_id, label)
        own, artist, genres = self._parts(track_id)
        step = gradient * user
        lr, l2 = self.lr, self.l2
        for table, row, part in (
            (self.tracks, own, step),
            (self.artists, artist, step),
            *((self.genres, genre, step / len(genres)) for genre in genres),
        ):
            table.rows[row] -= lr * (part + l2 * table.rows[row])
        self.bias[track_id] = self.bias.get(track_id, 0.0) - self.bias_lr * gradient
        self.examples_seen += 1

    def _gradient(self, user: Vector, track_id: str, label: int) -> float:
        """d(log loss)/d(logit) of one example: predicted probability minus label."""
        logit = max(-30.0, min(30.0, self.score(user, track_id)))
        return float(1.0 / (1.0 + np.exp(-logit))) - label

    def shared_arrays(self) -> dict[str, NDArray[Any]]:
        """The shared parts (tracks, artists, genres, biases) as named arrays, for a
        snapshot: each table's rows, and its keys as UTF-8 JSON bytes."""
        arrays: dict[str, NDArray[Any]] = {}
        for name, table in (
            ("tracks", self.tracks),
            ("artists", self.artists),
            ("genres", self.genres),
        ):
            arrays[f"taste_{name}"] = table.rows[: len(table.index)].copy()
            arrays[f"taste_{name}_keys"] = names_array(table.index)
        track_keys = list(self.tracks.index)
        arrays["taste_bias"] = self.biases(track_keys)
        return arrays

    def load_shared(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        """Take the shared parts of :meth:`shared_arrays` (a snapshot's), replacing ours;
        ``ValueError`` if their shapes do not fit this model's ``k``."""
        for name, table in (
            ("tracks", self.tracks),
            ("artists", self.artists),
            ("genres", self.genres),
        ):
            keys = array_names(arrays[f"taste_{name}_keys"])
            rows = np.array(arrays[f"taste_{name}"], dtype=np.float64)  # a writable copy
            if rows.shape != (len(keys), self.k):
                raise ValueError(
                    f"taste_{name}: shape {rows.shape}, expected ({len(keys)}, {self.k})"
                )
            table.index = {key: i for i, key in enumerate(keys)}
            table.rows = rows
        track_keys = list(self.tracks.index)
        self.bias = dict(zip(track_keys, map(float, arrays["taste_bias"]), strict=True))

    def _parts(self, track_id: str) -> tuple[int, int, list[int]]:
        artist_id, genres = self.catalog.get(track_id, (f"?{track_id}", ()))
        own = self.tracks.row(track_id)
        artist = self.artists.row(artist_id)
        return own, artist, [self.genres.row(genre) for genre in genres]


__all__ = ["CatalogView", "TasteModel", "Vector", "array_names", "names_array", "user_step_from"]
