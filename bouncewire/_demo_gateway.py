"""`bouncewire demo --via-gateway`: a stand-in receiving relay and a real `smtp-gateway`
process in front of it, so simulated traffic travels CleverTap → gateway → relay → Kafka."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller

from bouncewire._process import running_process
from bouncewire.producers.gateway.traffic import DemoRelayHandler, GatewayLogin
from bouncewire.producers.gateway.users import set_user

DEMO_USER = "clevertap-demo"


@dataclass(frozen=True)
class DemoGateway:
    login: GatewayLogin
    metrics_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the gateway demo needs the openssl command for a certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def _demo_relay() -> Iterator[int]:
    controller = Controller(DemoRelayHandler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@contextmanager
def demo_gateway(bootstrap: str) -> Iterator[DemoGateway]:
    """Relay, certificate, users file and gateway process; all gone at the end."""
    with tempfile.TemporaryDirectory(prefix="bouncewire-demo-") as tmp, _demo_relay() as relay:
        directory = Path(tmp)
        cert, key = _self_signed(directory)
        password = secrets.token_urlsafe(18)
        set_user(directory / "users", DEMO_USER, password)
        port, metrics_port = _free_port(), _free_port()
        argv = [
            sys.executable, "-m", "bouncewire", "smtp-gateway", "--port", str(port),
            "--tls-cert", str(cert), "--tls-key", str(key), "--users-file",
            str(directory / "users"), "--upstream", f"127.0.0.1:{relay}",
            "--upstream-security", "none", "--bootstrap-servers", bootstrap,
            "--metrics-port", str(metrics_port), "--log-level", "warning",
        ]  # fmt: skip
        with running_process(argv) as process:
            metrics = f"http://127.0.0.1:{metrics_port}"
            _wait_ready(metrics + "/readyz", process, 60)
            yield DemoGateway(GatewayLogin("127.0.0.1", port, DEMO_USER, password), metrics)


def _wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the demo gateway did not become ready")
