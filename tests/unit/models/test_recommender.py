"""Lists through :class:`ListBuilder`: what is left out, what every item carries, cold
start, editorial boosts, the explanation, the model version and the stage times.

The catalog: 40 tracks ``t0``..``t39`` of 8 artists (``a{i % 8}``) and 4 genres;
tracks ``t3, t13, ...`` are explicit and ``t7, t17, ...`` blocked. Trending is the
whole catalog, ``t0`` most. Models are untrained (every taste score the same, so a
list follows the sources' order under the rules) or trained: the snapshot the
learning tests sign.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import pytest

from features import TrackInfo, UserFeatures
from features.editorial import EditorialSet, EditorialSets
from online_models.exploration import ExplorationPolicy
from online_models.exploration_slot import ARMS
from online_models.recommender import (
    RERANK_VERSION,
    STAGES,
    BuiltList,
    ListBuilder,
    ListConfig,
    ListRequest,
)
from online_models.reranking import DISCOVERY, EXPLORATION, RANKED, REMOVALS, RerankConfig
from online_models.retrieval import SOURCES
from online_models.serving import ServingModels
from online_models.snapshot import decode_snapshot
from tests.unit.test_learning import KEY, trained_snapshot

GENRES = ("jazz", "rock", "soul", "pop")
CATALOG = {
    f"t{i}": TrackInfo(
        f"t{i}",
        f"a{i % 8}",
        (GENRES[i % 4],),
        200_000,
        explicit=i % 10 == 3,
        blocked=i % 10 == 7,
    )
    for i in range(40)
}
TRENDING = [(track, 40.0 - i) for i, track in enumerate(CATALOG)]
HOUR_MS = 3_600_000
DAY0 = 20_000 * 24 * HOUR_MS  # a midnight, UTC
T0 = DAY0 + 7 * HOUR_MS  # 07:00: the events start here
MINUTE = 60_000
CONTEXT = {"device": "mobile", "context_type": "playlist"}


def untrained() -> ServingModels:
    models = ServingModels.untrained(k=8)
    models.set_catalog(CATALOG)
    return models


@cache
def _snapshot() -> bytes:
    return trained_snapshot()


def trained() -> ServingModels:
    models = ServingModels.from_snapshot(decode_snapshot(_snapshot(), KEY))
    models.set_catalog(CATALOG)
    return models


MODELS = {"untrained": untrained, "trained": trained}


def listener(*events: tuple[str, str], start_ms: int = T0) -> UserFeatures:
    """A user who did ``(type, track_id)`` a minute apart from ``start_ms``, each play
    heard through and each skip after 5 s."""
    user = UserFeatures()
    for n, (kind, track_id) in enumerate(events):
        event = {
            "type": kind,
            "track_id": track_id,
            "ts": start_ms + n * MINUTE,
            "ms_played": 5_000 if kind == "skip" else 200_000,
            "context": CONTEXT,
        }
        assert user.update(event, CATALOG.get(track_id))
    return user


def regular() -> UserFeatures:
    """A user with some history: a0's and a1's tracks played, one saved."""
    return listener(("play", "t0"), ("play", "t8"), ("play", "t1"), ("save", "t9"))


def vector_of(models: ServingModels, track_id: str = "t0") -> np.ndarray:
    return models.taste.new_user_vector(track_id)


def build(
    user: UserFeatures,
    models: ServingModels,
    *,
    vector: np.ndarray | None = None,
    ts_ms: int | None = None,
    context: Mapping[str, Any] = CONTEXT,
    draw_key: str = "e1",
    config: ListConfig | None = None,
    trending: Sequence[tuple[str, float]] = TRENDING,
    editorial: Sequence[tuple[str, EditorialSet]] = (),
    policy: ExplorationPolicy | None = None,
    explain: bool = True,
) -> BuiltList:
    at = user.latest_ts_ms + MINUTE if ts_ms is None else ts_ms
    request = ListRequest(user, vector, at, context, draw_key)
    return ListBuilder(config).build(request, models, trending, editorial, policy, explain)


def ids(built: BuiltList) -> list[str]:
    return [item.track_id for item in built.items]


def fate_of(built: BuiltList, track_id: str) -> str | None:
    assert built.explain is not None
    return next((row["fate"] for row in built.explain if row["track_id"] == track_id), None)


def variety() -> Iterator[tuple[str, BuiltList]]:
    """Lists of several users, models, contexts and draw keys, with and without a policy."""
    users = {"one play": listener(("play", "t0")), "regular": regular()}
    for (model_name, make), (user_name, user), policy in itertools.product(
        MODELS.items(), users.items(), (None, ExplorationPolicy(seed=3))
    ):
        models = make()
        vector = None if user_name == "one play" else vector_of(models)
        for key in ("e1", "e2"):
            name = f"{model_name}/{user_name}/{policy is not None}/{key}"
            yield name, build(user, models, vector=vector, draw_key=key, policy=policy)


# --- what is left out ------------------------------------------------------------------


def test_blocked_tracks_never_appear() -> None:
    blocked = {t for t, info in CATALOG.items() if info.blocked}
    for name, built in variety():
        assert not blocked & set(ids(built)), name
        assert fate_of(built, "t7") == "removed: blocked", name  # t7 trends: a candidate


def test_explicit_tracks_are_absent_when_the_deployment_or_the_event_asks() -> None:
    explicit = {t for t, info in CATALOG.items() if info.explicit}
    user, models = listener(("play", "t0")), untrained()
    size = RerankConfig(size=20)
    anyway = build(user, models, config=ListConfig(rerank=size))
    assert explicit & set(ids(anyway))  # without a filter they are listed
    clean_deployment = build(user, models, config=ListConfig(rerank=size, explicit_filter=True))
    clean_event = build(
        user, models, config=ListConfig(rerank=size), context={**CONTEXT, "explicit_filter": True}
    )
    for built in (clean_deployment, clean_event):
        assert not explicit & set(ids(built))
        assert fate_of(built, "t3") == "removed: explicit"
        assert len(built.items) == 20
    not_asked = build(
        user, models, config=ListConfig(rerank=size), context={**CONTEXT, "explicit_filter": "yes"}
    )
    assert ids(not_asked) == ids(anyway)  # only a true flag asks


def test_a_recently_skipped_track_is_left_out_and_returns_after_the_skip_memory() -> None:
    user, models = listener(("play", "t0"), ("skip", "t1")), untrained()
    skipped_at = T0 + MINUTE
    # No diet term: the list follows the sources' order (t0's jazz would outrank t1).
    config = ListConfig(rerank=RerankConfig(skip_memory_s=3600.0), affinity_weight=0.0)
    within = build(user, models, ts_ms=skipped_at + 3600_000, config=config)
    assert "t1" not in ids(within)
    assert fate_of(within, "t1") == "removed: skipped"
    assert within.rule_counts["skipped"] == 1
    after = build(user, models, ts_ms=skipped_at + 3600_001, config=config)
    assert "t1" in ids(after)  # the most trending track after t0, which was played
    assert after.rule_counts["skipped"] == 0


def test_a_recently_played_or_saved_track_is_left_out() -> None:
    user = listener(("play", "t0"), ("save", "t2"), ("play", "t4"))
    for name, make in MODELS.items():
        models = make()
        built = build(user, models, vector=vector_of(models))
        assert not {"t0", "t2", "t4"} & set(ids(built)), name
        for track_id in ("t0", "t2", "t4"):
            assert fate_of(built, track_id) == "removed: recently_played", name
        assert built.rule_counts["recently_played"] == 3, name


def test_a_heard_track_comes_back_into_rotation_after_the_replay_window() -> None:
    user, models = listener(("play", "t0")), untrained()
    config = ListConfig(rerank=RerankConfig(replay_after_s=3600.0))
    within = build(user, models, ts_ms=T0 + 3600_000, config=config)
    assert "t0" not in ids(within)
    assert fate_of(within, "t0") == "removed: recently_played"
    after = build(user, models, ts_ms=T0 + 3600_001, config=config)
    assert "t0" in ids(after)  # the most trending track
    assert after.rule_counts["recently_played"] == 0


def test_rested_tracks_come_back_in_rotation_a_few_a_list_each_saying_when() -> None:
    # Six tracks of a0..a6 heard a minute apart, two hours before the list: untrained
    # models score them as the trending t20..t39, the diet a little above.
    user = listener(*(("play", f"t{i}") for i in (0, 1, 2, 4, 5, 6)))
    at = user.latest_ts_ms + 2 * HOUR_MS
    built = build(user, untrained(), ts_ms=at, trending=TRENDING[20:])
    back = [item for item in built.items if item.source == "rotation"]
    assert len(back) == RerankConfig().max_rotation  # of six, ranked as high as any
    assert built.rule_counts["rotation"] == len(back)
    for item in back:
        assert item.reason == "back in rotation: you heard it 2 hours ago"
    for name, make in MODELS.items():
        models = make()
        for most in (0, 1, 2):
            config = ListConfig(rerank=RerankConfig(max_rotation=most))
            capped = build(user, models, vector=vector_of(models), ts_ms=at, config=config)
            in_rotation = [item for item in capped.items if item.source == "rotation"]
            assert len(in_rotation) <= most, name
            assert capped.rule_counts["rotation"] == len(in_rotation), name


def test_the_running_sessions_artist_and_genre_rank_first_by_the_diet() -> None:
    # A session of a3's pop tracks t11 and t19: a3's t3 (pop) fits both, a7's t15 (pop)
    # the genre, a1's t1 (rock) neither. Untrained models score every track alike.
    user = listener(("play", "t11"), ("play", "t19"))
    built = build(user, untrained())
    assert built.explain is not None
    rows = {row["track_id"]: row for row in built.explain}
    assert rows["t3"]["affinity"] > rows["t15"]["affinity"] > rows["t1"]["affinity"] == 0.0
    assert rows["t3"]["score"] > rows["t15"]["score"] > rows["t1"]["score"]
    assert ids(built)[0] == "t3"
    flat = build(user, untrained(), config=ListConfig(affinity_weight=0.0))
    assert flat.explain is not None
    assert {row["score"] for row in flat.explain} == {0.5}  # no diet: every track alike


# --- what every item carries ------------------------------------------------------------


def test_every_item_has_a_source_and_a_non_empty_reason() -> None:
    for name, built in variety():
        assert built.items, name
        for item in built.items:
            assert item.source in (*SOURCES, *ARMS), name
            assert item.reason.strip(), name
            assert (item.slot == EXPLORATION) == (item.arm is not None), name
            assert item.artist_id == CATALOG[item.track_id].artist_id
            if item.slot == DISCOVERY:
                assert item.discovery and item.reason.startswith("new artist for you"), name
            record = item.to_record()
            assert set(record) == {"track_id", "artist_id", "score", "source", "reason"}


def test_the_same_state_models_and_draw_key_give_the_same_list() -> None:
    for make in MODELS.values():
        models = make()
        user, vector = regular(), vector_of(models)
        lists = [
            build(user, models, vector=vector, policy=ExplorationPolicy(seed=5), draw_key="e42")
            for _ in range(2)
        ]
        first, second = ([(i.track_id, i.source, i.slot, i.arm) for i in b.items] for b in lists)
        assert first == second
        assert lists[0].rule_counts == lists[1].rule_counts
        assert lists[0].explain == lists[1].explain


def test_a_cold_user_gets_trending_editorial_and_exploration() -> None:
    sets = EditorialSets()
    sets.put(EditorialSet("picks", ("t20", "t21", "t22"), boost=0.05))
    user = listener(("play", "t0"))
    for name, make in MODELS.items():
        built = build(
            user,
            make(),
            editorial=sets.picks(T0 + MINUTE, CONTEXT),
            policy=ExplorationPolicy(seed=1),
        )
        explored = built.explored
        assert explored is not None and explored.source in ARMS, name
        others = {item.source for item in built.items if item.slot != EXPLORATION}
        assert others <= {"liked_artist", "editorial", "trending"}, name
        assert len(built.items) == RerankConfig().size, name


def test_an_artist_the_user_saved_is_not_new_to_them() -> None:
    # They saved a1's t1 and never played a1: a1's tracks come as "an artist you play
    # a lot lately", so they are no discovery.
    user = listener(("play", "t0"), ("save", "t1"))
    built = build(user, untrained())
    by_a1 = [item for item in built.items if item.artist_id == "a1"]
    assert by_a1 and {item.source for item in by_a1} >= {"liked_artist"}
    assert [item.discovery for item in by_a1] == [False] * len(by_a1), by_a1


# --- editorial --------------------------------------------------------------------------


def test_an_editorial_set_that_fits_the_hour_boosts_its_tracks() -> None:
    sets = EditorialSets()
    morning = EditorialSet(
        "morning", ("t20", "t21", "t22"), boost=0.3, hours=frozenset({6, 7, 8, 9})
    )
    sets.put(morning)
    user, models = listener(("play", "t0")), untrained()
    at_eight, at_seven_pm = DAY0 + 8 * HOUR_MS, DAY0 + 19 * HOUR_MS
    in_the_morning = build(user, models, ts_ms=at_eight, editorial=sets.picks(at_eight, CONTEXT))
    in_the_evening = build(
        user, models, ts_ms=at_seven_pm, editorial=sets.picks(at_seven_pm, CONTEXT)
    )
    assert in_the_morning.explain is not None and in_the_evening.explain is not None
    morning_rows = {row["track_id"]: row for row in in_the_morning.explain}
    evening_rows = {row["track_id"]: row for row in in_the_evening.explain}
    for track_id in morning.track_ids:
        assert morning_rows[track_id]["source"] == "editorial"
        assert morning_rows[track_id]["boost"] == 0.3
        # In the evening they are only trending candidates, unboosted.
        assert evening_rows[track_id]["source"] == "trending"
        assert evening_rows[track_id]["boost"] == 0.0
    assert ids(in_the_morning)[:3] == list(morning.track_ids)  # the boost puts them first
    assert ids(in_the_evening)[:3] != list(morning.track_ids)
    item = in_the_morning.items[0]
    assert item.source == "editorial" and "morning" in item.reason


# --- explanation, model version, stage times ----------------------------------------------


def test_explain_lists_every_candidate_with_its_fate() -> None:
    for name, built in variety():
        explain = built.explain
        assert explain is not None, name
        assert len(explain) == built.candidates, name
        assert len({row["track_id"] for row in explain}) == len(explain), name
        picked = sorted(
            (row for row in explain if row["rank"] is not None), key=lambda r: r["rank"]
        )
        assert [row["track_id"] for row in picked] == ids(built), name
        assert [row["rank"] for row in picked] == list(range(1, len(built.items) + 1)), name
        assert [row["fate"] for row in picked] == [item.slot for item in built.items], name
        for row in explain:
            if row["rank"] is None:
                fate = row["fate"]
                assert fate == "not chosen" or fate.removeprefix("removed: ") in REMOVALS, name
                assert row["mmr"] is None, name
            else:
                assert row["fate"] in (RANKED, DISCOVERY, EXPLORATION), name
            assert set(row) >= {"source", "retrieval", "taste", "engagement", "boost", "score"}
            assert 0.0 <= row["affinity"] <= 1.0, name
        removed = sum(row["fate"].startswith("removed: ") for row in explain)
        assert removed == sum(built.rule_counts[reason] for reason in REMOVALS), name


def test_without_explain_the_list_carries_no_explanation() -> None:
    assert build(regular(), untrained(), explain=False).explain is None


def test_model_version_names_every_model_that_shaped_the_list() -> None:
    for name, built in variety():
        parts = built.model_version.split("+")
        assert parts[-1] == RERANK_VERSION, name
        is_trained = name.startswith("trained")
        assert ("taste-logistic-v1" in parts) == is_trained, name
        assert ("engagement-logistic-v1" in parts) == is_trained, name
        has_trending = any(item.source == "trending" for item in built.items)
        assert ("popularity-v1" in parts) == has_trending, name
        explored = built.explored is not None
        assert any(p.startswith("exploration-") for p in parts) == explored, name
    no_trending = build(listener(("play", "t0")), untrained(), trending=[])
    assert no_trending.model_version == RERANK_VERSION


def test_stage_times_are_measured_for_each_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([10.0, 10.5, 11.25, 13.0])
    # the builder's clock (the time module's, patched for this test only)
    monkeypatch.setattr("online_models.recommender.time.perf_counter", lambda: next(ticks))
    built = build(regular(), untrained())
    assert built.stage_seconds == {"retrieval": 0.5, "ranking": 0.75, "reranking": 1.75}
    assert tuple(built.stage_seconds) == STAGES


def test_stage_times_of_a_real_list_are_small_and_not_negative() -> None:
    built = build(regular(), trained(), vector=vector_of(trained()))
    assert set(built.stage_seconds) == set(STAGES)
    assert all(0.0 <= seconds < 5.0 for seconds in built.stage_seconds.values())
