"""The merged trending board: the vectorised read equals the per-track one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from online_models.trending import PartitionTop, TrendingBoard

#: The event schema's timestamp range (2000-01-01 to 2100-01-01, in ms).
TS = st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)


@given(
    offers=st.lists(
        st.tuples(
            st.sampled_from([f"t{i}" for i in range(30)]),
            st.floats(min_value=1e-6, max_value=1e6),
            TS,
        ),
        min_size=1,
        max_size=60,
    ),
    n=st.integers(min_value=1, max_value=40),
    read_at=TS,
)
def test_the_fast_read_of_the_head_equals_the_per_track_read(
    offers: list[tuple[str, float, int]], n: int, read_at: int
) -> None:
    tops = [PartitionTop(k=10), PartitionTop(k=10)]
    for track_id, value, ts in offers:
        tops[int(track_id[1:]) % 2].offer(track_id, value, ts)
    board = TrendingBoard()
    for partition, top in enumerate(tops):
        board.merge(top.snapshot(partition))
    fast = board.rank(n, read_at)
    by_track = board.rank(n, read_at, exclude={"not-a-track"})  # the per-track path
    assert fast == by_track


def test_a_merge_refreshes_the_fast_read() -> None:
    top = PartitionTop(k=5)
    top.offer("a", 4.0, 0)
    board = TrendingBoard()
    board.merge(top.snapshot(0))
    assert [t for t, _ in board.rank(5, 0)] == ["a"]
    top.offer("b", 8.0, 0)
    board.merge(top.snapshot(0))
    assert [t for t, _ in board.rank(5, 0)] == ["b", "a"]
