"""``python -m benchmarks.models``: every figure measured and sane, and honest speed-ups.

Never a wall-clock assertion: the figures only have to exist, be positive and finite.
The vectorised scorings must equal their loops, or the run stops.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Any

import numpy as np
import pytest

from benchmarks import models
from benchmarks.models import ScoresDiffer, Sizes, check_same, main, tables
from online_models.engagement import CANDIDATES, LinearScorer
from online_models.recommender import STAGES
from online_models.serving import ServingModels
from streams.tools.console import write_tables

#: The keys a script may rely on, beside the per-model dict.
FIGURES = (
    "list_us",
    "list_candidates",
    "list_items",
    "events",
    "tracks",
    "engagement_examples",
    "repeat",
    "score_repeat",
    "taste_learn_us",
    "learner_examples_per_s",
    "score_500_linear_us",
    "score_500_columns_us",
    "score_500_river_loop_us",
    "score_500_speedup",
    "rank_500_taste_us",
    "rank_500_loop_us",
    "rank_500_speedup",
    "snapshot_bytes",
    "snapshot_tracks",
    "snapshot_encode_ms",
    "snapshot_load_ms",
)
#: Smaller than --quick, for the runs that must stop before printing anything.
TINY = Sizes(300, 500, 50, 20, 20, repeat=1, score_repeat=1, score_calls=1)


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    """One ``--quick --json`` run, in process, shared by the tests that read it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["--quick", "--json"])
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def positive_finite(value: Any) -> bool:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value > 0


def test_quick_json_holds_every_figure_and_one_per_engagement_candidate(
    quick: dict[str, Any],
) -> None:
    assert set(quick) == {*FIGURES, "engagement_learn_predict_us", "list_stage_us"}
    assert set(quick["engagement_learn_predict_us"]) == set(CANDIDATES)
    assert set(quick["list_stage_us"]) == set(STAGES)


def test_every_figure_is_a_positive_finite_number(quick: dict[str, Any]) -> None:
    figures = {name: quick[name] for name in FIGURES}
    figures.update(quick["engagement_learn_predict_us"])
    figures.update(quick["list_stage_us"])
    assert {name: value for name, value in figures.items() if not positive_finite(value)} == {}


def test_the_tables_show_every_candidate_and_both_speed_ups(quick: dict[str, Any]) -> None:
    out = io.StringIO()
    write_tables(tables(quick), out)
    text = out.getvalue()
    for name in CANDIDATES:
        assert f"engagement {name}: predict + learn" in text
    assert f"{quick['score_500_speedup']:,.1f}x" in text
    assert f"{quick['rank_500_speedup']:,.1f}x" in text
    assert f"{quick['snapshot_bytes']:,} bytes" in text


def run_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "QUICK", TINY)
    with contextlib.redirect_stderr(io.StringIO()):
        main(["--quick", "--json"])


def test_a_linear_scorer_that_strays_from_river_stops_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    score_columns = LinearScorer.score_columns

    def off_by_a_little(self: LinearScorer, *args: Any, **kwargs: Any) -> Any:
        return score_columns(self, *args, **kwargs) + 1e-6

    monkeypatch.setattr(LinearScorer, "score_columns", off_by_a_little)
    with pytest.raises(ScoresDiffer, match=r"^engagement: candidate \d+ scores"):
        run_tiny(monkeypatch)
    assert capsys.readouterr().out == ""  # no figure printed for a dishonest comparison


def test_a_taste_ranking_that_strays_from_the_loop_stops_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rank_by_taste = ServingModels.rank_by_taste

    def one_score_off(self: ServingModels, *args: Any) -> list[tuple[str, float]]:
        ranked = rank_by_taste(self, *args)
        (track, score), rest = ranked[0], ranked[1:]
        return [(track, score + 1e-6), *rest]

    monkeypatch.setattr(ServingModels, "rank_by_taste", one_score_off)
    with pytest.raises(ScoresDiffer, match=r"^taste: candidate \d+ scores"):
        run_tiny(monkeypatch)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("fast", "slow", "why"),
    [
        ([0.1, 0.2 + 2e-9], [0.1, 0.2], "more than 1e-09 apart"),
        ([0.1, float("nan")], [0.1, 0.2], "nan"),
        ([0.1], [0.1, 0.2], "looped"),
        ([], [], "looped"),
        ([0.3, 0.3], [0.3, 0.3], "the check proves nothing"),
    ],
)
def test_scores_that_differ_or_prove_nothing_are_refused(
    fast: list[float], slow: list[float], why: str
) -> None:
    with pytest.raises(ScoresDiffer, match=why):
        check_same("what", fast, slow)


def test_scores_equal_within_the_tolerance_pass() -> None:
    slow = np.array([0.1, 0.2, 0.3])
    check_same("what", slow + 5e-10, slow)


def test_a_bad_argument_is_argparses_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--quick", "--events", "10"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "error: unrecognized arguments: --events 10" in err
    assert "Traceback" not in err
