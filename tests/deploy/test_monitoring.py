"""Prometheus rules and config, and the Grafana dashboard, checked offline.

``promtool`` (Debian's ``prometheus`` package; ``make test`` installs it) checks
syntax and runs the rule unit tests; the metric names in every query must be
ones the worker exports. tests/integration/test_prometheus.py then runs every
query against a real server scraping a real worker.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.ops.metrics import Metrics

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed: run `make prometheus` (make test does)"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=120)


def exported_names() -> set[str]:
    """Every sample name a worker's registry can expose, labelled series included."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "info": ["_info"],
    }
    registry = CollectorRegistry()
    Metrics(registry)
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def rule_queries() -> list[str]:
    return [
        rule["expr"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def panel_queries() -> list[str]:
    def walk(panels: list[dict]) -> list[str]:
        found = []
        for panel in panels:
            found += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
            found += walk(panel.get("panels", []))
        return found

    return [expr for path in DASHBOARDS for expr in walk(json.loads(path.read_text())["panels"])]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", *RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    # The config names the rules by their path inside the container; point it here.
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(path) for path in RULES]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", ["rules", "dashboards"])
def test_every_metric_a_query_names_is_exported_by_the_worker(source: str) -> None:
    queries = rule_queries() if source == "rules" else panel_queries()
    named = {name for q in queries for name in re.findall(r"\btunestream_\w+", q)}
    assert named, f"no tunestream metric in the {source}"
    assert named - exported_names() == set()


def test_every_alert_has_a_runbook_section_in_the_readme() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', readme)) | {
        re.sub(r"[^\w\- ]", "", title).strip().lower().replace(" ", "-")
        for title in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)
    }
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    runbook = rule["annotations"]["runbook"]
                    assert runbook.split("#")[1] in anchors, f"{rule['alert']}: {runbook}"
                    assert rule["labels"]["severity"] in {"page", "ticket", "warning"}


def test_dashboard_has_its_sections_and_uses_the_provisioned_datasource() -> None:
    (path,) = DASHBOARDS
    dashboard = json.loads(path.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Overview",
        "Data quality",
        "State and recovery",
        "Output",
        "Models",
        "List quality",
    ]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if p["type"] != "row"}
    assert uids == {datasource["uid"]}
