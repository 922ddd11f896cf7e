"""deploy/: the compose file, the Kubernetes manifests, the Dockerfile and the provisioning
files parse and say what the runbook promises (probes, secrets, replicas, scrape config).

Validation, honestly: YAML parses (PyYAML); compose is loaded by compose-go, the loader of
`docker compose` itself, with its schema (deploy/scripts/composecheck); Kubernetes manifests
of built-in kinds are decoded strictly into the k8s.io/api types (deploy/scripts/k8scheck:
unknown fields, wrong types, unknown kinds fail). CRDs (PodMonitor, PrometheusRule) and
server-side rules (admission, defaults) are checked only structurally here.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bouncewire._flags import env_name
from bouncewire._unsubscribe import SECRET_ENV
from bouncewire.cli import build_parser
from tests.deploy.tools import DEPLOY, REPO_ROOT, require_tool

K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
RULES = DEPLOY / "prometheus" / "bouncewire-rules.yml"
METRICS_PORT = 9102
SECRET_WORDS = re.compile(r"URL|PASSWORD|USERNAME|SECRET|TOKEN", re.IGNORECASE)
CHECK_TIMEOUT_S = 120


def k8s_docs() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    [doc] = [d for d in k8s_docs() if d["kind"] == kind]
    return doc


def container() -> dict[str, Any]:
    [consumer] = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(consumer)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in subcommands(sub).items()})
    return found


def flag_env_vars(command: str) -> set[str]:
    """Every BOUNCEWIRE_* variable `bouncewire <command>` reads."""
    parser = subcommands(build_parser())[command]
    flags = {opt for action in parser._actions for opt in action.option_strings
             if opt.startswith("--") and opt != "--help"}
    extra = {"consume": {"BOUNCEWIRE_SASL_PASSWORD"}, "unsubscribe-server": {SECRET_ENV}}
    return {env_name(flag) for flag in flags} | extra.get(command, set())


def default_partitions(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.delenv("BOUNCEWIRE_PARTITIONS", raising=False)
    return int(build_parser().parse_args(["topics", "create"]).partitions)


# --- YAML everywhere ------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(
    [*DEPLOY.glob("k8s/*.yaml"), COMPOSE, *DEPLOY.glob("prometheus/*.yml"),
     *DEPLOY.glob("grafana/provisioning/*/*.yml")]), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


# --- compose ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose_project() -> dict[str, Any]:
    """deploy/compose.yaml as docker compose resolves it (every profile on)."""
    tool = require_tool("composecheck", package="composecheck")
    result = subprocess.run([tool, str(COMPOSE)], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_S, check=False,
                            env={"PATH": "/usr/bin:/bin"})  # no BOUNCE_CALLBACK_URL & co.
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_names_the_services(compose_project: dict[str, Any]) -> None:
    assert set(compose_project["services"]) == {
        "kafka", "topics", "consumer", "receiver", "unsubscribe", "prometheus", "grafana"}
    kafka = compose_project["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


def test_compose_consumer_serves_metrics_beyond_loopback(compose_project: dict[str, Any],
                                                         ) -> None:
    env = compose_project["services"]["consumer"]["environment"]
    assert env["BOUNCEWIRE_METRICS_HOST"] == "0.0.0.0"
    assert int(env["BOUNCEWIRE_METRICS_PORT"]) == METRICS_PORT
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] if job["job_name"] == "bouncewire-consumer"
               for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"consumer:{METRICS_PORT}"]


def test_compose_env_vars_are_real_flags(compose_project: dict[str, Any]) -> None:
    commands = {"consumer": "consume", "topics": "topics create", "receiver": "receiver",
                "unsubscribe": "unsubscribe-server"}
    for service, command in commands.items():
        env = compose_project["services"][service].get("environment") or {}
        unknown = {k for k in env if k.startswith("BOUNCEWIRE_")} - flag_env_vars(command)
        assert unknown == set(), service


def test_compose_mounts_and_build_point_at_files_in_the_repo(compose_project: dict[str, Any],
                                                             ) -> None:
    for name, service in compose_project["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"
        if "build" in service:
            build = service["build"]
            assert (Path(build["context"]) / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_holds_no_secret_values() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if SECRET_WORDS.search(key):
                assert str(value).startswith("${"), f"{name}.{key} must come from outside"


# --- Kubernetes ------------------------------------------------------------------------------

def test_k8s_builtin_kinds_decode_strictly() -> None:
    tool = require_tool("k8scheck", package="k8scheck")
    files = sorted(str(p) for p in K8S.glob("*.yaml"))
    result = subprocess.run([tool, *files], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    valid = {line.split(": ")[1] for line in result.stdout.splitlines() if "VALID" in line
             and "INVALID" not in line}
    assert {"apps/v1 Deployment", "policy/v1 PodDisruptionBudget", "v1 ConfigMap",
            "v1 Namespace"} <= valid


def test_k8s_checker_rejects_a_misspelt_field(tmp_path: Path) -> None:
    tool = require_tool("k8scheck", package="k8scheck")
    broken = tmp_path / "deployment.yaml"
    broken.write_text((K8S / "deployment.yaml").read_text().replace(
        "readinessProbe:", "readynessProbe:"))
    result = subprocess.run([tool, str(broken)], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_S, check=False)
    assert result.returncode == 1 and "readynessProbe" in result.stdout


def test_replicas_do_not_exceed_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    replicas = by_kind("Deployment")["spec"]["replicas"]
    assert 1 <= replicas <= default_partitions(monkeypatch)
    assert by_kind("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_probes_use_the_health_endpoints_on_the_metrics_port() -> None:
    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == METRICS_PORT
    paths = {probe: c[probe]["httpGet"]["path"] for probe in
             ("startupProbe", "livenessProbe", "readinessProbe")}
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                     "readinessProbe": "/readyz"}
    assert all(c[p]["httpGet"]["port"] == "metrics" for p in paths)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BOUNCEWIRE_METRICS_HOST"] == "0.0.0.0"
    assert int(env["BOUNCEWIRE_METRICS_PORT"]) == METRICS_PORT


def test_secrets_come_from_secret_refs() -> None:
    c = container()
    secret_env = {e["name"]: e for e in c["env"] if SECRET_WORDS.search(e["name"])}
    assert {"BOUNCEWIRE_BOUNCE_CALLBACK_URL", "BOUNCEWIRE_UNSUBSCRIBE_CALLBACK_URL",
            "BOUNCEWIRE_SASL_USERNAME", "BOUNCEWIRE_SASL_PASSWORD"} <= set(secret_env)
    for name, entry in secret_env.items():
        assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], name
    config = by_kind("ConfigMap")["data"]
    assert not [k for k in config if SECRET_WORDS.search(k) and k != "BOUNCEWIRE_SSL_CA_LOCATION"]


def test_no_secret_literal_in_any_manifest() -> None:
    assert [d["kind"] for d in k8s_docs() if d["kind"] == "Secret"] == []
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    assert re.findall(r"https?://\w\S*", text) == []  # a callback URL carries the token


def test_k8s_env_vars_are_real_flags() -> None:
    c = container()
    names = {e["name"] for e in c["env"]} | set(by_kind("ConfigMap")["data"])
    assert {n for n in names if n.startswith("BOUNCEWIRE_")} - flag_env_vars("consume") == set()
    assert c["args"] == ["consume"]


def test_grace_period_covers_the_drain() -> None:
    drain = float(by_kind("ConfigMap")["data"]["BOUNCEWIRE_DRAIN_TIMEOUT"])
    grace = by_kind("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > drain


def test_resources_and_disruption_budget() -> None:
    resources = container()["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    pdb, deployment = by_kind("PodDisruptionBudget"), by_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_scrape_configuration_targets_the_metrics_port_as_the_alerts_job() -> None:
    deployment, monitor = by_kind("Deployment"), by_kind("PodMonitor")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    job = labels[monitor["spec"]["jobLabel"]]
    assert f'up{{job="{job}"}}' in RULES.read_text()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)


def test_prometheusrule_is_the_rules_file() -> None:
    """deploy/scripts/prometheusrule.py regenerates it; this fails when it was forgotten."""
    assert by_kind("PrometheusRule")["spec"]["groups"] == \
        yaml.safe_load(RULES.read_text())["groups"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


# --- Dockerfile ------------------------------------------------------------------------------

def test_dockerfile_copies_every_package_and_exposes_the_metrics_port() -> None:
    text = DOCKERFILE.read_text()
    copied = {src.rstrip("/") for line in text.splitlines() if line.startswith("COPY ")
              for src in line.split()[1:-1]}
    assert all((REPO_ROOT / src).exists() for src in copied)
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]
                ["include"]}
    assert packages <= copied
    assert f"EXPOSE {METRICS_PORT}" in text
    assert re.search(r"^USER \d+", text, re.MULTILINE), "runs as root"
