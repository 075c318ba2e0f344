"""Scenario 9 of the fault suite: model-snapshot integrity (:mod:`streams.tools.verify_snapshots`).

A learner is killed with SIGKILL mid-stream (once right as a snapshot is due) and
restarted; a snapshot with a corrupted byte, a cut one and one signed with the wrong
key are published among the genuine ones. The rule of the suite holds for the events,
and no bad snapshot is ever served or resumed from, and no example is learned twice.
Recovery times are printed, never asserted: the machine is shared.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.tools.console import Reporter
from streams.tools.verify import Context, ScenarioResult, format_table, run_scenario, scenario
from streams.tools.verify_snapshots import INJECTED_REFUSALS, LEARNER_KILLS
from tests.integration.test_fault_suite import assert_rule_held

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def result(bootstrap_servers: str, tmp_path: Path) -> ScenarioResult:
    """The scenario run once on the session's broker; its table row goes to the output."""
    settings = Settings.from_env({}, broker=bootstrap_servers)
    ctx = Context(settings, tmp_path, seed=7, reporter=Reporter(prefix="verify"))
    outcome = asyncio.run(run_scenario(scenario("snapshot-integrity"), ctx))
    print(f"\n{format_table([outcome])}\nchecks: {outcome.checks}\ndetails: {outcome.details}")
    return outcome


def test_a_learner_killed_mid_write_and_corrupt_or_foreign_snapshots_never_reach_serving_and_lose_nothing(  # noqa: E501
    result: ScenarioResult,
) -> None:
    assert result.error is None, result.error
    details = result.details
    assert len(details["recoveries_s"]) == LEARNER_KILLS
    assert details["learner_starts"] == LEARNER_KILLS + 1
    assert details["worker_refused"] == details["learner_refused"] == INJECTED_REFUSALS
    assert details["examples_learned"] == details["examples_produced"] > 0, details
    assert_rule_held(result)
