"""``tunestream bench``'s pure parts: percentiles, rates, messages, profile stages, tables, flags.

The measurements themselves run in tests/integration/test_bench.py.
"""

from __future__ import annotations

import io

import orjson
import pytest

from streams.tools.bench import (
    DECODE,
    FAUST,
    FAUST_PRODUCER,
    FEATURES,
    INGEST_FAUST,
    SENDS,
    STAGE_ORDER,
    STATE,
    TABLE,
    TRACK_AGENT,
    BenchOptions,
    classify,
    drain_rate,
    figure_rows,
    messages_of,
    percentile,
    print_tables,
    profile_rows,
    stage_shares,
)
from streams.tools.cli import main
from streams.tools.console import Reporter, format_plain
from streams.tools.state_size import first_active_user


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 201))  # 1..200
    assert percentile(values, 50) == 100
    assert percentile(values, 99) == 198
    assert percentile(values, 100) == 200
    assert percentile(values, 0) == 1
    assert percentile([3, 1, 2], 50) == 2  # order does not matter
    assert percentile([42], 99) == 42


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_refuses_a_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1, 2], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_drain_rate_counts_the_events_after_the_first_message() -> None:
    # 4 messages of 50 events, one every 0.1 s: 150 events in 0.3 s.
    points = [(100.0 + i / 10, 50) for i in range(4)]
    assert drain_rate(reversed(points)) == pytest.approx(500.0)
    assert drain_rate([(1.0, 1), (1.0, 1)]) == 0.0  # same instant: cannot be timed
    assert drain_rate([]) == 0.0


def test_messages_keep_each_users_order_and_size() -> None:
    events = [{"user_id": f"u{i % 3}", "event_id": f"e{i}"} for i in range(100)]
    batched = messages_of(events, 50)
    decoded = [(key, orjson.loads(value)) for key, value in batched]
    assert sum(len(batch) for _, batch in decoded) == 100
    for key, batch in decoded:
        assert 1 <= len(batch) <= 50
        assert {e["user_id"] for e in batch} == {key.decode()}
    for user in ("u0", "u1", "u2"):
        ids = [e["event_id"] for key, b in decoded if key == user.encode() for e in b]
        assert ids == [e["event_id"] for e in events if e["user_id"] == user]
    single = messages_of(events, 1)
    assert len(single) == 100
    assert isinstance(orjson.loads(single[0][1]), dict)  # one event: a bare object
    with pytest.raises(ValueError):
        messages_of(events, 0)


def test_first_active_user_needs_someone_to_get_there() -> None:
    with pytest.raises(ValueError, match="no user reached 3"):
        first_active_user([{"user_id": "a"}, {"user_id": "b"}], 3)


def frames(*names: str) -> list[str]:
    return [f"{name} ({path}:1)" for name, path in (n.split("@") for n in names)]


LOOP = "BaseEventLoop._run_once@asyncio/base_events.py"
INGEST = "Worker.ingest@streams/worker/app.py"
HANDLE = "Worker.handle@streams/worker/app.py"


@pytest.mark.parametrize(
    ("stack", "stage"),
    [
        (
            frames(LOOP, INGEST, HANDLE, "MessagePlanner.plan@streams/pipeline/message.py",
                   "ingest_message@streams/pipeline/ingest.py",
                   "EventDecoder.check@streams/contracts/events.py"),
            DECODE,
        ),
        (
            frames(LOOP, INGEST, HANDLE, "ingest_message@streams/pipeline/ingest.py",
                   "UserFeatures.update@features/user.py"),
            FEATURES,
        ),
        (
            frames(LOOP, INGEST, HANDLE, "UserState.to_state@streams/state/keyed_state.py",
                   "UserFeatures.to_state@features/user.py"),
            STATE,
        ),
        (
            frames(LOOP, INGEST, HANDLE, "Worker._apply@streams/worker/app.py",
                   "ChangelogWriter.put@streams/kafka/direct.py",
                   "DirectSender.send@streams/kafka/direct.py",
                   "AIOKafkaProducer.send@aiokafka/producer/producer.py"),
            TABLE,
        ),
        (
            frames(LOOP, INGEST, HANDLE, "Worker._send@streams/worker/app.py",
                   "AIOKafkaProducer.send@aiokafka/producer/producer.py"),
            SENDS,
        ),
        (frames(LOOP, INGEST, "Stream.events@faust/streams.py"), INGEST_FAUST),
        (
            frames(LOOP, "Worker.track_stats@streams/worker/app.py",
                   "UserState.to_state@streams/state/keyed_state.py"),
            TRACK_AGENT,
        ),
        (
            frames(LOOP, "ProducerBuffer._send_pending@faust/transport/producer.py",
                   "Topic.publish_message@faust/topics.py"),
            FAUST_PRODUCER,
        ),
        (frames(LOOP, "Fetcher._fetcher@faust/transport/consumer.py"), FAUST),
    ],
)  # fmt: skip
def test_a_sampled_stack_lands_in_its_stage(stack: list[str], stage: str) -> None:
    assert classify(stack) == stage


def test_stage_shares_add_up_and_list_every_stage() -> None:
    decode = ";".join(frames(LOOP, INGEST, "EventDecoder.decode@streams/contracts/events.py"))
    fetch = ";".join(frames(LOOP, "Fetcher._fetcher@faust/transport/consumer.py"))
    shares, samples = stage_shares(f"{decode} 3\n{fetch} 1\nnot a line\n\n")
    assert samples == 4
    assert list(shares) == list(STAGE_ORDER)
    assert shares[DECODE] == 0.75
    assert shares[FAUST] == 0.25
    assert sum(shares.values()) == pytest.approx(1.0)
    assert stage_shares("") == (dict.fromkeys(STAGE_ORDER, 0.0), 0)


RESULT = {
    "events": 20_000,
    "batch_events": 50,
    "events_per_s_single": 3412.6,
    "events_per_s_single_learning_off": 4000.0,
    "learning_cost_share": 0.147,
    "events_per_s_single_exploration_off": 3600.0,
    "exploration_cost_share": 0.05,
    "learner_examples_per_s": 8123.0,
    "events_per_s_batched": 9876.5,
    "faust_noop_messages_per_s": 7000.0,
    "single_vs_noop_ratio": 0.488,
    "latency_p50_ms": 148.0,
    "latency_p99_ms": 172.0,
    "latency_rate": 1000.0,
    "latency_duration_s": 20.0,
    "latency_lists": 4321,
    "bytes_per_user": 1861,
    "bytes_per_user_squeezed": 4884,
    "ready_s": 4.6,
    "ready_s_each": [4.5, 4.6, 4.9],
    "cpu_count": 2,
    "python_version": "3.11.7",
    "platform": "Linux x86_64",
}


def test_figure_rows_show_every_figure_once() -> None:
    rows = dict((figure, value) for figure, value, _ in figure_rows(RESULT))
    assert rows["events/s, 1 event per message"] == "3,413"
    assert rows["events/s, 50 events per message"] == "9,876"
    assert rows["Faust no-op agent, messages/s"] == "7,000"
    assert rows["events/s, 1 event per message, learning off"] == "4,000"
    assert rows["throughput learning costs"] == "15%"
    assert rows["learner, examples/s"] == "8,123"
    assert rows["single-event worker / no-op"] == "0.49"
    assert rows["end-to-end latency p50 / p99"] == "148 / 172 ms"
    assert rows["stored state per active user"] == "1,861 bytes"
    assert rows["stored state, dedupe memory full"] == "4,884 bytes"
    assert rows["worker start to /readyz 200"] == "4.6 s"
    assert rows["machine"] == "2 CPUs"
    skipped = dict(RESULT, latency_p50_ms=None, latency_p99_ms=None)
    assert dict((f, v) for f, v, _ in figure_rows(skipped))["end-to-end latency p50 / p99"] == (
        "skipped"
    )


def test_plain_tables_have_no_escape_codes_and_align() -> None:
    profile = {
        "samples": 1000,
        "worker_cpu_us_per_event": 300.0,
        "stages": dict.fromkeys(STAGE_ORDER, 1 / len(STAGE_ORDER)),
    }
    out = io.StringIO()
    print_tables(dict(RESULT, profile=profile), out)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "tunestream bench" in text and "where the worker's CPU goes" in text
    header, rule = text.splitlines()[1:3]
    assert header.startswith("figure") and set(rule) <= {"-", " "}
    assert len(profile_rows(profile)) == len(STAGE_ORDER)


def test_format_plain_pads_columns_to_the_widest_cell() -> None:
    text = format_plain(("a", "b"), [("xxx", "1"), ("y", "22")])
    assert text.splitlines() == ["a    b", "---  --", "xxx  1", "y    22"]


def test_reporter_off_a_terminal_prints_phases_only() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream)
    reporter.phase("single-event drain")
    reporter.progress("1 / 2")  # a live count is for terminals
    assert stream.getvalue() == "bench: single-event drain\n"


@pytest.mark.parametrize(
    "options",
    [{"events": 99}, {"batch_events": 0}, {"rate": 0.0}, {"duration_s": -1.0}],
)
def test_bench_options_refuse_what_cannot_be_measured(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BenchOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench", "--events", "99"], "'99' must be >= 100"),
        (["bench", "--events", "many"], "'many' is not a whole number"),
        (["bench", "--rate", "0"], "'0' must be > 0"),
        (["bench", "--duration", "soon"], "'soon' is not a number"),
        (["bench", "--partitions", "0"], "'0' must be > 0"),
        (["bench", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_a_bad_bench_argument_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(("tunestream bench: error: ", "tunestream: error: "))
    assert expected in lines[0]


def test_a_bad_setting_in_the_environment_stops_bench_before_anything_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNESTREAM_PARTITIONS", "lots")
    assert main(["bench", "--skip-latency"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["tunestream bench: error: TUNESTREAM_PARTITIONS='lots' is not a whole number"]
