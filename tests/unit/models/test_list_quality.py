"""List quality: per-list diversity and discovery, and the rolling exposure window."""

from __future__ import annotations

from random import Random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from online_models.list_quality import (
    ExposureWindow,
    ListItem,
    ListStats,
    gini,
    list_stats,
)


def item(track: str, artist: str | None = None, *genres: str, discovery: bool = False) -> ListItem:
    return ListItem(track, artist, genres, discovery)


def shown(window: ExposureWindow, now_s: float, *tracks: str, artist: str = "a") -> None:
    window.observe([item(track, artist) for track in tracks], now_s=now_s)


# --- one list ----------------------------------------------------------------------


def test_an_empty_list_has_no_diversity_and_no_discovery() -> None:
    assert list_stats([]) == ListStats(0, 0, 0, 0.0)


def test_distinct_artists_and_genres_count_each_once_and_skip_missing_artists() -> None:
    items = [
        item("t1", "a1", "rock"),
        item("t2", "a1", "rock", "indie"),
        item("t3", None, "indie"),
        item("t4", "a2"),
    ]
    stats = list_stats(items)
    assert (stats.size, stats.distinct_artists, stats.distinct_genres) == (4, 2, 2)


def test_discovery_share_counts_new_artist_items() -> None:
    items = [item(f"t{i}", f"a{i}", discovery=i < 3) for i in range(10)]
    assert list_stats(items).discovery_share == pytest.approx(0.3)
    assert list_stats(items[:3]).discovery_share == 1.0


# --- Gini --------------------------------------------------------------------------


def test_gini_is_zero_for_even_exposure_and_near_one_for_a_single_artist() -> None:
    assert gini([7, 7, 7, 7, 7]) == 0.0
    one_takes_all = [0] * 99 + [1000]
    assert gini(one_takes_all) == pytest.approx(0.99)  # (n - 1) / n: the most n values reach


def test_gini_of_no_values_or_only_zeros_is_zero() -> None:
    assert gini([]) == 0.0
    assert gini(np.zeros(5)) == 0.0


def test_gini_matches_the_mean_absolute_difference_definition() -> None:
    x = np.array([1.0, 2.0, 3.0, 10.0])
    pairs = np.abs(x[:, None] - x[None, :]).sum()
    assert gini(x) == pytest.approx(pairs / (2 * len(x) ** 2 * x.mean()))


@pytest.mark.parametrize("values", [[1.0, -1.0], [1.0, float("nan")], [float("inf")]])
def test_gini_refuses_negative_or_non_finite_values(values: list[float]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        gini(values)


exposures = st.lists(st.floats(min_value=0, max_value=1e9), min_size=1, max_size=60)
counts = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60)


@given(exposures)
def test_gini_stays_in_zero_to_one(values: list[float]) -> None:
    assert 0.0 <= gini(values) < 1.0


@given(counts, st.integers(min_value=1, max_value=1000), st.randoms())
def test_gini_ignores_order_and_scale(values: list[int], scale: int, rng: Random) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    expected = gini(values)
    assert gini(shuffled) == pytest.approx(expected, abs=1e-9)
    assert gini([v * scale for v in values]) == pytest.approx(expected, abs=1e-9)


# --- the exposure window -------------------------------------------------------------
# A 60 s window in 6 slices of 10 s. Slices are dropped whole:
#
#   time (s)  0    10   20   30   40   50   60   70
#   slice     |  0 |  1 |  2 |  3 |  4 |  5 |  6 |
#   t1 at 5   [===========================]         counts while slice 0 is one of the last 6
#   read at 59: slices 0-5, t1 counts       read at 60: slices 1-6, t1 is gone


def test_an_exposure_older_than_the_window_no_longer_counts() -> None:
    window = ExposureWindow(window_s=60.0, buckets=6)
    shown(window, 5.0, "t1")
    shown(window, 35.0, "t2")
    assert window.distinct_tracks(now_s=59.9) == 2
    assert window.distinct_tracks(now_s=60.0) == 1  # t1's slice aged out; t2 stays
    assert window.distinct_tracks(now_s=100.0) == 0


def test_an_exposure_counts_for_at_least_the_window_less_one_slice() -> None:
    # t1 at 9.9 s (end of slice 0) still counts at 59.9 s: 50 s later, window - slice.
    window = ExposureWindow(window_s=60.0, buckets=6)
    shown(window, 9.9, "t1")
    assert window.distinct_tracks(now_s=59.9) == 1
    assert window.distinct_tracks(now_s=60.0) == 0


def test_coverage_counts_each_track_once_and_is_capped_at_one() -> None:
    window = ExposureWindow(window_s=60.0, buckets=6)
    shown(window, 1.0, "t1", "t2")
    shown(window, 21.0, "t2", "t3")  # t2 again, in another slice
    assert window.coverage(catalogue_size=10, now_s=30.0) == pytest.approx(0.3)
    assert window.coverage(catalogue_size=2, now_s=30.0) == 1.0  # tracks left the catalogue


def test_coverage_of_an_empty_catalogue_is_zero() -> None:
    window = ExposureWindow()
    shown(window, 0.0, "t1")
    assert window.coverage(catalogue_size=0, now_s=1.0) == 0.0
    with pytest.raises(ValueError, match="catalogue_size"):
        window.coverage(catalogue_size=-1, now_s=1.0)


def test_artist_gini_sums_the_slices_and_ignores_items_without_an_artist() -> None:
    window = ExposureWindow(window_s=60.0, buckets=6)
    window.observe([item("t1", "a1"), item("t2", "a2"), item("t3", None)], now_s=1.0)
    assert window.artist_gini(now_s=2.0) == 0.0  # a1 and a2 once each
    window.observe([item("t4", "a1"), item("t5", "a1"), item("t6", None)], now_s=25.0)
    assert window.artist_gini(now_s=30.0) == pytest.approx(gini([3, 1]))
    assert window.artist_gini(now_s=65.0) == 0.0  # only a1's later exposures remain


def test_an_empty_window_reads_zero() -> None:
    window = ExposureWindow()
    assert (window.distinct_tracks(0.0), window.coverage(5, 0.0), window.artist_gini(0.0)) == (
        0,
        0.0,
        0.0,
    )


def test_a_clock_that_steps_back_counts_into_the_newest_slice() -> None:
    window = ExposureWindow(window_s=60.0, buckets=6)
    shown(window, 30.0, "t1")
    shown(window, 5.0, "t2")  # earlier than the newest slice: counted in slice 3
    assert window.distinct_tracks(now_s=60.0) == 2  # slice 0 would have aged out by now
    assert window.distinct_tracks(now_s=90.0) == 0


def test_memory_stays_within_max_keys() -> None:
    window = ExposureWindow(window_s=60.0, buckets=6, max_keys=50)
    for second in range(0, 300, 3):  # 100 lists of 20 new tracks, 2,000 tracks in all
        window.observe(
            [item(f"t{second}-{i}", f"a{second}-{i}") for i in range(20)], now_s=float(second)
        )
        assert window.stored_keys <= 2 * window.buckets * window.max_keys
    assert window.dropped > 0
    assert window.distinct_tracks(now_s=297.0) == 6 * 50  # every slice full, no more
    # A key a full slice already holds still counts.
    before = window.artist_gini(now_s=297.0)
    window.observe([item("t297-0", "a297-0")] * 5, now_s=297.0)
    assert window.artist_gini(now_s=297.0) > before


def test_the_repr_shows_the_whole_configuration() -> None:
    assert repr(ExposureWindow(60.0, 6, 10)) == (
        "ExposureWindow(window_s=60.0, buckets=6, max_keys=10)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_s": 0.0}, "window_s"),
        ({"window_s": float("inf")}, "window_s"),
        ({"buckets": 0}, "buckets"),
        ({"buckets": 2.5}, "buckets"),
        ({"max_keys": 0}, "max_keys"),
    ],
)
def test_a_window_refuses_a_configuration_it_cannot_keep(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ExposureWindow(**kwargs)  # type: ignore[arg-type]
