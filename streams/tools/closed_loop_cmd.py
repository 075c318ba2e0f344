"""``tunestream simulate --closed-loop``: the command around :mod:`streams.tools.closed_loop`.

Checks the flags, runs every policy (in process, or the tunestream policy live with
``--live``: :mod:`streams.tools.closed_loop_live`) with a progress bar on a terminal (one
line per policy otherwise), and prints the summaries as a table and the target's verdict,
or the whole result as JSON with ``--json``. Figures go to stdout, progress to stderr.

>>> parse_policies("oracle, random")
('oracle', 'random')
>>> parse_policies("best")
Traceback (most recent call last):
...
streams.settings.SettingsError: --policies: unknown policy best; known: tunestream, \
no-exploration-rerank, random, popularity, oracle
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.settings import Settings, SettingsError
from streams.tools.closed_loop import (
    QUICK,
    ClosedLoopConfig,
    result_table,
    run_closed_loop,
    verdict,
)
from streams.tools.console import write_tables
from streams.tools.loop_policies import POLICIES

#: The flags only ``--closed-loop`` reads.
CLOSED_LOOP_FLAGS = ("days", "listeners", "policies", "json", "live", "quick")


def parse_policies(text: str) -> tuple[str, ...]:
    """Comma-separated policy names, checked; :class:`SettingsError` names the unknown."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise SettingsError(
            f"--policies: unknown policy {', '.join(unknown) or '(none)'}; "
            f"known: {', '.join(POLICIES)}"
        )
    return names


def config_of(args: argparse.Namespace) -> ClosedLoopConfig:
    """The run the flags ask for: ``--quick``'s preset or the defaults, then each flag."""
    config = QUICK if args.quick else ClosedLoopConfig()
    changes: dict[str, Any] = {"seed": args.seed}
    if args.days is not None:
        changes["days"] = args.days
    if args.listeners is not None:
        changes["listeners"] = args.listeners
    if args.policies is not None:
        changes["policies"] = parse_policies(args.policies)
    if args.tracks is not None and not args.quick:
        changes["tracks"] = args.tracks
        changes["artists"] = min(config.artists, args.tracks)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run, then print the table (or ``--json``); 0."""
    config = config_of(args)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("closed loop {task.fields[policy]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # piped: one line per policy, no escape codes
    )
    tasks: dict[str, Any] = {}
    started = time.monotonic()

    def on_day(policy: str, day: int, days: int) -> None:
        if policy not in tasks:
            tasks[policy] = progress.add_task("days", total=days, policy=policy)
        progress.update(tasks[policy], completed=day)
        if day == days and not console.is_terminal:
            elapsed = time.monotonic() - started
            print(f"simulate: {policy}: {days} days done ({elapsed:.0f} s)", file=sys.stderr)

    with progress:
        if args.live:
            from streams.tools.closed_loop_live import run_live

            run = run_live(settings, config, on_day=on_day)
            result = run.result
            print(
                f"simulate: live: published {run.events_published} events, read "
                f"{run.policy.lists_read} lists; {len(run.policy.carried_ids)} events carried "
                f"a list's recommendation_id; {run.policy.waits_timed_out} waits for a list "
                "timed out",
                file=sys.stderr,
            )
        else:
            result = run_closed_loop(config, on_day)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    write_tables([result_table(result)], sys.stdout, text_columns=("policy",))
    line = verdict(result)
    if line is not None:
        print(line)
    return 0


__all__ = ["CLOSED_LOOP_FLAGS", "config_of", "parse_policies", "run_command"]
