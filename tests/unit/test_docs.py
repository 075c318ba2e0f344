"""The README is a user's guide: its tables must match the code."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from streams.contracts.events import REASONS
from streams.settings import Settings, env_name

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_configuration_table_lists_every_setting_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(TUNESTREAM_\w+)` \| `([^`]*)` \|", README, re.MULTILINE))
    expected = {env_name(f.name): str(f.default) for f in fields(Settings)}
    assert rows == expected


def test_every_rejection_reason_is_documented() -> None:
    undocumented = [r for r in REASONS if f"`{r}`" not in README]
    assert undocumented == []


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make demo" in quick_start and "make test" in quick_start
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    assert [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ] == ["make test"]


def test_every_concrete_command_in_the_readme_parses() -> None:
    """Commands an operator would paste (no placeholders such as FILE or [--x N])."""
    from streams.tools.cli import build_parser

    commands = [
        c for c in re.findall(r"`tunestream ([^`]*)`", README) if not re.search(r"[A-Z\[]", c)
    ]
    assert any(c.startswith("tail listening-events-dlq") for c in commands)
    for command in commands:
        if command == "--version":  # argparse prints it and exits 0
            with pytest.raises(SystemExit, match="0"):
                build_parser().parse_args([command])
            continue
        build_parser().parse_args(command.split())
