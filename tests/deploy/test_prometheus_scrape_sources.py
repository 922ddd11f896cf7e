"""A real Prometheus (Debian's package) scrapes real event-source processes under the job names
of deploy/prometheus/prometheus.yml, evaluates deploy/prometheus/bouncewire-rules.yml, and the
source alerts go pending on what the processes really export:

- `bouncewire mta-log postfix --follow --dry-run` reading a log with a line whose status it does
  not know: BouncewireMtaLogLinesNotUnderstood (reason unknown_status), the attempts counted,
  0 seconds behind at the end of the file. --dry-run: no broker needed, the metrics are the same.
- `bouncewire smtp-gateway` refusing a burst of wrong passwords (real STARTTLS + AUTH from
  smtplib): BouncewireGatewayAuthFailureBurst, with no address or user name in any label.

`for:` keeps both alerts pending; that they fire after it is promtool's part (rule unit tests).
"""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.support import free_port, wait_until
from tests.deploy.test_prometheus_scrape import PrometheusServer, http_get, prometheus_launcher
from tests.deploy.tools import DEPLOY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STEP_TIMEOUT_S = 30.0
P = "Jun  5 15:09:21 mx1 postfix/smtp[2417]: "
SENT = (P + "7C2D9E1F0{n}: to=<r{n}@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1, "
        "delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4BwX2Q0k{n})\n")
WEIRD = P + "7C2D9E1F09: to=<w@example.com>, relay=none, status=weird (x)\n"


def compose_job_names() -> set[str]:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], PrometheusServer]]:
    """Starts Prometheus scraping {job: target} every second with bouncewire's rules."""
    def start(targets: dict[str, str]) -> PrometheusServer:
        assert set(targets) <= compose_job_names()  # the names compose and the alerts use
        return launch(targets)

    with prometheus_launcher(tmp_path) as launch:
        yield start


@pytest.fixture
def bouncewire(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `bouncewire ARGS` (stdout/stderr to a file); stops every one at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (tmp_path / f"bouncewire-{len(procs)}.log").open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "bouncewire", *args],
                                          stdout=log, stderr=subprocess.STDOUT, env=env))
        return procs[-1]

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def alert(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return prometheus.query(f'ALERTS{{alertname="{name}"}}')


def value(prometheus: PrometheusServer, promql: str) -> float | None:
    sample = prometheus.value(promql)
    return None if sample is None else sample[1]


def ready(port: int) -> bool:
    return http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200


def test_mta_log_lines_not_understood_go_pending_on_a_real_prometheus(
    tmp_path: Path, bouncewire: Callable[..., subprocess.Popen[bytes]],
    prometheus: Callable[[dict[str, str]], PrometheusServer],
) -> None:
    log = tmp_path / "mail.log"
    log.write_text("".join(SENT.format(n=n) for n in range(3)))
    port = free_port()
    proc = bouncewire("mta-log", "postfix", str(log), "--follow", "--dry-run",
                      "--poll-interval", "0.1", "--flush-interval", "0.2",
                      "--metrics-port", str(port))
    assert wait_until(lambda: ready(port), STEP_TIMEOUT_S), "mta-log never served metrics"
    server = prometheus({"bouncewire-mta-log": f"127.0.0.1:{port}"})
    sent = 'sum(bouncewire_mta_log_attempts_total{job="bouncewire-mta-log",status="sent"})'
    assert wait_until(lambda: value(server, sent) == 3, STEP_TIMEOUT_S), "3 sent never scraped"

    with log.open("a") as appended:  # the MTA logs a status this version does not know
        appended.write(WEIRD)
    name = "BouncewireMtaLogLinesNotUnderstood"
    assert wait_until(lambda: len(alert(server, name)) == 1, STEP_TIMEOUT_S), "never pending"
    [pending] = alert(server, name)
    behind = value(server, 'max(bouncewire_mta_log_seconds_behind{job="bouncewire-mta-log"})')
    up = value(server, 'up{job="bouncewire-mta-log"}')
    assert proc.poll() is None, "mta-log died"

    assert pending["metric"]["alertstate"] == "pending"  # for: 5m
    assert pending["metric"]["reason"] == "unknown_status"
    assert pending["metric"]["job"] == "bouncewire-mta-log"
    assert behind == 0 and up == 1


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def failed_login(port: int, password: str) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # our own test cert
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("clevertap", password)


def test_a_burst_of_wrong_passwords_makes_the_gateway_auth_alert_pending(
    tmp_path: Path, bouncewire: Callable[..., subprocess.Popen[bytes]],
    prometheus: Callable[[dict[str, str]], PrometheusServer],
) -> None:
    cert, key = self_signed(tmp_path)
    users = tmp_path / "users"
    subprocess.run([sys.executable, "-m", "bouncewire", "smtp-gateway-user", "clevertap",
                    "--users-file", str(users)], input=b"right-password\n", check=True,
                   capture_output=True, timeout=60)
    smtp_port, metrics_port = free_port(), free_port()
    proc = bouncewire(
        "smtp-gateway", "--host", "127.0.0.1", "--port", str(smtp_port),
        "--tls-cert", str(cert), "--tls-key", str(key), "--users-file", str(users),
        "--upstream", "127.0.0.1:9", "--upstream-security", "none",
        "--auth-failures-allowed", "1000",  # the throttle is not what is tested here
        "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--publish-timeout", "1",
        "--metrics-port", str(metrics_port))
    assert wait_until(lambda: ready(metrics_port), STEP_TIMEOUT_S), "gateway never served"
    server = prometheus({"bouncewire-smtp-gateway": f"127.0.0.1:{metrics_port}"})

    # The counter's series is born at the first failure: let Prometheus see it first. (smtplib
    # tries each mechanism offered, PLAIN then LOGIN: two failures per login.)
    failed_login(smtp_port, "guess-0")
    failures = 'sum(bouncewire_gateway_auth_failures_total{job="bouncewire-smtp-gateway"})'
    assert wait_until(lambda: (value(server, failures) or 0) > 0, STEP_TIMEOUT_S)
    for n in range(1, 16):
        failed_login(smtp_port, f"guess-{n}")
    name = "BouncewireGatewayAuthFailureBurst"
    assert wait_until(lambda: len(alert(server, name)) == 1, STEP_TIMEOUT_S), "never pending"
    [pending] = alert(server, name)
    series = server.query('{job="bouncewire-smtp-gateway", __name__=~"bouncewire_gateway_.*"}')
    assert proc.poll() is None, "gateway died"

    assert pending["metric"]["alertstate"] == "pending"  # for: 2m
    # Neither the user name nor the client's address in any label (instance is the scrape
    # target, Prometheus' own).
    values = {v for s in series for k, v in s["metric"].items() if k != "instance"}
    assert series and not [v for v in values if "clevertap" in v or "127.0.0.1" in v]
