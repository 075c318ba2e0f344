"""Nearest rows by cosine: unit rows, the top ``n`` of a score, the neighbours of a row.

The taste model's track vectors (:class:`~online_models.served_tracks.ServedTracks`)
and the catalog's content vectors (:mod:`online_models.content`) both find a
track's neighbours the same way: rows scaled to length 1, one product with every
row, the best ``n`` by a selection whose ties never depend on the sort's internals.

>>> unit = unit_rows(np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 3.0], [0.0, 0.0]]))
>>> nearest_by_cosine(unit, 0, 2).tolist()  # row 2 is orthogonal, row 3 is zero
[1]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def unit_rows(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` with each row scaled to length 1 (a zero row stays 0)."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


def top_indices(values: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    """The indices of the ``n`` largest values, largest first; ties go to the lower
    index (also at the cut), so the choice never depends on the sort's internals.

    >>> top_indices(np.array([1.0, 3.0, 1.0, 3.0, 1.0]), 3).tolist()
    [1, 3, 0]
    """
    if n >= len(values):
        return np.argsort(-values, kind="stable")
    cut = np.partition(values, len(values) - n)[len(values) - n]
    chosen = (values >= cut).nonzero()[0]  # in index order
    if len(chosen) > n:  # ties at the cut: the lower indices
        above = (values > cut).nonzero()[0]
        at_cut = (values == cut).nonzero()[0][: n - len(above)]
        chosen = np.sort(np.concatenate((above, at_cut)))
    return chosen[(-values[chosen]).argsort(kind="stable")]  # stable: ties by index


def nearest_by_cosine(unit: NDArray[np.float64], row: int, n: int) -> NDArray[np.intp]:
    """The at most ``n`` rows of ``unit`` (rows of length 1 or 0) nearest to ``row`` by
    positive cosine, best first, ``row`` itself left out: one product with every row."""
    cosines = unit @ unit[row]
    cosines[row] = -np.inf
    count = min(n, len(cosines) - 1)
    if count <= 0:
        return np.empty(0, np.intp)
    near = top_indices(cosines, count)
    return near[cosines[near] > 0.0]


__all__ = ["nearest_by_cosine", "top_indices", "unit_rows"]
