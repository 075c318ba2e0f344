"""``python -m benchmarks.pipeline``: the planner's cost per message, measured and sane.

Never a wall-clock assertion: the figures only have to exist, be positive, finite
and consistent with one another.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

from benchmarks.pipeline import QUICK, main, measure

FIGURES = (
    "messages",
    "lists",
    "message_us",
    "message_us_without_lists",
    "list_us",
    "state_encode_us",
)


def test_a_quick_run_measures_every_figure_with_lists_built() -> None:
    result = measure(QUICK)
    for name in FIGURES:
        assert math.isfinite(result[name]) and result[name] > 0, name
    assert result["messages"] == QUICK.events
    assert 0 < result["lists"] < result["messages"]  # the debounce holds some back
    assert result["message_us_without_lists"] < result["message_us"]


def test_the_json_answer_holds_the_figures_and_the_profile_when_asked() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--quick", "--json", "--profile", "5"]) == 0
    result = json.loads(out.getvalue())
    assert set(FIGURES) <= set(result)
    assert "plan_with_live_state" in result["profile"]
