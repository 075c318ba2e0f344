"""Content vectors: standardised per dimension, one unit row per served track."""

from __future__ import annotations

import numpy as np

from features import TrackInfo
from online_models.content import ContentIndex


def track(track_id: str, vector: tuple[float, ...] | None) -> TrackInfo:
    return TrackInfo(track_id, "a", (), 200_000, content_vector=vector)


def test_each_dimension_counts_on_its_own_scale() -> None:
    # tempo in bpm beside a share: on raw numbers every cosine would be about 1
    vectors = {"calm": (100.0, 0.9), "calm-fast": (104.0, 0.85), "loud": (100.5, 0.1)}
    catalog = {t: track(t, v) for t, v in {**vectors, "fast": (140.0, 0.5)}.items()}
    index = ContentIndex.of(list(catalog), catalog)
    raw = np.array([catalog[t].content_vector for t in catalog], float)
    scaled = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(index.unit, scaled / np.linalg.norm(scaled, axis=1, keepdims=True))
    assert index.nearest(0, 3).tolist() == [1]  # "loud" and "fast" point elsewhere


def test_tracks_without_a_vector_or_of_another_length_are_never_near() -> None:
    catalog = {
        "a": track("a", (1.0, 2.0)),
        "b": track("b", (2.0, 1.0)),
        "c": track("c", (1.5, 2.5)),
        "short": track("short", (1.0,)),
        "none": track("none", None),
    }
    index = ContentIndex.of([*catalog, "uncatalogued"], catalog)
    assert index.width == 2
    assert index.has_content.tolist() == [True, True, True, False, False, False]
    assert set(index.nearest(0, 10).tolist()) <= {1, 2}
    assert index.nearest(3, 5).tolist() == []


def test_a_constant_dimension_counts_for_nothing() -> None:
    catalog = {t: track(t, (5.0, x)) for t, x in (("a", 1.0), ("b", 2.0), ("c", 3.0))}
    index = ContentIndex.of(list(catalog), catalog)
    np.testing.assert_array_equal(index.unit[:, 0], 0.0)


def test_tracks_met_later_are_standardised_as_the_first_ones_were() -> None:
    catalog = {t: track(t, (float(i), 10.0 * i)) for i, t in enumerate("abcde")}
    whole = ContentIndex.of(list(catalog), catalog)
    grown = ContentIndex.of(list(catalog)[:4], catalog).extended(["e"], catalog)
    first = ContentIndex.of(list(catalog)[:4], catalog)
    np.testing.assert_allclose(grown.unit[:4], first.unit)
    assert grown.has_content.all() and len(grown.unit) == len(whole.unit)
    expected = (np.array([4.0, 40.0]) - first.mean) / first.spread
    np.testing.assert_allclose(grown.unit[4], expected / np.linalg.norm(expected))


def test_a_catalog_without_content_vectors_has_width_zero() -> None:
    catalog = {"a": track("a", None)}
    index = ContentIndex.of(["a", "b"], catalog)
    assert index.width == 0 and not index.has_content.any()
    assert index.nearest(0, 3).tolist() == []
