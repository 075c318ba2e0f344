"""``tunestream editorial FILE``: every mistake is one line and a non-zero exit, and a bad
file is refused whole before anything is sent (the broker ``127.0.0.1:1`` answers nobody).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from features.editorial import MAX_LINE_BYTES
from streams.tools.cli import EXIT_FAILURE, EXIT_USAGE, build_parser, main
from tests.unit.test_cli_errors import one_line_error

NOBODY = ["--broker", "127.0.0.1:1"]
GOOD = b'{"name": "picks", "track_ids": ["t1", "t2"]}\n'


def editorial_file(tmp_path: Path, content: bytes, name: str = "sets.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (GOOD + b'{"name": "morning"}\n', ":2: track_ids: missing"),
        (GOOD + b'{"name": "m", "track_ids": ["t1"], "boost": 7}\n', ":2: boost: must be a"),
        (GOOD + b'{"name": "m", "track_ids": ["t1"], "context": {"hour": [7]}}\n',
         ":2: context: unknown key 'hour'"),
        (b"\n" + GOOD + b"{oops\n", ":3: not JSON"),
        (GOOD + b'{"name": "\xe9"}\n', ":2: not UTF-8 text"),
        (GOOD + b"\n" + GOOD, ":3: name: set 'picks' is already defined on line 1"),
        (GOOD + b'{"x": "' + b"y" * MAX_LINE_BYTES + b'"}\n', ":2: line longer than"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_its_file_and_line_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, expected: str
) -> None:
    path = editorial_file(tmp_path, content)
    line = one_line_error(capsys, ["editorial", str(path), *NOBODY])
    assert f"{path}{expected}" in line
    assert "published" not in line


def test_a_missing_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["editorial", "/nonexistent/sets.jsonl", *NOBODY])
    assert "cannot read /nonexistent/sets.jsonl: No such file or directory" in line


def test_a_file_that_is_not_json_lines_is_refused_by_its_suffix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = editorial_file(tmp_path, b"name,track_ids\n", "sets.csv")
    line = one_line_error(capsys, ["editorial", str(path), *NOBODY])
    assert "unknown editorial format '.csv'; use JSON Lines" in line


def test_no_file_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["editorial"])
    assert "the following arguments are required: file" in line


def test_a_good_file_without_a_broker_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNESTREAM_BROKER", raising=False)
    path = editorial_file(tmp_path, GOOD)
    line = one_line_error(capsys, ["editorial", str(path)])
    assert "no broker: set --broker / TUNESTREAM_BROKER" in line


@pytest.mark.parametrize("via_environment", [False, True])
def test_a_topic_that_cannot_be_one_is_a_usage_error_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    via_environment: bool,
) -> None:
    path = editorial_file(tmp_path, GOOD)
    argv = ["editorial", str(path), *NOBODY]
    if via_environment:
        monkeypatch.setenv("TUNESTREAM_EDITORIAL_TOPIC", "bad topic!")
    else:
        argv += ["--editorial-topic", "bad topic!"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunestream editorial: error: TUNESTREAM_EDITORIAL_TOPIC='bad topic!'")
    assert "\n" not in err


def test_an_unreachable_broker_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = editorial_file(tmp_path, GOOD)
    assert main(["editorial", str(path), *NOBODY]) == EXIT_FAILURE
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunestream editorial: error: ") and "\n" not in err


def test_help_names_the_topic_variable_and_shows_a_record_and_a_command() -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = choices["editorial"].format_help()
    assert "TUNESTREAM_EDITORIAL_TOPIC" in text and "default editorial-sets" in text
    assert "tunestream editorial deploy/editorial.example.jsonl" in text
    record = next(line for line in text.splitlines() if '"editors-picks"' in line)
    assert orjson.loads(record)["track_ids"]
