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
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bouncewire._flags import env_name
from bouncewire._gateway import UPSTREAM_PASSWORD_ENV
from bouncewire._unsubscribe import SECRET_ENV
from bouncewire.cli import build_parser
from bouncewire.producers.gateway.users import UserStore
from bouncewire.producers.unsubscribe.tokens import Keyring
from tests.deploy.tools import DEPLOY, REPO_ROOT, require_tool

K8S = DEPLOY / "k8s"
EXAMPLES = K8S / "examples"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
RULES = DEPLOY / "prometheus" / "bouncewire-rules.yml"
METRICS_PORT = 9102
SECRET_WORDS = re.compile(r"URL|PASSWORD|USERNAME|SECRET|TOKEN", re.IGNORECASE)
CHECK_TIMEOUT_S = 120


def k8s_docs(folder: Path = K8S) -> list[dict[str, Any]]:
    return [doc for path in sorted(folder.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str, name: str = "bouncewire-consumer") -> dict[str, Any]:
    [doc] = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(deployment: str = "bouncewire-consumer") -> dict[str, Any]:
    [main] = by_kind("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return dict(main)


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == "Deployment"}


def pod_containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def sidecar_example() -> dict[str, Any]:
    [statefulset] = [d for d in k8s_docs(EXAMPLES) if d["kind"] == "StatefulSet"]
    return statefulset


def parsed_command(monkeypatch: pytest.MonkeyPatch, args: list[str],
                   env: dict[str, str]) -> argparse.Namespace:
    """`bouncewire ARGS` as the container runs it, with its environment: unknown flags, bad
    values and missing required flags fail here as they would at start-up."""
    for name in [k for k in os.environ if k.startswith("BOUNCEWIRE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_parser().parse_args(args)


def container_env(c: dict[str, Any], config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """A container's environment; a Secret's value stands in as "<secret>"."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in c.get("env", []):
        env[entry["name"]] = entry.get("value", "<secret>")
    return env


def config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}


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
    extra = {"consume": {"BOUNCEWIRE_SASL_PASSWORD"}, "unsubscribe-server": {SECRET_ENV},
             "mail serve": {"BOUNCEWIRE_SASL_PASSWORD", SECRET_ENV},
             "mta-log": {"BOUNCEWIRE_SASL_PASSWORD"},
             "smtp-gateway": {"BOUNCEWIRE_SASL_PASSWORD", SECRET_ENV, UPSTREAM_PASSWORD_ENV}}
    return {env_name(flag) for flag in flags} | extra.get(command, set())


def default_partitions(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.delenv("BOUNCEWIRE_PARTITIONS", raising=False)
    return int(build_parser().parse_args(["topics", "create"]).partitions)


# --- YAML everywhere ------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(
    [*DEPLOY.glob("k8s/*.yaml"), *EXAMPLES.glob("*.yaml"), COMPOSE,
     *DEPLOY.glob("prometheus/*.yml"), *DEPLOY.glob("grafana/provisioning/*/*.yml")]),
    ids=lambda p: str(p.relative_to(DEPLOY)))
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
        "kafka", "topics", "consumer", "receiver", "unsubscribe", "prometheus", "grafana",
        "mail-serve", "mta-log", "smtp-gateway", "relay"}
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
                "unsubscribe": "unsubscribe-server", "mail-serve": "mail serve",
                "mta-log": "mta-log", "smtp-gateway": "smtp-gateway"}
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


def test_compose_commands_parse_with_their_environment(compose_project: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("consumer", "topics", "receiver", "unsubscribe", "mail-serve", "mta-log",
                 "smtp-gateway"):
        service = compose_project["services"][name]
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()
               if v is not None}
        parsed_command(monkeypatch, service["command"], env)


def test_compose_event_sources(compose_project: dict[str, Any]) -> None:
    """Their own profiles; metrics on loopback ports of their own; TLS and signing keys as
    compose secrets; mta-log reads the log directory read-only and keeps its checkpoint in a
    volume; Prometheus scrapes each under the job name its alerts select."""
    services = compose_project["services"]
    host_ports = {s: {p["target"]: p["published"] for p in services[s].get("ports", [])}
                  for s in services}
    assert host_ports["mail-serve"] == {2525: "2525", 9102: "9103"}
    assert host_ports["mta-log"] == {9102: "9105"}
    assert host_ports["smtp-gateway"] == {2587: "2587", 2465: "2465", 9102: "9104"}
    gateway = services["smtp-gateway"]
    assert gateway["profiles"] == ["gateway"] == services["relay"]["profiles"]
    command = gateway["command"]
    for flag, secret in (("--tls-cert", "gateway-tls-cert"), ("--tls-key", "gateway-tls-key"),
                         ("--users-file", "gateway-users")):
        assert command[command.index(flag) + 1] == f"/run/secrets/{secret}"
        assert secret in {s["source"] for s in gateway["secrets"]}
        assert "file" in compose_project["secrets"][secret]
    mail = services["mail-serve"]
    assert mail["profiles"] == ["mail"]
    secrets = {s["source"] for s in mail["secrets"]}
    assert secrets == {"mail-tls-cert", "mail-tls-key", "signing-keys"}
    command = mail["command"]
    for flag, secret in (("--tls-cert", "mail-tls-cert"), ("--tls-key", "mail-tls-key"),
                         ("--secret-file", "signing-keys")):
        assert command[command.index(flag) + 1] == f"/run/secrets/{secret}"
    assert all("file" in compose_project["secrets"][s] for s in secrets)
    mta = services["mta-log"]
    log_dir, state = mta["volumes"]
    assert log_dir["type"] == "bind" and log_dir["read_only"] is True
    assert Path(mta["command"][2]).parent == Path(log_dir["target"])
    checkpoint = mta["command"][mta["command"].index("--checkpoint") + 1]
    assert state["type"] == "volume" and Path(checkpoint).parent == Path(state["target"])
    assert "--follow" in mta["command"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for service, job in (("mail-serve", "bouncewire-mail-serve"),
                         ("mta-log", "bouncewire-mta-log"),
                         ("smtp-gateway", "bouncewire-smtp-gateway")):
        [sd] = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["port"] == METRICS_PORT
        assert f'up{{job="{job}"}}' in RULES.read_text()


def test_dev_secrets_script_writes_what_compose_mounts(tmp_path: Path) -> None:
    script = DEPLOY / "scripts" / "dev-secrets.sh"
    copy = tmp_path / "deploy"
    (copy / "scripts").mkdir(parents=True)
    (copy / "secrets").mkdir()
    (copy / "scripts" / script.name).write_bytes(script.read_bytes())
    cli = Path(sys.executable).parent / "bouncewire"  # the one this test runs with
    subprocess.run(["sh", str(copy / "scripts" / script.name)], check=True,
                   capture_output=True, timeout=CHECK_TIMEOUT_S,
                   env={"PATH": "/usr/bin:/bin", "BOUNCEWIRE": str(cli)})
    raw = yaml.safe_load(COMPOSE.read_text())
    for secret in raw["secrets"].values():
        default = re.fullmatch(r"\$\{\w+:-\./(secrets/[\w.-]+)\}", secret["file"])
        assert default, secret["file"]
        assert (copy / default.group(1)).stat().st_size > 0
    keys = (copy / "secrets" / "signing-keys").read_text()
    assert Keyring.parse(keys).kids
    users = UserStore(copy / "secrets" / "gateway-users")
    password = (copy / "secrets" / "gateway-password").read_text().strip()
    assert users.check("clevertap", password) and not users.check("clevertap", "wrong")


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
    """One PodMonitor selects every bouncewire Deployment; each pod's job (its name label) is
    the one its alerts select, and each serves metrics on the port named `metrics`."""
    monitor = by_kind("PodMonitor", "bouncewire")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    rules = RULES.read_text()
    for name, deployment in deployments().items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        job = labels[monitor["spec"]["jobLabel"]]
        assert job == name and f'up{{job="{job}"}}' in rules
        ports = {p["name"]: p["containerPort"] for p in container(name)["ports"]}
        assert ports["metrics"] == METRICS_PORT, name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT), name


def test_prometheusrule_is_the_rules_file() -> None:
    """deploy/scripts/prometheusrule.py regenerates it; this fails when it was forgotten."""
    assert by_kind("PrometheusRule", "bouncewire")["spec"]["groups"] == \
        yaml.safe_load(RULES.read_text())["groups"]


def test_k8s_commands_parse_with_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every container's args with its ConfigMap and env: the flags exist, required ones are
    set, values have their types, and metrics listen beyond loopback."""
    docs = [*k8s_docs(), *k8s_docs(EXAMPLES)]
    maps = config_maps(docs)
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    seen = []
    ours = [c for w in workloads for c in pod_containers(w) if c["image"].startswith("bouncewire")]
    for c in ours:
        env = container_env(c, maps)
        args = parsed_command(monkeypatch, c["args"], env)
        assert args.metrics_host == "0.0.0.0" and int(args.metrics_port) == METRICS_PORT
        seen.append(c["args"][0])
    assert sorted(seen) == ["consume", "mail", "mta-log", "smtp-gateway"]


def test_mail_serve_probes_tls_and_secrets() -> None:
    c = container("bouncewire-mail-serve")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["args"][c["args"].index("--port") + 1] == str(ports["smtp"])
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["tcpSocket"]["port"] == "smtp"  # the listener, not the metrics
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in by_kind("Deployment", "bouncewire-mail-serve")["spec"]
               ["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "bouncewire-mail-tls"
    for flag, key in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")):
        assert c["args"][c["args"].index(flag) + 1] == f"{mounts['tls']}/{key}"
    service = by_kind("Service", "bouncewire-mail-serve")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(25, "smtp")]


def test_smtp_gateway_probes_tls_users_and_service() -> None:
    c = container("bouncewire-smtp-gateway")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    args = c["args"]
    assert args[args.index("--port") + 1] == str(ports["submission"])
    assert args[args.index("--implicit-tls-port") + 1] == str(ports["submissions"])
    probes = {p: c[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "metrics"}  # broker answers
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "metrics"}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    spec = by_kind("Deployment", "bouncewire-smtp-gateway")["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"]}
    assert volumes == {"tls": "bouncewire-gateway-tls", "users": "bouncewire-gateway-users"}
    assert all("subPath" not in m for m in mounts.values())  # Secret updates reach the file
    assert args[args.index("--users-file") + 1] == f"{mounts['users']['mountPath']}/users"
    assert args[args.index("--tls-key") + 1] == f"{mounts['tls']['mountPath']}/tls.key"
    upstream = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]
                if e["name"].startswith("BOUNCEWIRE_UPSTREAM_")}
    assert set(upstream) == {"BOUNCEWIRE_UPSTREAM_USERNAME", UPSTREAM_PASSWORD_ENV}
    assert all(ref["optional"] for ref in upstream.values())  # both or neither
    service = by_kind("Service", "bouncewire-smtp-gateway")["spec"]
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [
        (587, "submission"), (465, "submissions")]
    assert service["sessionAffinity"] == "ClientIP"  # a retried 451 reaches the same pod


def test_every_deployment_has_a_disruption_budget_and_resources() -> None:
    budgets = [d for d in k8s_docs() if d["kind"] == "PodDisruptionBudget"]
    for name, deployment in deployments().items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert [b for b in budgets if b["spec"]["selector"]["matchLabels"].items()
                <= labels.items()], name
        resources = container(name)["resources"]
        assert resources["requests"]["memory"] and resources["limits"]["memory"], name
        assert container(name)["securityContext"]["readOnlyRootFilesystem"] is True, name


@pytest.mark.parametrize("folder", [K8S, EXAMPLES], ids=["k8s", "examples"])
def test_every_secret_value_comes_from_a_secret_ref(folder: Path) -> None:
    for workload in [d for d in k8s_docs(folder) if d["kind"] in {"Deployment", "StatefulSet"}]:
        for c in pod_containers(workload):
            for entry in c.get("env", []):
                if SECRET_WORDS.search(entry["name"]):
                    assert "value" not in entry, entry["name"]
                    assert "secretKeyRef" in entry["valueFrom"], entry["name"]
    for config in config_maps(k8s_docs(folder)).values():
        assert not [k for k in config if SECRET_WORDS.search(k)
                    and k != "BOUNCEWIRE_SSL_CA_LOCATION"]


def test_mta_log_sidecar_example() -> None:
    """A native sidecar (starts before the MTA, stops after it) reading the MTA's log volume
    read-only, its checkpoint on a volume of its own, scraped as job bouncewire-mta-log."""
    tool = require_tool("k8scheck", package="k8scheck")
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = subprocess.run([tool, *files], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_S, check=False)
    assert result.returncode == 0 and "apps/v1 StatefulSet: VALID" in result.stdout, \
        result.stdout + result.stderr
    statefulset = sidecar_example()
    [sidecar] = statefulset["spec"]["template"]["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always" and "readinessProbe" not in sidecar
    mounts = {m["name"]: m for m in sidecar["volumeMounts"]}
    log_path, checkpoint = sidecar["args"][2], sidecar["args"][sidecar["args"].index(
        "--checkpoint") + 1]
    assert mounts["maillog"]["readOnly"] is True
    assert Path(log_path).parent == Path(mounts["maillog"]["mountPath"])
    assert Path(checkpoint).parent == Path(mounts["mta-log-state"]["mountPath"])
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert {"maillog", "mta-log-state"} <= claims
    [monitor] = [d for d in k8s_docs(EXAMPLES) if d["kind"] == "PodMonitor"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in sidecar["ports"]}
    assert {"targetLabel": "job", "replacement": "bouncewire-mta-log"} in endpoint["relabelings"]
    assert 'up{job="bouncewire-mta-log"}' in RULES.read_text()
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


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
