"""`bouncewire smtp-gateway` refuses a bad configuration with a clear message before listening;
`smtp-gateway-user` writes the users file; `simulate --via-gateway` sends through a gateway."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bouncewire.cli import main
from bouncewire.producers.gateway.users import UserStore
from tests.producers.gateway.gateway_harness import PASSWORD, USER, LiveGateway, ResultTopic
from tests.producers.smtp_server import Script, SelfSignedCert, Transcript


@pytest.fixture
def base(tmp_path: Path) -> list[str]:
    users = tmp_path / "users"
    users.write_text("")
    cert = tmp_path / "missing.pem"
    return ["smtp-gateway", "--tls-cert", str(cert), "--tls-key", str(cert),
            "--users-file", str(users), "--upstream", "127.0.0.1:2525"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--upstream", "no-port"], "--upstream must be HOST:PORT"),
    (["--verp-domain", "b.example.com"], "need signing keys"),
    (["--list-unsubscribe-url", "http://example.com"], "must use https"),
    (["--upstream-username", "u"], "go together"),
    ([], "missing.pem"),
])
def test_bad_configuration_is_named(
    base: list[str], extra: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BOUNCEWIRE_UNSUBSCRIBE_SECRET", raising=False)
    monkeypatch.delenv("BOUNCEWIRE_UPSTREAM_PASSWORD", raising=False)
    assert main([*base, *extra]) == 2
    assert message in capsys.readouterr().err


def test_gateway_user_reads_the_password_from_stdin(tmp_path: Path) -> None:
    users = tmp_path / "users"
    done = subprocess.run(
        [sys.executable, "-m", "bouncewire", "smtp-gateway-user", "clevertap", "--users-file",
         str(users)], input="s3cret-Value\n", text=True, capture_output=True, timeout=60)
    assert done.returncode == 0 and "added user clevertap" in done.stderr
    assert "s3cret-Value" not in users.read_text() + done.stderr
    assert UserStore(users).check("clevertap", "s3cret-Value")


@pytest.mark.integration
def test_simulate_via_gateway(
    gateway: LiveGateway, results: ResultTopic, upstream: tuple[int, Script, Transcript],
    cert: SelfSignedCert,
) -> None:
    _, _, transcript = upstream
    start, seen = results.end(), len(transcript.messages)
    done = subprocess.run(
        [sys.executable, "-m", "bouncewire", "simulate", "--via-gateway",
         f"127.0.0.1:{gateway.port}", "--gateway-username", USER, "--gateway-ca-file",
         str(cert.certfile), "--rate", "40", "--duration", "1", "--bootstrap-servers",
         results.bootstrap, "--unsubscribes-topic", f"{results.name}-unsub"],
        env={**os.environ, "BOUNCEWIRE_GATEWAY_PASSWORD": PASSWORD},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "through the gateway: client replies {250:" in done.stderr
    relayed = len(transcript.messages) - seen
    assert relayed > 20
    assert len([r for r in results.since(start) if r["smtp_code"] == 250]) == relayed
