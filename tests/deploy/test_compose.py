"""docker-compose.yml is checked here, since no Docker engine runs in CI.

What would break ``docker compose up`` without anyone noticing: an image tag that
floats, a command the CLI does not have, a setting the worker does not read, a
topic name or partition count that differs from the workers', a port open beyond
loopback, a second learner, a snapshot key that is not shared or is committed.
"""

from __future__ import annotations

import posixpath
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
from tests.deploy.keys import keys_in

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TUNESTREAM = [name for name, s in SERVICES.items() if s.get("image", "").startswith("tunestream:")]
WORKERS = ("worker-1", "worker-2")
KEY_FILE = "TUNESTREAM_SNAPSHOT_KEY_FILE"


def env_of(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[name].get("environment", {}).items()}


def mounts_of(name: str) -> dict[str, tuple[str, str]]:
    """Container path -> (source, options) of a service's short-syntax volumes."""
    mounts = {}
    for volume in SERVICES[name].get("volumes", []):
        source, target, *options = volume.split(":")
        mounts[target] = (source, ",".join(options))
    return mounts


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
    for name in WORKERS:
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
            created[words[1]] = words[2:]
    specs = topic_specs(Settings.from_env(env_of("worker-1")))
    assert set(created) == {spec.name for spec in specs}
    for spec in specs:
        options = created[spec.name]
        assert ("cleanup.policy=compact" in options) == spec.compacted, spec.name
        assert options.count("--partitions") == 1, f"{spec.name}: give --partitions once"
        partitions = options[options.index("--partitions") + 1]
        assert partitions == str(spec.partitions), f"{spec.name}: {partitions} partitions"
    (helper,) = [line for line in script.splitlines() if line.strip().startswith("create()")]
    assert "--partitions" not in helper, "each create line gives its topic's count"


def test_exactly_one_learner_runs_after_kafka_the_topics_and_the_key() -> None:
    learners = [name for name in TUNESTREAM if SERVICES[name]["command"][0] == "learner"]
    assert learners == ["learner"], "run exactly one learner per application"
    learner = SERVICES["learner"]
    assert "deploy" not in learner and "scale" not in learner, "never more than one replica"
    assert learner["restart"] == "unless-stopped"
    assert learner["depends_on"]["kafka"]["condition"] == "service_healthy"
    for init in ("topic-init", "key-init"):
        assert learner["depends_on"][init]["condition"] == "service_completed_successfully"
    assert learner["image"] == SERVICES["worker-1"]["image"]


def test_learner_listens_on_its_port_published_on_loopback_and_checked() -> None:
    env = env_of("learner")
    port = Settings.from_env(env).learner_web_port
    assert env["TUNESTREAM_WEB_HOST"] == "0.0.0.0", "reachable from Prometheus and the host"
    (published,) = SERVICES["learner"]["ports"]
    assert published.startswith("127.0.0.1:") and published.endswith(f":{port}")
    assert f"127.0.0.1:{port}/livez" in " ".join(SERVICES["learner"]["healthcheck"]["test"])


def test_every_published_host_port_is_distinct() -> None:
    host_ports = [
        str(port).rsplit(":", 1)[0] for s in SERVICES.values() for port in s.get("ports", [])
    ]
    assert len(host_ports) == len(set(host_ports)), f"clashing host ports: {host_ports}"


def test_learner_and_workers_read_the_same_key_file_from_a_read_only_volume() -> None:
    key_files = set()
    for name in ("learner", *WORKERS):
        env = env_of(name)
        assert "TUNESTREAM_SNAPSHOT_KEY" not in env, f"{name}: the key goes in a file"
        key_file = env[KEY_FILE]
        source, options = mounts_of(name)[posixpath.dirname(key_file)]
        assert source == "snapshot-key" and source in COMPOSE["volumes"], name
        assert "ro" in options.split(","), f"{name} mounts the key writable"
        key_files.add(key_file)
    assert len(key_files) == 1, f"learner and workers read different keys: {key_files}"
    for name in WORKERS:
        assert SERVICES[name]["depends_on"]["key-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_key_init_makes_a_random_key_once_in_the_volume_for_the_image_user() -> None:
    init = SERVICES["key-init"]
    assert init["restart"] == "no"
    (key_file,) = {env_of(name)[KEY_FILE] for name in ("learner", *WORKERS)}
    (target,) = [t for t, (source, _) in mounts_of("key-init").items() if source == "snapshot-key"]
    path = f"{target}/{posixpath.basename(key_file)}"
    script = init["command"][0]
    assert f"if [ ! -s {path} ]" in script, "an existing key is kept, not replaced"
    assert "/dev/urandom" in script
    user = re.search(r"^USER (\d+)", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    assert user is not None
    assert f"chown {user[1]}:{user[1]} {path}" in script, "the image's user must read it"
    assert f"chmod 0400 {path}" in script


def test_no_snapshot_key_is_written_in_the_stack() -> None:
    for path in (ROOT / "docker-compose.yml", ROOT / "deploy" / "prometheus" / "prometheus.yml"):
        assert not keys_in(path.read_text()), f"{path.name} holds a key"
    for name in TUNESTREAM:
        assert "TUNESTREAM_SNAPSHOT_KEY" not in env_of(name), name
    near = [*ROOT.glob("*"), *(ROOT / "deploy").rglob("*")]
    assert not [p for p in near if p.name.startswith(("snapshot-key", "snapshot.key"))]


def test_prometheus_scrapes_the_workers_and_the_learner_in_their_own_jobs() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    assert jobs["tunestream"] == [f"{name}:{Settings().web_port}" for name in WORKERS]
    port = Settings.from_env(env_of("learner")).learner_web_port
    assert jobs["tunestream-learner"] == [f"learner:{port}"]


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
