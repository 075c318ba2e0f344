"""The Kubernetes manifests: what kustomize would apply, read as YAML."""

from __future__ import annotations

import posixpath
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings, env_name
from streams.tools.cli import build_parser
from tests.deploy.keys import keys_in

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


def learner_deployment() -> dict[str, Any]:
    (deployment,) = kind("Deployment")
    return deployment


def learner() -> dict[str, Any]:
    (container,) = learner_deployment()["spec"]["template"]["spec"]["containers"]
    return dict(container)


def named(kind_name: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in kind(kind_name) if d["metadata"]["name"] == name]
    return doc


def env_of(container: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def secret_file(workload: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    """The secret volume that puts ``path`` into ``container``, with the key it reads."""
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == posixpath.dirname(path)]
    assert mount.get("readOnly") is True, f"{mount['name']} is mounted writable"
    volumes = workload["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    (item,) = [i for i in volume["secret"]["items"] if i["path"] == posixpath.basename(path)]
    return {**volume["secret"], "key": item["key"]}


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
    names = set(config["data"]) | {e["name"] for c in (worker(), learner()) for e in c["env"]}
    known = {env_name(f.name) for f in fields(Settings)}
    assert {n for n in names if n.startswith("TUNESTREAM_")} <= known
    Settings.from_env({k: str(v) for k, v in config["data"].items()})


def test_secrets_are_mounted_as_files_never_written_in_a_manifest() -> None:
    assert not kind("Secret"), "secrets are created out of band, not committed"
    env = {e["name"]: e.get("value") for e in worker()["env"]}
    assert "TUNESTREAM_SASL_PASSWORD" not in env
    assert env["TUNESTREAM_SASL_PASSWORD_FILE"].startswith("/var/run/secrets/")


def test_prometheus_finds_the_workers_by_servicemonitor_and_by_annotations() -> None:
    monitor = named("ServiceMonitor", "tunestream")
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


def test_exactly_one_learner_and_a_rollout_never_runs_two() -> None:
    deployment = learner_deployment()
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate", "RollingUpdate overlaps two"
    assert not kind("HorizontalPodAutoscaler")
    args = build_parser().parse_args(learner()["args"])
    assert args.command == "learner"
    assert learner()["image"] == worker()["image"]


def test_learner_listens_on_its_port_and_its_liveness_probe_uses_livez() -> None:
    container = learner()
    env = env_of(container)
    assert env["TUNESTREAM_WEB_HOST"] == "0.0.0.0"
    (port,) = container["ports"]
    settings = Settings.from_env({k: v for k, v in env.items() if v is not None})
    assert port["containerPort"] == settings.learner_web_port
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    annotations = learner_deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])


def test_learner_has_resource_limits_and_the_workers_security_context() -> None:
    container = learner()
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    (statefulset,) = kind("StatefulSet")
    pod_spec = learner_deployment()["spec"]["template"]["spec"]
    assert pod_spec["securityContext"] == statefulset["spec"]["template"]["spec"]["securityContext"]
    assert container["securityContext"] == worker()["securityContext"]


def test_learner_and_workers_read_the_same_key_from_a_secret_file() -> None:
    (statefulset,) = kind("StatefulSet")
    files = []
    for workload, container in ((learner_deployment(), learner()), (statefulset, worker())):
        env = env_of(container)
        assert "TUNESTREAM_SNAPSHOT_KEY" not in env, "the key comes as a file, not a value"
        path = env["TUNESTREAM_SNAPSHOT_KEY_FILE"]
        assert path is not None and path.startswith("/var/run/secrets/")
        secret = secret_file(workload, container, path)
        files.append((path, secret["secretName"], secret["key"]))
    assert files[0] == files[1], f"learner and workers read different keys: {files}"
    learner_secret = secret_file(learner_deployment(), learner(), files[0][0])
    assert learner_secret.get("optional", False) is False, "the learner cannot run without it"


def test_no_snapshot_key_is_written_in_a_manifest() -> None:
    assert not kind("Secret"), "secrets are created out of band, not committed"
    for path in K8S.iterdir():
        assert not keys_in(path.read_text()), f"{path.name} holds a key"


def test_learner_pods_are_apart_from_the_workers_services_and_budget() -> None:
    labels = learner_deployment()["spec"]["template"]["metadata"]["labels"]
    assert selects(learner_deployment()["spec"]["selector"]["matchLabels"], labels)
    (statefulset,) = kind("StatefulSet")
    assert not selects(statefulset["spec"]["selector"]["matchLabels"], labels)
    for service in kind("Service"):
        routed_here = selects(service["spec"]["selector"], labels)
        assert routed_here == (service["metadata"]["name"] == "tunestream-learner"), service
    for budget in kind("PodDisruptionBudget"):
        assert not selects(budget["spec"]["selector"]["matchLabels"], labels)


def test_prometheus_finds_the_learner_in_its_own_job() -> None:
    monitor = named("ServiceMonitor", "tunestream-learner")
    selected = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in kind("Service") if selects(selected, s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in scraped] == ["tunestream-learner"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (port,) = learner()["ports"]
    assert scraped[0]["spec"]["ports"][0]["targetPort"] == port["name"]
