"""Every mistake a user can make on the command line gets one line and a non-zero exit.

Each case runs ``main()`` in-process: a traceback would escape as an exception
and fail the test; the stderr must be exactly one ``tunestream ...: error:`` line.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.tools.cli import main
from tests.unit.test_cli import run_cli

TIMING_SETTINGS = [
    "SESSION_TIMEOUT_S",
    "COMMIT_INTERVAL_S",
    "REBALANCE_TIMEOUT_S",
    "STALL_AFTER_S",
    "LATENCY_OBJECTIVE_S",
    "REFRESH_INTERVAL_S",
    "POPULARITY_HALF_LIFE_S",
]


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors exit from inside main()
        code = exit_.code
    err = capsys.readouterr().err
    assert code not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tunestream {argv[0]}: error: "), err
    return lines[0]


@pytest.mark.parametrize("broker", ["host:notaport", ":::", "127.0.0.1:99999"])
def test_a_broker_address_that_cannot_be_one_is_named(
    capsys: pytest.CaptureFixture[str], broker: str
) -> None:
    line = one_line_error(capsys, ["tail", "recommendations", "--broker", broker])
    assert f"TUNESTREAM_BROKER={broker!r}" in line


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "bogus", "use one of DEBUG, INFO"),
        ("WEB_PORT", "70000", "0..65535"),
        *[
            (name, v, "must be a finite number > 0")
            for name in TIMING_SETTINGS
            for v in ("nan", "inf", "0", "-1")
        ],
    ],
)
def test_a_setting_out_of_its_range_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(f"TUNESTREAM_{variable}", value)
    line = one_line_error(capsys, ["worker", "--broker", "127.0.0.1:1"])
    assert f"TUNESTREAM_{variable}=" in line and expected in line


def test_a_binary_sasl_password_file_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"\xff\xfe\x00binary")
    monkeypatch.setenv("TUNESTREAM_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("TUNESTREAM_SASL_USERNAME", "me")
    monkeypatch.setenv("TUNESTREAM_SASL_PASSWORD_FILE", str(secret))
    line = one_line_error(capsys, ["tail", "recommendations", "--broker", "127.0.0.1:1"])
    assert "is not UTF-8 text" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"track_id,artist_id\nt1,a1\nt2," + b"x" * 140_000 + b"\n", ":3: CSV: field larger"),
        (b"track_id,artist_id\nt1,a1\nt2,\xe9\n", ":3: not UTF-8 text"),
    ],
)
def test_a_catalog_that_cannot_be_read_names_its_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, expected: str
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(content)
    line = one_line_error(capsys, ["catalog", str(catalog), "--broker", "127.0.0.1:1"])
    assert f"{catalog}{expected}" in line


def test_a_features_url_that_is_not_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["features", "u1", "--url", "garbage"])
    assert "--url: 'garbage' is not a web address" in line


def test_an_empty_features_id_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "must not be empty" in one_line_error(capsys, ["features", ""])


class _NotJson(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>not found</html>"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotJson)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_404_that_is_not_json_is_one_line(
    capsys: pytest.CaptureFixture[str], html_server: str
) -> None:
    line = one_line_error(capsys, ["features", "u1", "--url", html_server])
    assert ": 404 Not Found" in line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_web_port_in_use_is_named_before_the_worker_starts(
    capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    argv = ["worker", "--broker", "127.0.0.1:1", "--web-port", str(busy_port)]
    assert f"port {busy_port} on 127.0.0.1 is in use" in one_line_error(capsys, argv)


def test_an_unresolvable_web_host_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNESTREAM_WEB_HOST", "no-such-host.invalid")
    line = one_line_error(capsys, ["worker", "--broker", "127.0.0.1:1"])
    assert "TUNESTREAM_WEB_HOST='no-such-host.invalid' does not resolve" in line


def test_broker_on_a_port_in_use_is_one_line_not_a_rust_panic(busy_port: int) -> None:
    result = run_cli("broker", "--port", str(busy_port))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"tunestream broker: error: port {busy_port} on 127.0.0.1 is in use; "
        "stop what holds it or choose another with --port"
    )


@pytest.mark.parametrize("ratio", ["1.5", "-0.1", "nan"])
def test_demo_bad_ratio_must_be_a_share(capsys: pytest.CaptureFixture[str], ratio: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--bad-ratio", ratio])
    assert exit_.value.code == 2
    assert "is not a share in [0, 1]" in capsys.readouterr().err


def test_an_invalid_topic_name_fails_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tail", "bad topic!"])
    assert exit_.value.code == 2
    assert "a topic name is 1-249 letters" in capsys.readouterr().err


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("tunestream ")


def test_an_unknown_engagement_model_is_named_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = one_line_error(capsys, ["evaluate", "--models", "logistic,deep"])
    assert "unknown engagement model deep; known: logistic, fm, tree" in message


def test_a_log_line_that_is_not_an_event_is_named_by_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"event_id": "e1"}\n')
    message = one_line_error(capsys, ["evaluate", str(log)])
    assert f"{log}:1" in message
