"""The gateway refuses what is not its own and keeps its limits, each with a reply: open-relay
attempts, AUTH before TLS, wrong passwords (throttled), oversized messages, too many
recipients, idle and slow clients, too many sessions; and no secret reaches its log."""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.producers.gateway.gateway_harness import (
    PASSWORD,
    USER,
    LiveGateway,
    ResultTopic,
    auth_args,
    running_gateway,
    swaks,
)
from tests.producers.smtp_server import Script, SelfSignedCert, Transcript

pytestmark = pytest.mark.integration
LIMITS = ("--max-sessions", "3", "--command-timeout", "1", "--session-timeout", "4",
          "--max-message-bytes", "4000", "--max-recipients", "2",
          "--auth-failures-allowed", "3", "--auth-pause", "0.3")
WRONG_PASSWORDS = ("guess-One-111", "guess-Two-222", "guess-Three-333")
LOGS: list[str] = []


@pytest.fixture(scope="module")
def strict(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path, upstream: tuple[int, Script, Transcript],
) -> Iterator[LiveGateway]:
    with running_gateway(workdir, bootstrap=kafka_bootstrap, topic=results.name,
                         upstream_port=upstream[0], cert=cert, users_file=users_file,
                         extra=LIMITS) as live:
        yield live
        LOGS.append(live.log_text())


def tls_client(port: int) -> smtplib.SMTP:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.starttls(context=context)
    client.ehlo("clevertap.test")
    return client


def reply(client: smtplib.SMTP, command: str) -> tuple[int, str]:
    code, text = client.docmd(command)
    return code, text.decode()


def metrics(live: LiveGateway) -> str:
    url = f"http://127.0.0.1:{live.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback
        return str(response.read().decode())


# ------------------------------------------------------------------ never an open relay


def test_mail_without_auth_is_530_plain_and_tls(
    strict: LiveGateway, upstream: tuple[int, Script, Transcript]
) -> None:
    _, _, transcript = upstream
    tried = len(transcript.rcpt)
    with smtplib.SMTP("127.0.0.1", strict.port, timeout=10) as plain:
        plain.ehlo("spammer.test")
        assert reply(plain, "MAIL FROM:<a@spam.test>") == (530, "5.7.0 Authentication required")
        assert reply(plain, "RCPT TO:<victim@example.org>")[0] == 530
    with tls_client(strict.port) as tls:
        assert reply(tls, "MAIL FROM:<a@spam.test>") == (530, "5.7.0 Authentication required")
        assert reply(tls, "DATA")[0] == 530
    run = swaks(strict.port, "--tls", "--to", "victim@example.org")
    assert run.returncode != 0 and run.reply_to("MAIL FROM").startswith("530 5.7.0")
    assert len(transcript.rcpt) == tried  # the upstream heard nothing


def test_auth_before_tls_is_neither_offered_nor_accepted(strict: LiveGateway) -> None:
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    with smtplib.SMTP("127.0.0.1", strict.port, timeout=10) as plain:
        code, features = plain.ehlo("clevertap.test")
        assert code == 250 and b"AUTH" not in features and b"STARTTLS" in features
        assert reply(plain, f"AUTH PLAIN {token}")[0] == 538


# ------------------------------------------------------------------ limits, each answered


def test_size_is_advertised_and_enforced(
    strict: LiveGateway, upstream: tuple[int, Script, Transcript]
) -> None:
    _, _, transcript = upstream
    seen = len(transcript.messages)
    with tls_client(strict.port) as client:
        assert client.esmtp_features["size"] == "4000"
        client.login(USER, PASSWORD)
        assert reply(client, "MAIL FROM:<news@shop.example.com> SIZE=5000")[0] == 552
        assert reply(client, "MAIL FROM:<news@shop.example.com>")[0] == 250
        assert reply(client, "RCPT TO:<big@mail.example.org>")[0] == 250
        code, _ = client.data(b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 60)
        assert code == 552
    assert len(transcript.messages) == seen


def test_recipients_per_message(strict: LiveGateway) -> None:
    with tls_client(strict.port) as client:
        client.login(USER, PASSWORD)
        client.mail("news@shop.example.com")
        assert [client.rcpt(f"r{n}@mail.example.org")[0] for n in range(3)] == [250, 250, 452]


def test_idle_client_gets_421_then_is_closed(strict: LiveGateway) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        received = read_until_closed(sock, 10)
    assert received.startswith(b"220 ")
    assert b"421 4.4.2 Timeout waiting for a command" in received


def test_busy_client_is_bounded_by_the_session_timeout(strict: LiveGateway) -> None:
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", strict.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            while time.monotonic() - started < 10:
                code, text = client.noop()  # each within the command timeout
                if code == 421:
                    assert b"4.4.2 Session too long" in text
                    raise smtplib.SMTPServerDisconnected
                time.sleep(0.5)
    assert 3.5 < time.monotonic() - started < 8


def test_sessions_beyond_the_limit_get_421(strict: LiveGateway) -> None:
    held = [socket.create_connection(("127.0.0.1", strict.port), timeout=10) for _ in range(3)]
    try:
        for sock in held:
            assert sock.recv(100).startswith(b"220 ")
        with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as extra:
            assert read_until_closed(extra, 5).startswith(b"421 4.7.0 Too many sessions")
    finally:
        for sock in held:
            sock.close()
    assert 'bouncewire_gateway_limit_refusals_total{limit="sessions"}' in metrics(strict)


def read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------ guessing passwords


def test_wrong_passwords_are_refused_counted_then_throttled(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path, upstream: tuple[int, Script, Transcript],
) -> None:
    with running_gateway(workdir, bootstrap=kafka_bootstrap, topic=results.name,
                         upstream_port=upstream[0], cert=cert, users_file=users_file,
                         extra=LIMITS) as live:
        for wrong in WRONG_PASSWORDS:
            run = swaks(live.port, "--tls", *auth_args("PLAIN", wrong), "--to", "x@example.org")
            assert run.reply_to("AUTH PLAIN").startswith("535 5.7.8"), run.transcript
        started = time.monotonic()
        run = swaks(live.port, "--tls", *auth_args("LOGIN"), "--to", "x@example.org")
        paused = time.monotonic() - started
        assert "421 4.7.0 Too many failed authentications, try again later" in run.replies()
        assert paused >= 0.3
        text = metrics(live)
        LOGS.append(live.log_text())
    assert re.search(r'auth_failures_total\{mechanism="PLAIN",outcome="refused"\} 3\.0', text)
    assert re.search(r'auth_failures_total\{mechanism="LOGIN",outcome="throttled"\} 1\.0', text)


# ------------------------------------------------------------------ what the logs and metrics hold


def test_health_endpoints_and_no_address_in_metrics(strict: LiveGateway) -> None:
    for page in ("healthz", "readyz"):
        url = f"http://127.0.0.1:{strict.metrics_port}/{page}"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback
            assert response.status == 200
    assert "@" not in metrics(strict)


def test_zz_logs_hold_no_secret(strict: LiveGateway) -> None:
    """Runs last in the module: every gateway log of this module, scanned."""
    logs = "\n".join([*LOGS, strict.log_text()])
    assert "AUTH failed" in logs  # the scan looked at logs that saw the failures
    secrets = [PASSWORD, *WRONG_PASSWORDS,
               base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
               base64.b64encode(PASSWORD.encode()).decode()]
    for secret in secrets:
        assert secret not in logs
    assert not re.search(r"[a-z0-9]{2,}@mail\.example\.org", logs)  # addresses masked


def test_a_client_trickling_its_message_is_cut_at_the_command_timeout(
    strict: LiveGateway, upstream: tuple[int, Script, Transcript]
) -> None:
    _, _, transcript = upstream
    seen = len(transcript.messages)
    with tls_client(strict.port) as client:
        client.login(USER, PASSWORD)
        client.mail("news@shop.example.com")
        client.rcpt("slow@mail.example.org")
        assert reply(client, "DATA")[0] == 354
        started = time.monotonic()
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            while time.monotonic() - started < 10:
                client.send(b"a line every half second\r\n")
                time.sleep(0.5)
        assert time.monotonic() - started < 5
    assert len(transcript.messages) == seen  # nothing half-received was relayed
