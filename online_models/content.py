"""What a track sounds like: the catalog's content vectors as one matrix of unit rows.

Some catalogs carry a ``content_vector`` per track (:class:`features.TrackInfo`:
acoustic features such as the Spotify sessions dataset's ``acoustic_vector_0..7``).
Unlike the taste vectors they need no listener to learn them, so they find
neighbours for a track nobody has played yet, and for a user the models do not
know yet.

The dimensions come on different scales (a tempo in beats per minute beside a
share between 0 and 1), so each is standardised over the catalog's tracks
(mean 0, standard deviation 1; a constant dimension is left at 0), and each row
scaled to length 1: the cosine of two tracks is then one dot product. The
catalog's most common vector length is its width; a track without a vector, or
with a vector of another length, has a zero row and never counts as near.

Memory bound: ``width`` floats per served track (the catalog bounds the tracks),
built once per :class:`~online_models.served_tracks.ServedTracks`.

>>> from features import TrackInfo
>>> catalog = {t: TrackInfo(t, "a", (), 200_000, content_vector=v) for t, v in
...            (("slow", (60.0, 0.9)), ("slow2", (64.0, 0.8)), ("fast", (170.0, 0.1)))}
>>> index = ContentIndex.of(["slow", "slow2", "fast", "no-vector"], catalog)
>>> index.width, index.has_content.tolist()
(2, [True, True, True, False])
>>> index.nearest(0, 2).tolist()  # "slow2" alone is on the same side of the mean
[1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from features import TrackInfo
from online_models.cosine import nearest_by_cosine, unit_rows


@dataclass(frozen=True)
class ContentIndex:
    """The served tracks' standardised content vectors, one unit row per served row."""

    #: one row per served track: standardised and of length 1, or all zero
    unit: NDArray[np.float64]
    #: which rows have a content vector
    has_content: NDArray[np.bool_]
    #: each dimension's mean and standard deviation over the tracks that have one
    mean: NDArray[np.float64]
    spread: NDArray[np.float64]

    @classmethod
    def of(cls, track_ids: Sequence[str], catalog: Mapping[str, TrackInfo]) -> ContentIndex:
        """The index of ``track_ids`` (the served rows, in order) from ``catalog``."""
        vectors = [_vector_of(catalog.get(t)) for t in track_ids]
        lengths = Counter(len(v) for v in vectors if v)
        width = lengths.most_common(1)[0][0] if lengths else 0
        raw, has = _raw(vectors, width)
        known = raw[has]
        mean = known.mean(axis=0) if len(known) else np.zeros(width)
        spread = known.std(axis=0) if len(known) else np.zeros(width)
        return cls(_standardised_unit_rows(raw, has, mean, spread), has, mean, spread)

    def extended(self, track_ids: Sequence[str], catalog: Mapping[str, TrackInfo]) -> ContentIndex:
        """This index with rows for ``track_ids`` (tracks served after it was made)
        added, standardised as the others were: no pass over every track."""
        raw, has = _raw([_vector_of(catalog.get(t)) for t in track_ids], self.width)
        unit = _standardised_unit_rows(raw, has, self.mean, self.spread)
        return ContentIndex(
            np.concatenate((self.unit, unit)),
            np.concatenate((self.has_content, has)),
            self.mean,
            self.spread,
        )

    @property
    def width(self) -> int:
        """Numbers per content vector (0: the catalog has none)."""
        return int(self.unit.shape[1])

    def nearest(self, row: int, n: int) -> NDArray[np.intp]:
        """Up to ``n`` rows nearest to ``row`` by positive cosine, best first, ``row``
        itself left out (none if ``row`` has no content vector)."""
        if not self.has_content[row]:
            return np.empty(0, np.intp)
        return nearest_by_cosine(self.unit, row, n)


def _vector_of(info: TrackInfo | None) -> tuple[float, ...]:
    return () if info is None or info.content_vector is None else info.content_vector


def _raw(
    vectors: Sequence[tuple[float, ...]], width: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The vectors of length ``width`` as rows (others 0), and which rows they are."""
    has = np.fromiter((len(v) == width > 0 for v in vectors), bool, len(vectors))
    raw = np.zeros((len(vectors), width))
    for row in np.flatnonzero(has).tolist():
        raw[row] = vectors[row]
    return raw, has


def _standardised_unit_rows(
    raw: NDArray[np.float64],
    has: NDArray[np.bool_],
    mean: NDArray[np.float64],
    spread: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The rows ``has`` marks standardised (a constant dimension 0) and scaled to
    length 1; the other rows 0."""
    scaled = np.divide(raw - mean, spread, out=np.zeros_like(raw), where=spread > 0)
    scaled[~has] = 0.0
    return unit_rows(scaled)


__all__ = ["ContentIndex"]
