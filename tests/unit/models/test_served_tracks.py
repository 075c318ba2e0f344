"""The served tracks' arrays: rows by position, grown and refreshed as the catalog changes."""

from __future__ import annotations

import numpy as np

from features import TrackInfo
from online_models.learner import Learner
from online_models.served_tracks import ServedTracks
from online_models.serving import ServingModels
from online_models.taste import TasteModel


def taste_of(catalog: dict[str, TrackInfo]) -> TasteModel:
    taste = TasteModel(k=4, seed=3)
    taste.set_catalog({t: (i.artist_id, i.genres) for t, i in catalog.items()})
    return taste


def test_each_row_holds_the_taste_models_own_vector_and_bias() -> None:
    catalog = {f"t{i}": TrackInfo(f"t{i}", f"a{i % 4}", (f"g{i % 3}",)) for i in range(40)}
    taste = taste_of(catalog)
    taste.bias["t7"] = 0.25
    served = ServedTracks(taste, catalog, {})
    rows = served.rows(["t7", "t30", "t0"])
    expected = np.stack([taste.track_vector(t) for t in ("t7", "t30", "t0")])
    assert np.array_equal(served.vectors[rows], expected)
    assert served.bias[rows].tolist() == [0.25, 0.0, 0.0]


def test_tracks_met_later_get_rows_past_the_first_capacity() -> None:
    served = ServedTracks(TasteModel(k=4), {}, {})
    rows = served.rows([f"new{i}" for i in range(100)])
    assert rows.tolist() == list(range(100))
    assert served.vectors.shape == (100, 4)
    assert (served.artist == -1).all()  # uncatalogued: no artist


def test_a_track_with_more_genres_widens_the_genre_matrix() -> None:
    catalog = {"t1": TrackInfo("t1", "a1", ("jazz",))}
    served = ServedTracks(taste_of(catalog), catalog, {})
    catalog["t2"] = TrackInfo("t2", "a2", ("rock", "pop", "jazz"))
    served.row("t2")
    genres = served.genres[served.rows(["t1", "t2"])]
    index = served.genre_index
    assert genres.tolist() == [
        [index["jazz"], -1, -1],
        [index["rock"], index["pop"], index["jazz"]],
    ]


def test_a_catalog_change_reaches_the_served_rows() -> None:
    models = ServingModels.from_snapshot(Learner(taste_factors=4).snapshot(created_at_ms=1))
    models.set_catalog({"t1": TrackInfo("t1", "a1", ("jazz",), explicit=False)})
    before = models.served.column("explicit")[models.served.row("t1")]
    models.set_catalog({"t1": TrackInfo("t1", "a9", ("jazz",), explicit=True)})
    served = models.served
    row = served.row("t1")
    assert (before, served.column("explicit")[row]) == (0.0, 1.0)
    assert served.artist[row] == served.artist_index["a9"]
    vector, _ = models.track_vector("t1")
    assert np.array_equal(vector, models.taste.track_vector("t1"))  # the new artist's part


def test_a_whole_new_catalog_rebuilds_the_rows() -> None:
    models = ServingModels.untrained(k=4)
    models.set_catalog({"t1": TrackInfo("t1", "a1")})
    first = models.served
    models.set_catalog({f"t{i}": TrackInfo(f"t{i}", "a2") for i in range(200)})
    assert models.served is not first
    assert len(models.served.position) == 200
