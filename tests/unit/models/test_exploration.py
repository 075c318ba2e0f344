"""Exploration: rewards by the documented weights, a bounded offer memory, a seeded bandit
that learns the source users come back for, and credit that counts each piece once."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import TrackInfo
from online_models.exploration import (
    CREDIT_STATUSES,
    DAY_MS,
    HOUR_MS,
    ExplorationPolicy,
    OfferMemory,
    OfferOutcome,
    RewardConfig,
    credit,
    credit_return,
    credit_session_event,
    offer,
    reward_of,
)

CONFIG = RewardConfig()
ARMS = ["taste", "trending", "new_artist", "editorial"]

OUTCOMES = st.builds(
    OfferOutcome,
    engaged=st.booleans(),
    saved=st.booleans(),
    skipped=st.booleans(),
    returned_within_day=st.booleans(),
    session_events_after=st.integers(0, 50),
)
WEIGHTS = st.integers(0, 100)


@st.composite
def configs(draw: st.DrawFn) -> RewardConfig:
    """Any valid config: gains that sum to 1, any skip penalty in [0, 1]."""
    raw = [draw(WEIGHTS) for _ in range(4)]
    if not any(raw):
        raw[0] = 1
    engaged, saved, returned, session = (w / sum(raw) for w in raw)
    return RewardConfig(
        engaged=engaged,
        saved=saved,
        returned=returned,
        session=session,
        skip_penalty=draw(WEIGHTS) / 100,
        session_events_target=draw(st.integers(1, 20)),
    )


def event(kind: str, rid: str = "r1", track_id: str = "t1", ms_played: int = 0) -> dict[str, Any]:
    return {
        "event_id": f"{rid}-{track_id}-{kind}",
        "user_id": "u1",
        "track_id": track_id,
        "type": kind,
        "ts": 1_000,
        "ms_played": ms_played,
        "recommendation_id": rid,
    }


def json_round_trip(state: dict[str, Any]) -> Any:
    return json.loads(json.dumps(state, allow_nan=False))


# --- the reward ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (OfferOutcome(), 0.0),
        (OfferOutcome(engaged=True), 0.2),
        (OfferOutcome(saved=True), 0.3),
        (OfferOutcome(returned_within_day=True), 0.35),
        (OfferOutcome(session_events_after=5), 0.075),  # half the target of 10
        (OfferOutcome(session_events_after=40), 0.15),  # saturates at the target
        (OfferOutcome(engaged=True, skipped=True), 0.0),  # a skip takes back a play
        (OfferOutcome(skipped=True), 0.0),  # clipped, not negative
        (OfferOutcome(skipped=True, returned_within_day=True), 0.15),
        (OfferOutcome(True, True, False, True, 10), 1.0),
    ],
)
def test_rewards_follow_the_documented_default_weights(
    outcome: OfferOutcome, expected: float
) -> None:
    assert reward_of(outcome, CONFIG) == pytest.approx(expected, abs=1e-12)


def test_a_save_and_a_return_count_for_more_than_a_click() -> None:
    click = reward_of(OfferOutcome(engaged=True), CONFIG)
    assert reward_of(OfferOutcome(saved=True), CONFIG) > click
    assert reward_of(OfferOutcome(returned_within_day=True), CONFIG) > click


@settings(max_examples=200, deadline=None)
@given(OUTCOMES, configs())
def test_a_reward_stays_in_0_1_under_any_valid_config(
    outcome: OfferOutcome, config: RewardConfig
) -> None:
    assert 0.0 <= reward_of(outcome, config) <= 1.0


@settings(max_examples=200, deadline=None)
@given(OUTCOMES)
def test_a_return_within_a_day_raises_the_reward(outcome: OfferOutcome) -> None:
    gone = OfferOutcome(
        outcome.engaged, outcome.saved, outcome.skipped, False, outcome.session_events_after
    )
    back = OfferOutcome(
        outcome.engaged, outcome.saved, outcome.skipped, True, outcome.session_events_after
    )
    assert reward_of(back, CONFIG) > reward_of(gone, CONFIG)


@pytest.mark.parametrize(
    "fields",
    [
        {"engaged": 0.5},  # gains sum to 1.3
        {"engaged": 0.0, "saved": 0.3},  # gains sum to 0.8
        {"skip_penalty": -0.1},
        {"saved": float("nan")},
        {"session_events_target": 0},
        {"return_within_ms": 0},
    ],
)
def test_an_invalid_reward_config_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RewardConfig"):
        RewardConfig(**fields)


# --- the memory of offers --------------------------------------------------------------


def test_the_memory_keeps_at_most_its_capacity_and_forgets_the_oldest_first() -> None:
    memory = OfferMemory(capacity=3)
    forgotten = [memory.remember(f"r{i}", f"u{i % 2}", i, {"t1": "taste"}) for i in range(5)]
    assert forgotten == [0, 0, 0, 1, 1]
    assert len(memory) == 3
    assert [o.recommendation_id for o in memory] == ["r2", "r3", "r4"]
    assert memory.arm_of("r0", "t1") is None
    assert memory.arm_of("r1", "t1") is None
    assert memory.arm_of("r2", "t1") == "taste"
    # The per-user index forgets with the lists.
    assert [o.recommendation_id for o in memory.lists_of("u0")] == ["r2", "r4"]
    assert [o.recommendation_id for o in memory.lists_of("u1")] == ["r3"]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.lists(st.integers(0, 9), max_size=40))
def test_the_memory_holds_exactly_the_newest_distinct_lists_up_to_its_capacity(
    capacity: int, ids: list[int]
) -> None:
    memory = OfferMemory(capacity=capacity, max_age_ms=10**9)
    kept: list[str] = []  # the reference: a remembered id keeps its place, a forgotten one
    for at_ms, i in enumerate(ids):  # comes back as new
        memory.remember(f"r{i}", f"u{i % 3}", at_ms, {"t": "taste"})
        if f"r{i}" not in kept:
            kept = [*kept, f"r{i}"][-capacity:]
    assert [o.recommendation_id for o in memory] == kept
    for user in ("u0", "u1", "u2"):
        assert all(o.user_id == user for o in memory.lists_of(user))
    assert sum(len(memory.lists_of(u)) for u in ("u0", "u1", "u2")) == len(memory)


def test_the_memory_forgets_by_age() -> None:
    # max age 10 h; hours:
    #   0 r0   2 r1                    11 r2 -> r0 (11 h old) leaves
    #   forget_before(5 h)             -> r1 leaves, r2 stays
    memory = OfferMemory(max_age_ms=10 * HOUR_MS)
    memory.remember("r0", "u1", 0, {"t1": "taste"})
    memory.remember("r1", "u1", 2 * HOUR_MS, {"t1": "taste"})
    assert memory.remember("r2", "u1", 11 * HOUR_MS, {"t1": "trending"}) == 1
    assert memory.arm_of("r0", "t1") is None
    assert memory.arm_of("r1", "t1") == "taste"
    assert memory.forget_before(5 * HOUR_MS) == 1
    assert memory.arm_of("r1", "t1") is None
    assert memory.arm_of("r2", "t1") == "trending"
    assert memory.get("r1") is None


def test_arm_of_is_none_for_a_track_the_list_did_not_offer() -> None:
    memory = OfferMemory()
    memory.remember("r1", "u1", 0, {"t1": "new_artist"})
    assert memory.arm_of("r1", "t1") == "new_artist"
    assert memory.arm_of("r1", "t2") is None
    assert memory.arm_of("r9", "t1") is None


def test_the_first_remembering_of_a_list_wins_and_an_empty_list_is_not_kept() -> None:
    memory = OfferMemory()
    memory.remember("r1", "u1", 0, {"t1": "taste"})
    memory.remember("r1", "u1", 5, {"t1": "trending"})
    memory.remember("r2", "u1", 6, {})
    assert memory.arm_of("r1", "t1") == "taste"
    assert "r2" not in memory
    assert len(memory) == 1


def _busy_memory_and_policy() -> tuple[OfferMemory, ExplorationPolicy]:
    memory, policy = OfferMemory(capacity=50), ExplorationPolicy(seed=3, horizon=100)
    rng = random.Random(5)
    for i in range(60):
        arm = policy.choose(ARMS)
        offer(memory, policy, f"r{i}", f"u{i % 4}", i * 60_000, {f"t{i}": arm, f"x{i}": "taste"})
        if rng.random() < 0.5:
            kind = rng.choice(["play", "skip", "save"])
            credit(memory, policy, event(kind, f"r{i}", f"t{i}", ms_played=40_000), CONFIG)
        credit_session_event(memory, policy, f"u{i % 4}", i * 60_000 + 1, CONFIG)
    memory.remember("plain", "u9", 3_600_000, {"t": "editorial"})  # a slot never counted
    credit_return(memory, policy, "u1", 2 * HOUR_MS, CONFIG)
    return memory, policy


def test_the_memory_state_round_trips_through_json_exactly() -> None:
    memory, policy = _busy_memory_and_policy()
    state = memory.to_state()
    restored = OfferMemory.from_state(json_round_trip(state))
    assert restored.to_state() == state
    assert repr(restored) == repr(memory)
    # ... and it behaves the same afterwards.
    policy_copy = ExplorationPolicy.from_state(json_round_trip(policy.to_state()))
    credit_return(memory, policy, "u2", 3 * HOUR_MS, CONFIG)
    credit_return(restored, policy_copy, "u2", 3 * HOUR_MS, CONFIG)
    assert restored.to_state() == memory.to_state()
    assert policy_copy.to_state() == policy.to_state()


def test_the_policy_state_round_trips_through_json_and_goes_on_choosing_the_same() -> None:
    _, policy = _busy_memory_and_policy()
    state = policy.to_state()
    restored = ExplorationPolicy.from_state(json_round_trip(state))
    assert restored.to_state() == state
    assert restored.stats() == policy.stats()
    assert [restored.choose(ARMS) for _ in range(50)] == [policy.choose(ARMS) for _ in range(50)]


@pytest.mark.parametrize("cls", [OfferMemory, ExplorationPolicy])
@pytest.mark.parametrize("version", [2, 0, "1", True, None])
def test_a_state_of_an_unknown_version_is_refused(
    cls: type[OfferMemory] | type[ExplorationPolicy], version: Any
) -> None:
    state = cls().to_state()
    state["v"] = version
    with pytest.raises(ValueError, match=rf"{cls.__name__} state has version .*reads version 1"):
        cls.from_state(state)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (OfferMemory, "lists", [["r1", "u1", 0, False, 0, True, [["t1", "taste"]]]]),
        (OfferMemory, "lists", [["r1", "u1", 0, False, 0, True, [["t1", 7, 0, 0, 0, None]]]]),
        (OfferMemory, "lists", [["r1", "u1", 0, False, 0, True, [["t", "a", 0, 0, 0, 1.5]]]]),
        (OfferMemory, "lists", [["r1", "u1", "noon", False, 0, True, []]]),
        (OfferMemory, "capacity", 0),
        (ExplorationPolicy, "arms", {"taste": [1, 2.0, 3.0]}),  # more rewards than trials
        (ExplorationPolicy, "arms", {"": [0, 0.0, 0.0]}),
        (ExplorationPolicy, "arms", [1, 2]),
        (ExplorationPolicy, "choices", -1),
        (ExplorationPolicy, "seed", "7"),
    ],
)
def test_a_malformed_state_is_refused_with_a_value_error(
    cls: type[OfferMemory] | type[ExplorationPolicy], field: str, value: Any
) -> None:
    state = cls().to_state()
    state[field] = value
    with pytest.raises(ValueError):
        cls.from_state(state)


# --- the policy ------------------------------------------------------------------------

#: What each source's offers lead to: P(engaged), P(saved), P(skipped), P(returned).
#: "taste" is the most clicked and the least returned to: empty calories.
PROFILES = {
    "taste": (0.85, 0.05, 0.05, 0.15),
    "trending": (0.6, 0.05, 0.2, 0.2),
    "new_artist": (0.5, 0.35, 0.25, 0.6),
    "editorial": (0.5, 0.15, 0.2, 0.3),
}


def simulated_reward(arm: str, rng: random.Random) -> float:
    engaged, saved, skipped, returned = (rng.random() < p for p in PROFILES[arm])
    session = rng.randint(0, 10)
    return reward_of(OfferOutcome(engaged, saved, skipped, returned, session), CONFIG)


def test_the_policy_learns_to_choose_the_source_users_come_back_for_and_still_explores() -> None:
    policy, rng = ExplorationPolicy(seed=11), random.Random(2024)
    chosen = []
    for _ in range(3000):
        arm = policy.choose(ARMS)
        chosen.append(arm)
        policy.reward(arm, simulated_reward(arm, rng))
    stats = policy.stats()
    means = {arm: stats[arm]["mean_reward"] for arm in ARMS}
    assert max(means, key=means.__getitem__) == "new_artist"
    assert means["new_artist"] > means["taste"]  # the most clicked is not the best
    last = chosen[-1000:]
    assert last.count("new_artist") / len(last) > 0.75
    pulls = {arm: stats[arm]["pulls"] for arm in ARMS}
    assert max(pulls, key=pulls.__getitem__) == "new_artist"
    assert all(pulls[arm] >= 10 for arm in ARMS)  # every source is still tried
    assert sum(pulls.values()) == 3000


def test_the_same_seed_gives_the_same_choices() -> None:
    def run(seed: int) -> list[str]:
        policy, rng = ExplorationPolicy(seed=seed), random.Random(1)
        out = []
        for _ in range(300):
            arm = policy.choose(ARMS)
            out.append(arm)
            policy.reward(arm, simulated_reward(arm, rng))
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_an_arm_never_seen_is_tried_and_choose_needs_an_arm() -> None:
    policy = ExplorationPolicy(seed=0)
    for _ in range(30):
        policy.reward("taste", 0.0)
    assert "editorial" in {policy.choose(["taste", "editorial"]) for _ in range(20)}
    with pytest.raises(ValueError, match="at least one arm"):
        policy.choose([])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        policy.reward("taste", 1.5)


def test_the_horizon_bounds_an_arms_evidence_and_keeps_its_mean() -> None:
    policy = ExplorationPolicy(horizon=100)
    for i in range(1000):
        policy.reward("trending", 1.0 if i % 4 == 0 else 0.0)
    stats = policy.stats()["trending"]
    assert stats["trials"] == 100.0
    assert stats["mean_reward"] == pytest.approx(0.25, abs=0.02)


def test_stats_are_json_safe() -> None:
    _, policy = _busy_memory_and_policy()
    stats = policy.stats()
    assert json_round_trip(stats) == stats
    assert set(stats) <= set(ARMS)
    assert {"pulls", "trials", "mean_reward", "posterior_mean"} == set(stats["taste"])


# --- credit ----------------------------------------------------------------------------


def _offered(arm: str = "new_artist") -> tuple[OfferMemory, ExplorationPolicy]:
    memory, policy = OfferMemory(), ExplorationPolicy(seed=1)
    assert offer(memory, policy, "r1", "u1", 0, {"t1": arm, "t2": "editorial"}) == 2
    return memory, policy


def test_an_offer_counts_as_one_trial_of_reward_0_until_evidence_arrives() -> None:
    memory, policy = _offered()
    assert policy.stats()["new_artist"]["trials"] == 1.0
    assert policy.mean_reward("new_artist") == 0.0
    assert offer(memory, policy, "r1", "u1", 0, {"t1": "new_artist"}) == 0  # seen before
    assert policy.stats()["new_artist"]["trials"] == 1.0


def test_credit_rewards_the_arm_that_filled_the_slot() -> None:
    memory, policy = _offered()
    result = credit(memory, policy, event("save", track_id="t1"), CONFIG)
    assert (result.status, result.arm, result.reward) == ("credited", "new_artist", 0.3)
    assert policy.mean_reward("new_artist") == pytest.approx(0.3)
    assert policy.mean_reward("editorial") == 0.0  # the other slot's arm is untouched
    assert policy.stats()["new_artist"]["trials"] == 1.0  # revised, not counted again


@pytest.mark.parametrize("kind", ["play", "skip", "save"])
def test_credit_counts_each_list_track_and_kind_once(kind: str) -> None:
    memory, policy = _offered()
    first = credit(memory, policy, event(kind, ms_played=200_000), CONFIG)
    state = policy.to_state()
    again = credit(memory, policy, event(kind, ms_played=200_000), CONFIG)
    assert first.status == "credited"
    assert (again.status, again.reward) == ("repeat", first.reward)
    assert policy.to_state() == state
    # The same kind on another track of the list is another slot, credited once too.
    assert credit(memory, policy, event(kind, track_id="t2", ms_played=200_000), CONFIG).status == (
        "credited"
    )


def test_a_skip_after_a_play_takes_the_plays_reward_back() -> None:
    memory, policy = _offered()
    assert credit(memory, policy, event("play", ms_played=60_000), CONFIG).reward == 0.2
    assert credit(memory, policy, event("skip"), CONFIG).reward == 0.0
    assert policy.mean_reward("new_artist") == pytest.approx(0.0, abs=1e-12)


def test_a_play_counts_as_engaged_by_the_engagement_models_label() -> None:
    memory, policy = _offered()
    track = TrackInfo("t1", "a1", ("jazz",), duration_ms=200_000)
    short = credit(memory, policy, event("play", ms_played=60_000), CONFIG, track)
    assert (short.status, short.arm, short.reward) == ("not_engaged", "new_artist", 0.0)
    through = credit(memory, policy, event("play", ms_played=150_000), CONFIG, track)
    assert (through.status, through.reward) == ("credited", 0.2)


def test_credit_says_why_an_event_credits_nothing() -> None:
    memory, policy = _offered()
    state = policy.to_state()
    no_list = event("save")
    del no_list["recommendation_id"]
    assert credit(memory, policy, no_list, CONFIG).status == "no_recommendation"
    assert credit(memory, policy, event("save", rid="r9"), CONFIG).status == "unknown_list"
    assert credit(memory, policy, event("save", track_id="t3"), CONFIG).status == "not_offered"
    assert credit(memory, policy, event("share"), CONFIG).status == "unknown_type"
    memory.forget_before(1)
    assert credit(memory, policy, event("save"), CONFIG).status == "unknown_list"
    assert policy.to_state() == state
    assert set(CREDIT_STATUSES) >= {"credited", "repeat", "unknown_list", "not_offered"}


def test_a_return_within_a_day_is_credited_once_to_every_pending_offer_of_the_user() -> None:
    # hours:  0 r1 (u1)   20 r2 (u1)   22 r3 (u2)   |  30 u1 returns
    #   r1 is 30 h old: no return credit; r2 is 10 h old: credited; r3 is another user's
    memory, policy = OfferMemory(max_age_ms=2 * DAY_MS), ExplorationPolicy()
    offer(memory, policy, "r1", "u1", 0, {"t1": "taste"})
    offer(memory, policy, "r2", "u1", 20 * HOUR_MS, {"t1": "new_artist"})
    offer(memory, policy, "r3", "u2", 22 * HOUR_MS, {"t1": "editorial"})
    assert credit_return(memory, policy, "u1", 30 * HOUR_MS, CONFIG) == 1
    assert credit_return(memory, policy, "u1", 31 * HOUR_MS, CONFIG) == 0  # once
    assert policy.mean_reward("new_artist") == pytest.approx(0.35)
    assert policy.mean_reward("taste") == 0.0
    assert policy.mean_reward("editorial") == 0.0


def test_session_events_after_an_offer_count_until_the_target_or_the_session_ends() -> None:
    config = RewardConfig(session_events_target=3)
    memory, policy = OfferMemory(), ExplorationPolicy()
    offer(memory, policy, "r1", "u1", 1_000, {"t1": "trending"})
    assert credit_session_event(memory, policy, "u1", 500, config) == 0  # before the offer
    counted = [credit_session_event(memory, policy, "u1", 2_000 + i, config) for i in range(5)]
    assert counted == [1, 1, 1, 0, 0]  # saturated at the target
    assert policy.mean_reward("trending") == pytest.approx(0.15)
    offer(memory, policy, "r2", "u1", 10_000, {"t1": "editorial"})
    credit_return(memory, policy, "u1", 2 * HOUR_MS, config)  # a new session: r2's is over
    assert credit_session_event(memory, policy, "u1", 2 * HOUR_MS + 1, config) == 0


@settings(max_examples=100, deadline=None)
@given(st.permutations(["play", "skip", "save", "return", "session", "session"]), st.data())
def test_the_policy_holds_the_reward_of_the_outcome_whatever_order_its_pieces_came_in(
    pieces: list[str], data: st.DataObject
) -> None:
    kept = data.draw(st.lists(st.sampled_from(pieces), max_size=len(pieces)))
    memory, policy = OfferMemory(), ExplorationPolicy(horizon=None)
    offer(memory, policy, "r1", "u1", 0, {"t1": "editorial"})
    for piece in kept:
        if piece == "return":
            credit_return(memory, policy, "u1", HOUR_MS, CONFIG)
        elif piece == "session":
            credit_session_event(memory, policy, "u1", 1_000, CONFIG)
        else:
            credit(memory, policy, event(piece, ms_played=60_000), CONFIG)
    offered = memory.get("r1")
    assert offered is not None
    expected = reward_of(offered.outcome("t1"), CONFIG)
    assert policy.mean_reward("editorial") == pytest.approx(expected, abs=1e-12)
    assert policy.stats()["editorial"]["trials"] == 1.0


def test_a_slot_remembered_without_offer_is_counted_at_its_first_evidence() -> None:
    memory, policy = OfferMemory(), ExplorationPolicy()
    memory.remember("r1", "u1", 0, {"t1": "taste"})
    assert "taste" not in policy.stats()
    credit(memory, policy, event("save"), CONFIG)
    credit_return(memory, policy, "u1", HOUR_MS, CONFIG)
    assert policy.stats()["taste"]["trials"] == 1.0
    assert policy.mean_reward("taste") == pytest.approx(0.65)


def test_choices_and_credit_drive_one_loop_without_double_counting() -> None:
    memory, policy = OfferMemory(), ExplorationPolicy(seed=2)
    for i, kind in zip(range(20), itertools.cycle(["save", "skip", "play"]), strict=False):
        arm = policy.choose(ARMS)
        offer(memory, policy, f"r{i}", "u1", i, {f"t{i}": arm})
        for _ in range(2):
            credit(memory, policy, event(kind, f"r{i}", f"t{i}", ms_played=60_000), CONFIG)
    stats = policy.stats()
    assert sum(s["trials"] for s in stats.values()) == 20
    assert sum(s["pulls"] for s in stats.values()) == 20
