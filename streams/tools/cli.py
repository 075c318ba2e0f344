"""The ``tunestream`` command line.

Every flag that mirrors a setting falls back to its ``TUNESTREAM_*`` variable,
and ``--help`` names it. A bad argument prints one line and exits 2; a broker
that cannot be reached prints one line and exits 1; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

from features.errors import TunestreamError
from streams.settings import (
    LOG_LEVELS,
    Settings,
    SettingsError,
    env_name,
    help_of,
    range_of,
    topic_name_problem,
)

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(TunestreamError):
    """A failure to report in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: What a file loader returns a list of (tracks, editorial sets).
Loaded = TypeVar("Loaded")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in [0, 1]")
    return value


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port in 0..65535")
    return value


def _topic(text: str) -> str:
    problem = topic_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def _not_empty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tunestream")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _add_setting(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """A flag for a :class:`Settings` field; unset means "from the environment"."""
    default = next(f.default for f in fields(Settings) if f.name == name)
    flag = "--" + name.replace("_", "-")
    allowed = range_of(name)
    allowed = f", range {allowed}" if allowed else ""
    help_text = f"{help_of(name)} (env {env_name(name)}, default {default}{allowed})"
    parser.add_argument(flag, dest=name, default=None, help=help_text, **kwargs)


def _settings(args: argparse.Namespace) -> Settings:
    names = {f.name for f in fields(Settings)}
    return Settings.from_env(**{k: v for k, v in vars(args).items() if k in names})


EDITORIAL_HELP = """\
Check every line of a file of editorial sets (tracks an editor chose, each set
with a boost added to its tracks' scores and an optional context), then publish
each set keyed by its name to the compacted editorial topic. A bad line is
reported as file:line: field: problem and nothing is sent. Re-publishing a set
of the same name replaces it.
"""
EDITORIAL_EXAMPLE = """\
one set per line; name and track_ids (at most 1,000) required; boost 0..1
(default 0.1); title defaults to the name; context optional: UTC hours 0..23,
devices, context types (a missing or empty list matches anything):

  {"name": "editors-picks", "title": "Editors' picks", "track_ids": ["t00012"]}
  {"name": "morning", "title": "Morning coffee", "track_ids": ["t00000"], \\
   "boost": 0.15, "context": {"hours": [6, 7, 8, 9, 10], "devices": ["mobile"]}}
  (the second set on two lines here, on one in the file)

example:
  tunestream editorial deploy/editorial.example.jsonl --broker localhost:9092
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tunestream",
        description="Fresh, responsible music recommendations from a live stream of listening "
        "events. Settings come from flags or TUNESTREAM_* environment variables.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    demo = sub.add_parser("demo", help="embedded broker + worker + simulator, with a live view")
    demo.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--rate",
        type=_positive_float,
        default=300.0,
        help="simulated events per second (default 300)",
    )
    demo.add_argument("--users", type=_positive_int, default=500, help="simulated users (500)")
    demo.add_argument("--seed", type=int, default=7, help="simulation seed (7)")
    demo.add_argument(
        "--bad-ratio",
        type=_share,
        default=0.005,
        help="share of malformed events, to show the dead-letter topic (0.005)",
    )
    _add_setting(demo, "partitions", type=_positive_int)

    worker = sub.add_parser("worker", help="run one stream-processing worker")
    for name in ("broker", "app_id", "web_host"):
        _add_setting(worker, name)
    _add_setting(worker, "web_port", type=int)
    _add_setting(worker, "partitions", type=_positive_int)
    _add_setting(worker, "data_dir")
    _add_setting(worker, "log_level", type=str.upper, choices=LOG_LEVELS)

    learner = sub.add_parser(
        "learner",
        help="run the learner: training examples in, signed model snapshots out (one per app)",
    )
    for name in ("broker", "web_host"):
        _add_setting(learner, name)
    _add_setting(learner, "learner_web_port", type=_port)
    _add_setting(learner, "snapshot_interval_s", type=_positive_float)
    _add_setting(learner, "log_level", type=str.upper, choices=LOG_LEVELS)

    produce = sub.add_parser("produce", help="publish JSON Lines events from a file or stdin")
    produce.add_argument("file", nargs="?", default="-", help="JSON Lines file ('-' = stdin)")
    produce.add_argument(
        "--strict",
        action="store_true",
        help="validate locally; report invalid lines and do not send them",
    )
    _add_setting(produce, "broker")
    _add_setting(produce, "events_topic")

    catalog = sub.add_parser(
        "catalog", help="check a track catalog file (CSV or JSON Lines) and publish it"
    )
    catalog.add_argument("file", help="catalog file: .csv, .jsonl, .ndjson or .json")
    _add_setting(catalog, "broker")
    _add_setting(catalog, "catalog_topic")

    editorial = sub.add_parser(
        "editorial",
        help="check an editorial sets file (JSON Lines) and publish it",
        description=EDITORIAL_HELP,
        epilog=EDITORIAL_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    editorial.add_argument("file", help="editorial sets file: .jsonl, .ndjson or .json")
    _add_setting(editorial, "broker")
    _add_setting(editorial, "editorial_topic")

    simulate = sub.add_parser("simulate", help="publish a seeded synthetic listening population")
    simulate.add_argument(
        "--rate", type=_positive_float, default=200.0, help="events per second (default 200)"
    )
    simulate.add_argument(
        "--events", type=_positive_int, default=None, help="stop after this many events"
    )
    simulate.add_argument(
        "--duration", type=_positive_float, default=None, help="stop after this many seconds"
    )
    simulate.add_argument("--users", type=_positive_int, default=200, help="users (200)")
    simulate.add_argument("--tracks", type=_positive_int, default=2000, help="tracks (2000)")
    simulate.add_argument("--seed", type=int, default=7, help="seed (7)")
    simulate.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="do not pace to wall-clock time (event times still follow --rate)",
    )
    loop = simulate.add_argument_group(
        "closed loop",
        "listeners who read their lists and answer them (streams/tools/closed_loop.py)",
    )
    loop.add_argument(
        "--closed-loop",
        action="store_true",
        help="simulate listeners over days against each policy and compare them",
    )
    loop.add_argument("--days", type=_positive_int, default=None, help="simulated days (21)")
    loop.add_argument("--listeners", type=_positive_int, default=None, help="listeners (200)")
    loop.add_argument(
        "--policies",
        default=None,
        help="comma-separated: tunestream, no-exploration-rerank, random, popularity, oracle (all)",
    )
    loop.add_argument("--quick", action="store_true", help="a small preset: 6 days, 40 listeners")
    loop.add_argument("--json", action="store_true", help="print the whole result as JSON")
    loop.add_argument(
        "--live",
        action="store_true",
        help="tunestream through the real pipeline: events to the broker, lists from its "
        "recommendations topic (without --broker: an embedded broker, a learner and a worker)",
    )
    _add_setting(simulate, "broker")
    _add_setting(simulate, "events_topic")

    tail = sub.add_parser("tail", help="print a topic's messages as JSON lines")
    tail.add_argument("topic", type=_topic, help="topic name, e.g. recommendations")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    tail.add_argument("--max", type=_positive_int, default=None, help="stop after N messages")
    tail.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="stop after this many seconds without a message",
    )
    _add_setting(tail, "broker")

    features = sub.add_parser(
        "features",
        help="print a user's (or with --track a track's) rolling features, as the owning "
        "worker answers",
    )
    features.add_argument(
        "user_id", metavar="ID", type=_not_empty, help="the user (or track) to look up"
    )
    features.add_argument(
        "--track", action="store_true", help="ID is a track_id: print its statistics"
    )
    features.add_argument(
        "--url", default=None, help="any worker's web address (default http://WEB_HOST:WEB_PORT)"
    )
    _add_setting(features, "web_host")
    _add_setting(features, "web_port", type=int)

    recs = sub.add_parser(
        "recs",
        help="print a user's latest recommendation list, as the owning worker answers "
        "(with --explain, every candidate's scores per stage)",
    )
    recs.add_argument("user_id", metavar="USER", type=_not_empty, help="the user to look up")
    recs.add_argument(
        "--explain",
        action="store_true",
        help="also show every candidate: source, scores per stage and what became of it",
    )
    recs.add_argument("--json", action="store_true", help="print the worker's JSON answer")
    recs.add_argument(
        "--url", default=None, help="any worker's web address (default http://WEB_HOST:WEB_PORT)"
    )
    _add_setting(recs, "web_host")
    _add_setting(recs, "web_port", type=int)

    bench = sub.add_parser(
        "bench",
        help="measure throughput, latency, state size and start-up on this machine (its own "
        "embedded broker and workers; about 2 minutes with the defaults)",
    )
    bench.add_argument(
        "--events",
        type=_at_least(100),
        default=20_000,
        help="events in each drained backlog (default 20000, at least 100)",
    )
    bench.add_argument(
        "--rate",
        type=_positive_float,
        default=1_000.0,
        help="events per second in the latency phase (default 1000)",
    )
    bench.add_argument(
        "--duration",
        type=_positive_float,
        default=20.0,
        help="seconds of load in the latency phase (default 20)",
    )
    bench.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=3.0,
        help="seconds of load before the measured --duration; their lists are left out "
        "of the latency percentiles (every simulated listener's first lists come as one "
        "burst) and counted apart (default 3)",
    )
    bench.add_argument(
        "--skip-latency", action="store_true", help="skip the latency phase (a quick run)"
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="also profile a single-event drain with py-spy and print each stage's CPU share",
    )
    bench.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    _add_setting(bench, "partitions", type=_positive_int)

    verify = sub.add_parser(
        "verify",
        help="run the fault suite on its own embedded broker and check that every event was "
        "applied once or dead-lettered once (about 4 minutes)",
    )
    verify.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these scenarios: kill-9, slow-event-killed, scale-1-2-1, "
        "duplicates-rewind, hostile-input, late-out-of-order, stuck-agent, broker-outage",
    )
    verify.add_argument("--seed", type=int, default=7, help="seed of streams and faults (7)")
    verify.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="replay a listening log offline through the models (no Kafka) and score them "
        "prequentially against baselines; the seeded simulator's stream when no log is given",
    )
    evaluate.add_argument(
        "log", nargs="*", help="log file(s) or folder; none: the simulator's stream"
    )
    evaluate.add_argument(
        "--format",
        choices=("jsonl", "lastfm", "lastfm-csv", "movielens", "mssd"),
        default="jsonl",
        help="the log's format (default jsonl; see the README for each mapping rule)",
    )
    evaluate.add_argument(
        "--catalog", default=None, help="a tunestream catalog (CSV or JSON Lines)"
    )
    evaluate.add_argument(
        "--events",
        type=_at_least(100),
        default=20_000,
        help="simulated events when no log is given (default 20000)",
    )
    evaluate.add_argument(
        "--list-samples",
        type=_at_least(0),
        default=2_000,
        help="positive events whose published lists are scored, at most (default 2000; "
        "0: no list evaluation)",
    )
    evaluate.add_argument(
        "--models",
        default=None,
        help="engagement candidates, comma-separated (default all: logistic,fm,tree)",
    )
    evaluate.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    evaluate.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="also write a report into DIR (created if missing): report.md, report.json, "
        "curve.csv and, with matplotlib (pip install 'tunestream[report]'), PNG plots",
    )
    evaluate.add_argument(
        "--published",
        action="store_true",
        help="also plan the log with the worker's own planner (TUNESTREAM_* settings) and "
        "score the lists it would publish: what replay --score reads back at --speed 1",
    )

    replay = sub.add_parser(
        "replay",
        help="publish a listening log through the running pipeline in event-time order "
        "(times re-based to now, scaled by --speed); with --score, read the published lists "
        "back and score them as evaluate does",
    )
    replay.add_argument("log", nargs="+", help="log file(s) or folder")
    replay.add_argument(
        "--format",
        choices=("jsonl", "lastfm", "lastfm-csv", "movielens", "mssd"),
        default="jsonl",
        help="the log's format (default jsonl; see the README for each mapping rule)",
    )
    replay.add_argument("--catalog", default=None, help="a tunestream catalog (CSV or JSON Lines)")
    replay.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        help="divide the log's gaps by this and send each event at its new time (default 1)",
    )
    replay.add_argument(
        "--max",
        action="store_true",
        help="send as fast as possible (event times still spaced by --speed; the last at now)",
    )
    replay.add_argument(
        "--start-ms",
        type=_positive_int,
        default=None,
        help="event time of the first event (paced) or the last (--max); default now "
        "(a rerun with the printed value repeats the same times)",
    )
    replay.add_argument("--score", action="store_true", help="read the lists back and score them")
    replay.add_argument(
        "--compare",
        action="store_true",
        help="with --score, also score the worker's planner run in process on the same events",
    )
    replay.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        help="most seconds to read lists back after the last event (default 120)",
    )
    replay.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    _add_setting(replay, "broker")
    _add_setting(replay, "refresh_interval_s", type=_positive_float)

    report = sub.add_parser(
        "report",
        help="write the evidence into DIR: report.md (headline table, sections with captioned "
        "PNG plots), report.json; from --json files of evaluate, bench and simulate "
        "--closed-loop (the evaluation is run here when not given)",
    )
    report.add_argument("--out", required=True, metavar="DIR", help="folder (created if missing)")
    report.add_argument(
        "--evaluation", metavar="FILE", help="`tunestream evaluate --json` output (default: run)"
    )
    report.add_argument(
        "--bench", metavar="FILE", help="`tunestream bench --json` output (default: none)"
    )
    report.add_argument(
        "--closed-loop",
        metavar="FILE",
        help="`tunestream simulate --closed-loop --json` output (default: none)",
    )
    report.add_argument(
        "--events",
        type=_at_least(100),
        default=10_000,
        help="simulated events evaluated when --evaluation is not given (default 10000)",
    )

    broker = sub.add_parser("broker", help="run the embedded Tansu broker in the foreground")
    broker.add_argument(
        "--port", type=_port, default=9092, help="loopback port (default 9092; 0: any free port)"
    )
    _add_setting(broker, "partitions", type=_positive_int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tunestream`` console script."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    # Client commands report broker failures in one line of their own.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return command(args)
    except KeyboardInterrupt:
        return 130
    except (SettingsError, CliError) as exc:
        _report(args.command, str(exc))
        return EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_FAILURE
    except (OSError, TimeoutError) as exc:
        _report(args.command, str(exc) or type(exc).__name__)
        return EXIT_FAILURE
    except Exception as exc:
        module = type(exc).__module__
        if module.startswith("streams.kafka.broker"):
            _report(args.command, str(exc))
            return EXIT_FAILURE
        if module.startswith(("aiokafka", "kafka")):
            _report(args.command, f"Kafka: {exc}")
            return EXIT_FAILURE
        raise


def _report(command: str, message: str) -> None:
    """One line on stderr, whatever the message holds (a log tail, say)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " | ".join(lines) or "failed"
    if len(text) > 2000:
        text = text[:2000] + " ..."
    print(f"tunestream {command}: error: {text}", file=sys.stderr)


def _need_broker(settings: Settings) -> Settings:
    if settings.embedded:
        raise CliError(
            "no broker: set --broker / TUNESTREAM_BROKER to host:port "
            "(start one with 'tunestream broker')"
        )
    return settings


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.kafka.broker import EmbeddedBroker
    from streams.worker.run import run_worker

    settings = _settings(args)
    check_can_listen(settings.web_host, settings.web_port)
    if not settings.embedded:
        return run_worker(settings)
    with EmbeddedBroker() as broker:
        print(f"embedded broker at {broker.bootstrap_servers}", file=sys.stderr, flush=True)
        return run_worker(settings.replace(broker=broker.bootstrap_servers))


def cmd_learner(args: argparse.Namespace) -> int:
    from online_models.snapshot import SnapshotKeyError, load_key
    from streams.kafka.topics import ensure_topics
    from streams.ops.logs import configure_logging
    from streams.worker.learner import run_learner

    settings = _need_broker(_settings(args))
    try:
        key = load_key(settings.snapshot_key, settings.snapshot_key_file)
    except SnapshotKeyError as exc:
        raise CliError(str(exc)) from None
    check_can_listen(settings.web_host, settings.learner_web_port)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(ensure_topics(settings))
    asyncio.run(run_learner(settings, key))
    return 0


def check_can_listen(host: str, port: int) -> None:
    """Fail in one line, before a worker starts, if its web server could not listen.

    Binds a socket to ``(host, port)`` the way the web server will (with
    SO_REUSEADDR), then releases it.
    """
    where = f"TUNESTREAM_WEB_HOST={host!r}, TUNESTREAM_WEB_PORT={port}"
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise CliError(f"TUNESTREAM_WEB_HOST={host!r} does not resolve ({reason})") from None
    from streams.kafka.broker import bind_problem

    for family, kind, _, _, address in addresses:
        problem = bind_problem(address, family, kind)
        if problem == "in use":
            raise CliError(
                f"port {port} on {host} is in use ({where}); stop what holds it or "
                "choose another with --web-port"
            )
        if problem is not None:
            raise CliError(f"cannot listen on {address[0]}:{port} ({where}): {problem}")


def _checked_file(load: Callable[[str], list[Loaded]], path: str) -> list[Loaded]:
    """Every line of ``path`` checked by ``load`` before anything is sent; one-line errors."""
    try:
        return load(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_catalog(args: argparse.Namespace) -> int:
    from features import load_catalog
    from streams.tools.publish import publish_catalog

    tracks = _checked_file(load_catalog, args.file)
    settings = _need_broker(_settings(args))
    sent = asyncio.run(publish_catalog(settings, (t.to_record() for t in tracks)))
    print(f"published {sent} tracks to {settings.catalog_topic}", file=sys.stderr)
    return 0


def cmd_editorial(args: argparse.Namespace) -> int:
    from features import load_editorial
    from streams.tools.publish import publish_editorial

    sets = _checked_file(load_editorial, args.file)
    settings = _need_broker(_settings(args))
    sent = asyncio.run(publish_editorial(settings, sets))
    print(f"published {sent} editorial sets to {settings.editorial_topic}", file=sys.stderr)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.tools.publish import produce_lines

    settings = _need_broker(_settings(args))
    if args.file == "-":
        return asyncio.run(produce_lines(sys.stdin.buffer, settings, strict=args.strict))
    try:
        stream = open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    with stream:
        return asyncio.run(produce_lines(stream, settings, strict=args.strict))


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.tools.closed_loop_cmd import CLOSED_LOOP_FLAGS, run_command
    from streams.tools.closed_loop_live import LiveLoopError
    from streams.tools.publish import simulate

    if args.closed_loop:
        try:
            return run_command(args, _settings(args))
        except LiveLoopError as exc:
            raise CliError(str(exc)) from None
    for name in CLOSED_LOOP_FLAGS:
        if getattr(args, name) not in (None, False):
            raise SettingsError(f"--{name} needs --closed-loop")
    settings = _need_broker(_settings(args))
    return asyncio.run(
        simulate(
            settings,
            rate=args.rate,
            events=args.events,
            duration_s=args.duration,
            users=args.users,
            tracks=args.tracks,
            seed=args.seed,
            paced=not args.as_fast_as_possible,
        )
    )


def cmd_tail(args: argparse.Namespace) -> int:
    from streams.tools.publish import UnknownTopic, tail

    settings = _need_broker(_settings(args))
    try:
        return asyncio.run(
            tail(
                settings,
                args.topic,
                from_beginning=args.from_beginning,
                max_messages=args.max,
                idle_timeout_s=args.timeout,
            )
        )
    except UnknownTopic as exc:
        raise CliError(str(exc)) from None


def cmd_features(args: argparse.Namespace) -> int:
    import json

    kind = "tracks" if args.track else "users"
    answer = _worker_answer(args, f"{kind}/{_quoted(args.user_id)}/features")
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


def cmd_recs(args: argparse.Namespace) -> int:
    import json

    from streams.tools.console import explain_table, list_table

    query = "?explain=1" if args.explain else ""
    answer = _worker_answer(args, f"users/{_quoted(args.user_id)}/recommendations{query}")
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    print(list_table(answer))
    if args.explain and answer.get("explain"):
        print(explain_table(answer["explain"]))
    return 0


def _quoted(key: str) -> str:
    import urllib.parse

    return urllib.parse.quote(key, safe="")


def _worker_answer(args: argparse.Namespace, path: str) -> Any:
    """GET ``path`` from the worker ``--url`` (or the settings) names, as parsed JSON."""
    import http.client
    import json
    import urllib.error
    import urllib.request

    settings = _settings(args)
    base = (args.url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    _check_url(base, "--url" if args.url else "TUNESTREAM_WEB_HOST/TUNESTREAM_WEB_PORT")
    url = f"{base}/{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise CliError(f"{url}: {exc.code} {_error_detail(exc)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise CliError(f"no worker answers at {base} ({reason})") from None
    try:
        return json.loads(body)
    except ValueError:
        raise CliError(f"{url}: the answer is not JSON; is {base} a tunestream worker?") from None


def _check_url(url: str, source: str) -> None:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        raise CliError(f"{source}: {url!r} has a bad port ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{source}: {url!r} is not a web address like http://HOST:PORT")


def _error_detail(exc: Any) -> str:
    """The worker's ``{"error": ...}`` sentence, else the HTTP reason (a body may be any text)."""
    import json

    try:
        parsed = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return parsed["error"]
    return str(exc.reason)


def cmd_broker(args: argparse.Namespace) -> int:
    from streams.kafka.broker import EmbeddedBroker, check_port_free
    from streams.kafka.topics import ensure_topics

    settings = _settings(args)
    check_port_free("127.0.0.1", args.port)  # Tansu would panic, in many lines
    with EmbeddedBroker(port=args.port) as broker:
        address = broker.bootstrap_servers
        asyncio.run(ensure_topics(settings.replace(broker=address)))
        print(
            f"Tansu broker listening on {address} (pid {broker.pid}); Ctrl-C stops it.\n"
            f"  export TUNESTREAM_BROKER={address}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            _wait_for_signal()
    return 0


def _wait_for_signal() -> None:
    """Sleep until Ctrl-C or SIGTERM (both end as KeyboardInterrupt)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    while True:
        time.sleep(3600)


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.tools.demo import run_demo

    settings = _settings(args)
    return run_demo(
        settings,
        duration_s=args.duration,
        rate=args.rate,
        users=args.users,
        seed=args.seed,
        bad_ratio=args.bad_ratio,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from streams.tools.bench import BenchError, BenchOptions, print_tables, run_bench
    from streams.tools.console import Reporter

    settings = _settings(args)  # checked before anything starts
    options = BenchOptions(
        events=args.events,
        latency=not args.skip_latency,
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        profile=args.profile,
    )
    _stop_on_signals()
    try:
        result = run_bench(settings, options, Reporter())
    except BenchError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result, sys.stdout)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from streams.tools.console import Reporter
    from streams.tools.verify import SCENARIO_NAMES, format_table, run_suite, to_json

    unknown = [name for name in args.scenario or () if name not in SCENARIO_NAMES]
    if unknown:
        raise SettingsError(
            f"--scenario {unknown[0]!r} is not a scenario; one of {', '.join(SCENARIO_NAMES)}"
        )
    settings = _settings(args)  # checked before anything starts
    _stop_on_signals()
    results = run_suite(settings, args.scenario, seed=args.seed, reporter=Reporter(prefix="verify"))
    if args.json:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(format_table(results))
    failed = [result.name for result in results if not result.ok]
    if failed:
        raise CliError(f"{len(failed)} of {len(results)} scenarios failed: {', '.join(failed)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from online_models.engagement import CANDIDATES
    from streams.tools.evaluate import EvaluateOptions, evaluate, print_report
    from streams.tools.loaders import LoaderError

    known = tuple(CANDIDATES)
    models = known if args.models is None else _model_names(args.models, known)
    report_dir = None
    if args.report is not None:  # checked before the replay, which can take minutes
        from streams.tools.eval_report import NO_PLOTS, ReportError, prepare_dir, write_report

        try:
            report_dir = prepare_dir(args.report)
        except ReportError as exc:
            raise SettingsError(f"--report {exc}") from None
    options = EvaluateOptions(
        log=tuple(args.log),
        fmt=args.format,
        catalog=args.catalog,
        simulated_events=args.events,
        models=models,
        list_samples=args.list_samples,
        published=_settings(args) if args.published else None,
    )
    try:
        report = evaluate(options)
    except LoaderError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, sys.stdout)
    if report_dir is not None:  # on stderr, so stdout stays the tables or the JSON
        written = write_report(report, report_dir)
        print(f"evaluate: report written to {written[1]}", file=sys.stderr)
        if not any(path.suffix == ".png" for path in written):
            print(f"evaluate: {NO_PLOTS}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import json

    from streams.tools.replay import ReplayError, ReplayOptions, print_report, run_replay

    if args.compare and not args.score:
        raise SettingsError("--compare needs --score")
    settings = _settings(args)  # checked before anything starts
    options = ReplayOptions(
        log=tuple(args.log),
        fmt=args.format,
        catalog=args.catalog,
        speed=args.speed,
        as_fast_as_possible=args.max,
        start_ms=args.start_ms,
        score=args.score,
        compare=args.compare,
        timeout_s=args.timeout,
    )
    _stop_on_signals()
    try:
        report = run_replay(settings, options)
    except ReplayError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, sys.stdout)
    return 130 if report["interrupted"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    from streams.tools.eval_report import ReportError, prepare_dir
    from streams.tools.plots import NO_PLOTS
    from streams.tools.report import ReportOptions, make_report

    try:
        prepare_dir(args.out)  # a bad folder is a bad argument, refused first
    except ReportError as exc:
        raise SettingsError(f"--out {exc}") from None
    options = ReportOptions(
        out=args.out,
        evaluation=args.evaluation,
        bench=args.bench,
        closed_loop=args.closed_loop,
        events=args.events,
    )
    try:
        written = make_report(options)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    print(f"report: written to {written[1]}", file=sys.stderr)
    if not any(path.suffix == ".png" for path in written):
        print(f"report: {NO_PLOTS}", file=sys.stderr)
    return 0


def _model_names(text: str, known: Sequence[str]) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise CliError(
            f"--models: unknown engagement model {', '.join(unknown) or '(none)'}; "
            f"known: {', '.join(known)}"
        )
    return names


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """SIGTERM and Ctrl-C raise KeyboardInterrupt wherever the command is, so it stops
    the broker and workers it started on the way out. Our own SIGINT handler also keeps
    ``asyncio.run`` from installing its own, which only cancels the running task: a
    client library that swallows the cancellation would lose the Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "worker": cmd_worker,
    "learner": cmd_learner,
    "produce": cmd_produce,
    "catalog": cmd_catalog,
    "editorial": cmd_editorial,
    "simulate": cmd_simulate,
    "tail": cmd_tail,
    "broker": cmd_broker,
    "features": cmd_features,
    "recs": cmd_recs,
    "bench": cmd_bench,
    "verify": cmd_verify,
    "report": cmd_report,
    "evaluate": cmd_evaluate,
    "replay": cmd_replay,
}
