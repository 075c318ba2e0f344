"""A real Prometheus scrapes a real worker; every dashboard and alert query is answered.

Timeline::

    worker ready ──► simulated stream (with bad events) ──► Prometheus scrapes every 1 s
        ──► every panel query returns series; every rule evaluates with health "ok"

Prometheus is Debian's ``prometheus`` package (``make test`` installs it); the
rules file is loaded as it ships in ``deploy/``, so a query that does not parse
or names a metric the worker does not export fails here.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kafka.broker import free_port
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools.publish import corrupt
from streams.tools.simulator import Population, PopulationConfig
from tests.integration.harness import WorkerProcess

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# Grafana's built-in variables, as Grafana would expand them for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows included."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = list(dashboard.get("panels", []))
        while panels:
            panel = panels.pop()
            panels.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                if expr:
                    queries.append((panel.get("title", "?"), expr))
    return queries


class Prometheus:
    """A Prometheus server on a free loopback port scraping one target every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: run `make prometheus` (make test does)"
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULES],
            "scrape_configs": [
                {"job_name": "tunestream", "static_configs": [{"targets": [target]}]}
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def query(self, expr: str) -> list[Any]:
        answer = self.api("query", query=expr)
        assert answer["status"] == "success", (expr, answer)
        return list(answer["data"]["result"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path, target))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


async def stream_events(settings: Settings, n: int) -> None:
    """A seeded simulated stream with 2% malformed events, so the DLQ panels have data."""
    rng = random.Random(3)
    population = Population(PopulationConfig(seed=3, n_users=50, n_tracks=300))
    now_ms = int(time.time() * 1000)
    async with EventProducer(settings.bootstrap_servers, settings.events_topic) as producer:
        for event in population.take(n):
            event = {**event, "ts": min(event["ts"], now_ms)}
            if rng.random() < 0.02:
                await producer.publish_raw(corrupt(event, rng), key=event["user_id"].encode())
            else:
                await producer.publish(event)
            await asyncio.sleep(0.002)
        await producer.flush()


def test_prometheus_scrapes_a_worker_and_answers_every_dashboard_and_rule_query(
    settings: Settings, prometheus_for: Any, tmp_path: Path
) -> None:
    assert RULES and DASHBOARDS, "deploy/ has no rules or dashboards"
    # A learner too, so the model panels have a served snapshot's quality to show.
    settings = settings.replace(snapshot_key="p" * 40, snapshot_interval_s=1.0)
    learner = WorkerProcess(settings, tmp_path / "learner.log", role="learner").start()
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        check_every_query(settings, worker, prometheus_for)
    finally:
        worker.stop()
        learner.stop()


def serves_a_measured_snapshot(worker: WorkerProcess) -> bool:
    status, body = worker.get("/models")
    if status != 200:
        return False
    metrics = json.loads(body)["serving"]["metrics"]
    return (
        bool(metrics)
        and metrics["engagement"]["roc_auc"] is not None
        and (metrics["taste"]["hit_rate_at_10"] is not None)
    )


def check_every_query(settings: Settings, worker: WorkerProcess, prometheus_for: Any) -> None:
    wait_for(lambda: worker.get("/readyz")[0] == 200, 60, "the worker to be ready")
    prometheus = prometheus_for(f"127.0.0.1:{worker.web_port}")
    asyncio.run(stream_events(settings, 1500))
    wait_for(lambda: serves_a_measured_snapshot(worker), 60, "a snapshot with its quality")

    def scraped_events() -> bool:
        try:
            result = prometheus.query('sum(tunestream_events_total{outcome="ok"})')
        except OSError:
            return False  # the server is still starting
        return bool(result) and float(result[0]["value"][1]) > 1000

    wait_for(scraped_events, 60, "Prometheus to scrape the worker's events")
    time.sleep(5)  # a few more scrapes, so rate() windows hold several samples

    empty = [(title, expr) for title, expr in dashboard_queries() if not prometheus.query(expr)]
    assert dashboard_queries(), "the dashboards have no queries"
    assert empty == [], f"panels with no data: {empty}"

    groups = prometheus.api("rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == sum(
        len(group["rules"])
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
    ), "Prometheus did not load every rule"
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert unhealthy == [], unhealthy
    for rule in rules:  # each query also runs on its own, against the scraped data
        prometheus.query(rule["query"])
    recorded = [r["name"] for r in rules if r["type"] == "recording"]
    no_data = [name for name in recorded if not prometheus.query(name)]
    assert no_data == [], f"recording rules with no data: {no_data}"
    scraped_names = set(prometheus.api("label/__name__/values")["data"])
    queried = " ".join([r["query"] for r in rules] + [expr for _, expr in dashboard_queries()])
    named = set(re.findall(r"\btunestream_\w+", queried))
    assert named and named <= scraped_names, f"never scraped: {named - scraped_names}"
