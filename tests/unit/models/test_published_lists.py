"""The published-list scorer: which list judges which event, and the offline definitions.

Timeline of one user (``ts`` in minutes; ``L(eN)`` the list triggered by ``eN``)::

    e0 play t0 ── L(e0) ── e1 skip t1 ── e2 save t2 ── L(e2) ── e3 save t3 ── e4 save t4
                            (not positive)  judged by L(e0)        judged by L(e2)  L(e2) again
"""

from __future__ import annotations

from typing import Any

import pytest

from features import TrackInfo
from online_models.list_evaluation import ListTally, hit_and_ndcg
from online_models.list_quality import ListItem
from online_models.published_lists import PublishedListScore, score_published

CATALOG = {f"t{i}": TrackInfo(f"t{i}", f"a{i // 2}", (f"g{i % 3}",), 200_000) for i in range(10)}
MINUTE = 60_000


def event(i: int, track: str, kind: str = "save", user: str = "u1", **extra: Any) -> dict[str, Any]:
    ms_played = {"save": 0, "play": 200_000, "skip": 5_000}[kind]
    return {
        "event_id": f"{user}-e{i}",
        "user_id": user,
        "track_id": track,
        "type": kind,
        "ts": i * MINUTE,
        "ms_played": ms_played,
        **extra,
    }


def listed(trigger: str, tracks: list[str], generated_at: int = 0, user: str = "u1") -> dict:
    return {
        "user_id": user,
        "trigger_event_id": trigger,
        "generated_at": generated_at,
        "items": [{"track_id": t} for t in tracks],
    }


def test_each_positive_event_is_judged_by_the_last_list_triggered_before_it() -> None:
    events = [
        event(0, "t0", "play"),
        event(1, "t1", "skip"),
        event(2, "t2"),
        event(3, "t3"),
        event(4, "t4"),
    ]
    lists = [listed("u1-e0", ["t2", "t9"]), listed("u1-e2", ["t8", "t4", "t3"])]
    report = score_published(events, lists, CATALOG)
    # e0 had no list yet; e2 by L(e0) (hit at 1), e3 and e4 by L(e2) (ranks 3 and 2)
    assert (report["positives"], report["judged"], report["unlisted"]) == (4, 3, 1)
    figures = report["figures"]
    assert figures["hit_rate_at_10"] == 1.0
    expected = (
        hit_and_ndcg(["t2"], "t2")[1]
        + hit_and_ndcg(["t8", "t4", "t3"], "t3")[1]
        + hit_and_ndcg(["t8", "t4", "t3"], "t4")[1]
    ) / 3
    assert figures["ndcg_at_10"] == pytest.approx(expected)


def test_a_list_triggered_by_the_event_itself_does_not_judge_that_event() -> None:
    report = score_published([event(0, "t0")], [listed("u1-e0", ["t0"])], CATALOG)
    assert report["judged"] == 0 and report["unlisted"] == 1


def test_lists_of_another_user_never_judge_an_event() -> None:
    events = [event(0, "t0", user="u2"), event(1, "t0", user="u1")]
    report = score_published(events, [listed("u2-e0", ["t0"], user="u2")], CATALOG)
    assert report["judged"] == 0 and report["unlisted"] == 2


def test_uncatalogued_tracks_and_skips_are_not_positive_events() -> None:
    events = [event(0, "t0"), event(1, "nope"), event(2, "t1", "skip")]
    report = score_published(events, [listed("u1-e0", ["nope", "t1"])], CATALOG)
    assert report["positives"] == 1 and report["judged"] == 0


def test_lists_whose_trigger_is_not_replayed_are_counted_as_foreign_and_ignored() -> None:
    report = score_published([event(0, "t0")], [listed("other-run", ["t0"])], CATALOG)
    assert report["foreign_lists"] == 1 and report["lists_used"] == 0


def test_the_figures_are_the_offline_tally_of_the_same_items() -> None:
    events = [event(0, "t0", "play"), event(1, "t5"), event(2, "t6")]
    lists = [listed("u1-e0", ["t0", "t5", "t2"])]
    report = score_published(events, lists, CATALOG)
    tally = ListTally()
    # the user played a0 (t0) before: t0 and its artist are known, t5 (a2) and t2 (a1) not
    items = [
        ListItem("t0", "a0", ("g0",), False),
        ListItem("t5", "a2", ("g2",), True),
        ListItem("t2", "a1", ("g2",), True),
    ]
    tally.add(items, "t5")
    tally.add(items, "t6")
    expected = tally.figures(len(CATALOG), len({i.artist_id for i in CATALOG.values()}))
    assert report["figures"] == expected


def test_a_list_generated_after_the_event_it_judges_counts_as_late() -> None:
    events = [event(0, "t0"), event(1, "t1")]
    report = score_published(events, [listed("u1-e0", ["t1"], generated_at=MINUTE + 1)], CATALOG)
    assert report["late_lists"] == 1


def test_a_target_heard_within_the_replay_window_counts_as_recent() -> None:
    events = [event(0, "t0", "play"), event(1, "t0", "play")]
    score = PublishedListScore(CATALOG)
    score.add_list(listed("u1-e0", ["t1"]))
    for e in events:
        score.process(e)
    assert score.repeats == 1
    assert score.report()["figures"]["hit_rate_at_10_not_recent"] is None
