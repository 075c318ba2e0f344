"""The verifier's accounting, on fabricated runs: no broker, no worker.

Each test builds the input a run would have read back (messages of the input
topic), what the worker produced (clean topic, dead letters, feature answers),
and checks how :func:`streams.tools.verify.account` files every event.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features import TrackFeatures, UserFeatureConfig, UserFeatures
from streams.contracts.events import EventDecoder
from streams.tools import verify
from streams.tools.verify import (
    APPLIED,
    DUPLICATE,
    DeadLetter,
    InputMessage,
    Observed,
    Reference,
    ScenarioResult,
    Tally,
    account,
)

NOW_MS = 1_767_225_600_000


def event(event_id: str, user: str = "u1", ts: int = NOW_MS - 60_000, **fields: Any) -> dict:
    return {
        "event_id": event_id,
        "user_id": user,
        "track_id": "t1",
        "type": "play",
        "ts": ts,
        "ms_played": 1000,
        **fields,
    }


def message(offset: int, value: Any, key: bytes | None = b"u1", partition: int = 0) -> InputMessage:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return InputMessage(partition, offset, key, raw)


def reference(*messages: InputMessage) -> Reference:
    ref = Reference(EventDecoder(now_ms=lambda: NOW_MS), UserFeatureConfig(), {})
    for item in messages:
        ref.feed(item)
    return ref


def answer(user: str, events: Iterable[dict]) -> dict[str, Any]:
    """What ``GET /users/{user}/features`` answers after folding ``events`` once each."""
    features = UserFeatures(UserFeatureConfig())
    for item in sorted(events, key=lambda e: e["ts"]):
        features.update(item, None)
    return {"user_id": user, **orjson.loads(orjson.dumps(features.read(NOW_MS)))}


def observed(
    clean: Sequence[dict],
    dead: Sequence[DeadLetter] = (),
    folded: dict[str, Sequence[dict]] | None = None,
) -> Observed:
    """The worker's outputs; each user's state folds ``folded`` (default: what is clean)."""
    if folded is None:
        folded = {}
        for item in clean:
            mine = folded.setdefault(item["user_id"], [])
            if item["event_id"] not in {e["event_id"] for e in mine}:
                mine.append(item)
    return Observed(list(clean), list(dead), {u: answer(u, evs) for u, evs in folded.items()})


E1, E2, E3 = event("e1"), event("e2", ts=NOW_MS - 50_000), event("e3", ts=NOW_MS - 40_000)


def test_every_event_applied_once_is_a_clean_run() -> None:
    ref = reference(message(0, E1), message(1, [E2, E3]))
    tally = account(ref, observed([E1, E2, E3]))
    assert tally.clean_run, tally.problems
    assert (tally.sent, tally.applied, tally.dead_lettered) == (3, 3, 0)


def test_an_event_in_no_output_and_not_in_state_is_lost_once() -> None:
    ref = reference(message(0, E1), message(1, E2), message(2, E3))
    tally = account(ref, observed([E1, E3]))
    assert tally.lost == 1  # not counted again for the user's short events_seen
    assert tally.features_mismatched == 1
    assert "'e2'" in tally.problems[0] and "offset 1" in tally.problems[0]


def test_an_event_forwarded_but_never_folded_is_lost_from_state() -> None:
    ref = reference(message(0, E1), message(1, E2))
    tally = account(ref, observed([E1, E2], folded={"u1": [E1]}))
    assert tally.lost == 1 and not tally.clean_run
    assert "folded 1 of 2" in " ".join(tally.problems)


def test_an_event_folded_twice_is_duplicated_in_state() -> None:
    ref = reference(message(0, E1), message(1, E2))
    twice = observed([E1, E2], folded={"u1": [E1, E2, {**E2, "event_id": "again"}]})
    tally = account(ref, twice)
    assert tally.duplicated == 1 and tally.lost == 0
    assert tally.features_mismatched == 1


def test_a_refused_event_dead_lettered_with_its_reason_is_dead_lettered() -> None:
    bad = event("bad", type="pause")
    ref = reference(message(0, [E1, bad, E2]))
    dead = [DeadLetter(0, 0, 1, "bad", "unknown_event_type")]
    tally = account(ref, observed([E1, E2], dead))
    assert tally.clean_run, tally.problems
    assert (tally.applied, tally.dead_lettered) == (2, 1)


def test_a_refused_event_without_a_dead_letter_is_lost() -> None:
    ref = reference(message(0, [E1, event("bad", ms_played=-1)]))
    tally = account(ref, observed([E1]))
    assert tally.lost == 1
    assert "negative_ms_played" in tally.problems[0]


def test_a_dead_letter_with_another_reason_is_unaccounted() -> None:
    ref = reference(message(0, event("bad", ms_played=-1)))
    tally = account(ref, observed([], [DeadLetter(0, 0, None, "bad", "wrong_type")]))
    assert tally.unaccounted == 1 and tally.dead_lettered == 0


def test_an_event_both_forwarded_and_dead_lettered_is_unaccounted() -> None:
    ref = reference(message(0, E1))
    both = observed([E1], [DeadLetter(0, 0, None, "e1", "processing_error")])
    tally = account(ref, both)
    assert tally.unaccounted == 1 and tally.applied == 0


def test_a_message_dead_lettered_as_a_whole_accounts_for_all_its_events() -> None:
    ref = reference(message(0, [E1, E2]))
    whole = DeadLetter(0, 0, None, None, "processing_error")
    tally = account(ref, observed([], [whole], folded={}))
    assert tally.unaccounted == 2  # refused, though both should be applied
    assert tally.lost == 0  # not also counted lost: the dead letter accounts for them


def test_a_message_refused_as_a_whole_matches_its_dead_letter() -> None:
    ref = reference(message(0, b"{not json"), message(1, b"[]"))
    assert [o.expected for o in ref.occurrences] == ["not_json", "empty_batch"]
    dead = [DeadLetter(0, 0, None, None, "not_json"), DeadLetter(0, 1, None, None, "empty_batch")]
    tally = account(ref, observed([], dead))
    assert tally.clean_run and tally.dead_lettered == 2


def test_a_re_published_copy_is_expected_dropped_as_a_duplicate() -> None:
    ref = reference(message(0, E1), message(1, E2), message(2, E1))
    assert [o.expected for o in ref.occurrences] == [APPLIED, APPLIED, DUPLICATE]
    tally = account(ref, observed([E1, E2]))
    assert tally.clean_run and tally.duplicates_dropped == 1
    dead_copy = observed([E1, E2], [DeadLetter(0, 2, None, "e1", "processing_error")])
    assert account(ref, dead_copy).unaccounted == 1


def test_an_event_older_than_the_lateness_is_expected_too_late() -> None:
    old = event("old", ts=E1["ts"] - UserFeatureConfig().lateness_ms - 1)
    ref = reference(message(0, E1), message(1, old))
    assert ref.occurrences[-1].expected == "too_late"
    tally = account(ref, observed([E1], [DeadLetter(0, 1, None, "old", "too_late")]))
    assert tally.clean_run and tally.dead_lettered == 1
    assert account(ref, observed([E1, old], folded={"u1": [E1]})).unaccounted == 1


def test_a_dead_letter_that_refuses_nothing_sent_is_unaccounted() -> None:
    ref = reference(message(0, E1))
    tally = account(ref, observed([E1], [DeadLetter(3, 99, None, None, "not_json")]))
    assert tally.unaccounted == 1


def test_an_event_only_in_the_clean_topic_is_unaccounted() -> None:
    ref = reference(message(0, E1))
    tally = account(ref, observed([E1, event("phantom")], folded={"u1": [E1]}))
    assert tally.unaccounted == 1


def test_events_first_forwarded_out_of_their_input_order_are_out_of_sequence() -> None:
    ref = reference(message(0, E1), message(1, E2), message(2, E3))
    tally = account(ref, observed([E1, E3, E2]))
    assert tally.out_of_sequence == 1 and not tally.clean_run


def test_output_repeated_after_a_crash_is_reported_but_breaks_no_rule() -> None:
    bad = event("bad", type="pause")
    ref = reference(message(0, E1), message(1, E2), message(2, bad))
    letter = DeadLetter(0, 2, None, "bad", "unknown_event_type")
    tally = account(ref, observed([E1, E2, E1, E2], [letter, letter]))
    assert tally.clean_run, tally.problems
    assert (tally.reforwarded, tally.dlq_repeats) == (2, 1)


def test_features_that_differ_from_the_recomputation_are_a_mismatch() -> None:
    ref = reference(message(0, E1))
    seen = observed([E1])
    seen.features["u1"]["plays_1h"] += 0.5
    assert account(ref, seen).features_mismatched == 1


def track_answer(track_id: str, events: Iterable[dict]) -> dict[str, Any]:
    """What ``GET /tracks/{track_id}/features`` answers after folding ``events``."""
    track = TrackFeatures()
    for item in events:
        track.update(item)
    body = {"track_id": track_id, "as_of_ms": NOW_MS, **track.read(NOW_MS)}
    return orjson.loads(orjson.dumps(body))


def with_tracks(ref: Reference, seen: Observed, folded: Sequence[dict]) -> Observed:
    seen.expected_tracks = ref.track_features(3600.0)
    seen.tracks = {"t1": track_answer("t1", folded)}
    return seen


def test_track_statistics_folding_every_applied_event_once_match() -> None:
    ref = reference(message(0, E1), message(1, E2), message(2, E1))  # the copy is dropped
    tally = account(ref, with_tracks(ref, observed([E1, E2]), [E2, E1]))
    assert tally.clean_run, tally.problems


def test_a_track_event_lost_or_folded_twice_on_the_track_side_is_a_mismatch() -> None:
    ref = reference(message(0, E1), message(1, E2))
    for folded in ([E1], [E1, E2, E2]):
        tally = account(ref, with_tracks(ref, observed([E1, E2]), folded))
        assert tally.features_mismatched == 1, folded
        assert tally.problems == ["features_mismatched: track 't1': plays_1h, plays_1d, plays_7d"]


def test_a_track_the_worker_has_no_statistics_for_is_a_mismatch() -> None:
    ref = reference(message(0, E1))
    seen = with_tracks(ref, observed([E1]), [E1])
    seen.tracks = {"t1": None}
    assert account(ref, seen).problems == ["features_mismatched: track 't1': no statistics"]


def test_a_generated_event_missing_from_the_input_is_reported() -> None:
    ref = reference(message(0, E1))
    assert verify.unsent([E1, E2], ref) == [E2]


def test_a_result_is_ok_only_when_the_rule_held_and_every_check_passed() -> None:
    clean = ScenarioResult("x", Tally(sent=3, applied=3), 1.0, {"drained": True})
    assert clean.ok and clean.verdict() == "ok"
    failed_check = ScenarioResult("x", Tally(sent=3, applied=3), None, {"livez_503": False})
    assert not failed_check.ok and failed_check.verdict() == "FAIL: livez_503"
    lost = ScenarioResult("x", Tally(sent=3, lost=2))
    assert lost.verdict() == "FAIL: lost 2"
    assert (
        ScenarioResult("x", Tally(), error="VerifyError: boom").verdict()
        == "error: VerifyError: boom"
    )


def test_the_table_has_the_issue_columns_and_json_every_figure() -> None:
    results = [ScenarioResult("kill-9", Tally(sent=900, applied=900), 4.0)]
    header = verify.format_table(results).splitlines()[0]
    for column in ("scenario", "events sent", "lost", "duplicated", "dead-lettered", "recovery"):
        assert column in header
    scenario = verify.to_json(results)["scenarios"][0]
    assert {"lost", "duplicated", "out_of_sequence", "unaccounted", "recovery_s"} <= set(scenario)


def test_every_scenario_of_the_issue_is_registered() -> None:
    assert len(verify.SCENARIOS) == 9
    assert len(set(verify.SCENARIO_NAMES)) == 9
    with pytest.raises(KeyError, match="known"):
        verify.scenario("nope")


@given(
    st.lists(st.integers(0, 10_000_000), min_size=1, max_size=60),
    st.integers(1, 1_000_000),
    st.integers(0, 2**32),
)
def test_shuffled_events_never_arrive_later_than_the_bound(
    times: list[int], bound_ms: int, seed: int
) -> None:
    events = [{"ts": ts, "n": i} for i, ts in enumerate(sorted(times))]
    shuffled = verify.shuffled_within(events, bound_ms, random.Random(seed))
    assert sorted(e["n"] for e in shuffled) == list(range(len(events)))
    newest = shuffled[0]["ts"]
    for item in shuffled[1:]:
        assert item["ts"] >= newest - bound_ms
        newest = max(newest, item["ts"])


def test_copies_come_after_their_originals() -> None:
    events = [{"event_id": str(i)} for i in range(100)]
    out = verify.with_copies(events, 0.1, random.Random(5))
    assert len(out) == 110
    first_at: dict[str, int] = {}
    for position, item in enumerate(out):
        first_at.setdefault(item["event_id"], position)
    assert [e["event_id"] for e in sorted(events, key=lambda e: first_at[e["event_id"]])] == [
        e["event_id"] for e in events
    ]


def test_an_unknown_scenario_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.tools.cli import main

    assert main(["verify", "--scenario", "kill-9", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope' is not a scenario" in err and "kill-9" in err
