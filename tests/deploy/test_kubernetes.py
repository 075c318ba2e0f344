"""The Kubernetes manifests: what kustomize would apply, read as YAML."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings, env_name

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc
    for resource in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((K8S / resource).read_text())
]


def kind(name: str) -> list[dict[str, Any]]:
    return [doc for doc in DOCS if doc["kind"] == name]


def worker() -> dict[str, Any]:
    (statefulset,) = kind("StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_kustomization_lists_every_manifest_in_the_folder() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == on_disk


def test_each_worker_gets_its_own_volume_for_rocksdb() -> None:
    (statefulset,) = kind("StatefulSet")
    claims = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in worker()["volumeMounts"]}
    assert claims[0]["metadata"]["name"] == "data"
    env = {e["name"]: e.get("value") for e in worker()["env"]}
    assert mounts["data"] == env["TUNESTREAM_DATA_DIR"]
    (config,) = kind("ConfigMap")
    assert config["data"]["TUNESTREAM_STORE"] == "rocksdb://"


def test_probes_use_livez_and_readyz_on_the_named_port() -> None:
    container = worker()
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    port = container["ports"][0]
    assert port["name"] == container["livenessProbe"]["httpGet"]["port"]
    assert port["containerPort"] == Settings().web_port


def test_worker_has_resource_limits_and_runs_as_non_root() -> None:
    container = worker()
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    (statefulset,) = kind("StatefulSet")
    pod_security = statefulset["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_tunestream_variable_is_a_setting() -> None:
    (config,) = kind("ConfigMap")
    names = set(config["data"]) | {e["name"] for e in worker()["env"]}
    known = {env_name(f.name) for f in fields(Settings)}
    assert {n for n in names if n.startswith("TUNESTREAM_")} <= known
    Settings.from_env({k: str(v) for k, v in config["data"].items()})


def test_secrets_are_mounted_as_files_never_written_in_a_manifest() -> None:
    assert not kind("Secret"), "secrets are created out of band, not committed"
    env = {e["name"]: e.get("value") for e in worker()["env"]}
    assert "TUNESTREAM_SASL_PASSWORD" not in env
    assert env["TUNESTREAM_SASL_PASSWORD_FILE"].startswith("/var/run/secrets/")


def test_prometheus_finds_the_workers_by_servicemonitor_and_by_annotations() -> None:
    (monitor,) = kind("ServiceMonitor")
    selected = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in kind("Service") if selected.items() <= s["metadata"]["labels"].items()]
    assert len(scraped) == 1, "exactly one Service is scraped, or every sample counts twice"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (statefulset,) = kind("StatefulSet")
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(Settings().web_port)


def test_table_routing_reaches_each_pod_by_its_stable_name() -> None:
    (statefulset,) = kind("StatefulSet")
    headless = [s for s in kind("Service") if s["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == [statefulset["spec"]["serviceName"]]
    env = {e["name"]: e.get("value") for e in worker()["env"]}
    assert env["TUNESTREAM_ADVERTISED_HOST"] == f"$(POD_NAME).{statefulset['spec']['serviceName']}"
