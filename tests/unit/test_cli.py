"""The CLI: bad arguments get one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.tools.cli import build_parser, main


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("simulate", "--rate", "fast"),
        ("simulate", "--rate", "-3"),
        ("tail",),
        ("worker", "--log-level", "LOUD"),
        ("demo", "--duration", "0"),
    ],
)
def test_bad_argument_prints_one_line_and_exits_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tunestream")
    assert "Traceback" not in result.stderr


def test_bad_environment_value_prints_one_line_and_exits_2() -> None:
    result = run_cli("simulate", env={"TUNESTREAM_PARTITIONS": "-1", "TUNESTREAM_BROKER": "x:1"})
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "tunestream simulate: error: "
        "TUNESTREAM_PARTITIONS=-1: must be a whole number in 1..2147483647"
    )


def test_client_command_without_a_broker_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["tail", "recommendations", "--broker", "embedded"])
    assert code == 1
    assert "tunestream broker" in capsys.readouterr().err


def test_unreachable_broker_is_one_line_not_a_traceback() -> None:
    result = run_cli("tail", "recommendations", "--broker", "127.0.0.1:1", "--max", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_input_file_is_reported() -> None:
    result = run_cli("produce", "/nonexistent/events.jsonl", "--broker", "127.0.0.1:1")
    assert result.returncode == 1
    assert "cannot read /nonexistent/events.jsonl" in result.stderr


def test_help_names_the_environment_variable_of_each_setting() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["worker"].format_help()  # type: ignore[union-attr]
    assert "TUNESTREAM_BROKER" in text
    assert "TUNESTREAM_WEB_PORT" in text


def test_a_bad_catalog_file_is_one_line_naming_the_line_and_nothing_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "catalog.jsonl"
    bad.write_text('{"track_id": "t1", "artist_id": "a1"}\n{"track_id": "t2"}\n')
    assert main(["catalog", str(bad), "--broker", "127.0.0.1:1"]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "catalog.jsonl:2: artist_id: missing" in err
