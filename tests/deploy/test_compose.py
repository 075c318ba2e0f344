"""docker-compose.yml is checked here, since no Docker engine runs in CI.

What would break ``docker compose up`` without anyone noticing: an image tag that
floats, a command the CLI does not have, a setting the worker does not read, a
topic name that differs from the workers' defaults, a port open beyond loopback.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kafka.topics import topic_specs
from streams.settings import Settings, env_name
from streams.tools.cli import build_parser

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TUNESTREAM = [name for name, s in SERVICES.items() if s.get("image", "").startswith("tunestream:")]


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+", image), f"{name}: {image} is not pinned"


def test_the_stack_has_kafka_two_workers_a_simulator_prometheus_and_grafana() -> None:
    images = {name: s["image"].split(":")[0] for name, s in SERVICES.items()}
    assert images["kafka"] == "apache/kafka"
    assert {"worker-1", "worker-2", "simulator"} <= set(TUNESTREAM)
    assert images["prometheus"] == "prom/prometheus" and images["grafana"] == "grafana/grafana"


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert not any("zookeeper" in name for name in SERVICES)


@pytest.mark.parametrize("name", TUNESTREAM)
def test_every_tunestream_command_parses_with_the_cli(name: str) -> None:
    command = SERVICES[name]["command"]
    args = build_parser().parse_args(command)
    assert args.command == command[0]


@pytest.mark.parametrize("name", TUNESTREAM)
def test_every_tunestream_variable_is_a_setting_and_a_valid_value(name: str) -> None:
    env = {k: str(v) for k, v in SERVICES[name].get("environment", {}).items()}
    known = {env_name(f.name) for f in fields(Settings)}
    assert set(env) <= known, f"{name} sets unknown variables {set(env) - known}"
    Settings.from_env(env)  # raises SettingsError on a bad value


def test_workers_wait_for_kafka_and_topics_and_advertise_their_own_host() -> None:
    for name in ("worker-1", "worker-2"):
        worker = SERVICES[name]
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert worker["depends_on"]["topic-init"]["condition"] == ("service_completed_successfully")
        assert worker["environment"]["TUNESTREAM_ADVERTISED_HOST"] == worker["hostname"]


def test_topic_init_creates_every_topic_the_workers_use_with_compaction_where_needed() -> None:
    script = SERVICES["topic-init"]["command"][0]
    created = {}
    for line in script.splitlines():
        words = shlex.split(line.strip())
        if words[:1] == ["create"]:
            created[words[1]] = " ".join(words[2:])
    specs = topic_specs(Settings())
    assert set(created) == {spec.name for spec in specs}
    for spec in specs:
        assert ("cleanup.policy=compact" in created[spec.name]) == spec.compacted, spec.name


def test_every_published_port_is_bound_to_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_mounted_file_exists_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
