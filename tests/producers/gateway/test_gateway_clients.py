"""Real clients (swaks, smtplib) → a real `bouncewire smtp-gateway` → a scripted aiosmtpd
upstream, results on the real broker. Each case: what the client saw, what the upstream
received, what reached Kafka."""

from __future__ import annotations

import signal
import smtplib
import ssl
import time
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from reliability.support import wait_until
from tests.producers.gateway.gateway_harness import (
    PASSWORD,
    SENDER,
    USER,
    LiveGateway,
    ResultTopic,
    auth_args,
    make_users_file,
    running_gateway,
    swaks,
)
from tests.producers.smtp_server import (
    DROP,
    QUEUED,
    STALL,
    Script,
    SelfSignedCert,
    Transcript,
    free_port,
    scripted_smtp,
)

pytestmark = pytest.mark.integration
USER_UNKNOWN = "550 5.1.1 <bob@mail.example.org>: Recipient address rejected: User unknown"


@pytest.fixture(autouse=True)
def fresh_script(upstream: tuple[int, Script, Transcript]) -> Iterator[None]:
    _, script, _ = upstream
    yield
    script.rcpt, script.mail, script.data = {}, "250 2.1.0 OK", QUEUED


def message_to(*local_parts: str, meta: str | None = "m:42") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Shop <{SENDER}>"
    message["To"] = ", ".join(f"{part}@mail.example.org" for part in local_parts)
    # Unique, as every real send is: the same bytes again within minutes are a repeat.
    message["Message-ID"] = f"<gw-{uuid.uuid4().hex[:12]}@shop.example.com>"
    message["Subject"] = "Your weekly deals"
    if meta is not None:
        message["X-CleverTap_META"] = meta
    message["X-Campaign-ID"] = "cmp-7"
    message.set_content("Hello,\n.\nA line with only a dot above.\n")
    return message


def smtplib_send(port: int, message: EmailMessage) -> dict[str, Any]:
    """STARTTLS + AUTH, then send; returns {"refused": ..., "error": (code, text)}."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.starttls(context=context)
        client.login(USER, PASSWORD)
        try:
            return {"refused": client.send_message(message), "error": None}
        except smtplib.SMTPRecipientsRefused as exc:
            return {"refused": exc.recipients, "error": None}
        except smtplib.SMTPResponseException as exc:
            return {"refused": {}, "error": (exc.smtp_code, exc.smtp_error.decode())}


def summary(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["email"].partition("@")[0], r["smtp_code"], r["enhanced_code"], r["error"])
            for r in records]


# ------------------------------------------------------------------ swaks, both TLS styles


def test_swaks_starttls_plain_two_recipients_one_unknown(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic
) -> None:
    _, script, transcript = upstream
    script.rcpt = {"bob": USER_UNKNOWN}
    start, seen = results.end(), len(transcript.messages)
    run = swaks(gateway.port, "--tls", *auth_args("PLAIN"),
                "--to", "alice@mail.example.org,bob@mail.example.org")
    assert run.reply_to("AUTH PLAIN").startswith("235 2.7.0")
    assert run.reply_to("RCPT TO:<alice@") == "250 2.1.5 OK"
    assert run.reply_to("RCPT TO:<bob@") == USER_UNKNOWN  # the upstream's own words
    assert run.reply_to("QUIT").startswith("221")
    assert any(line.startswith("250 2.0.0 Ok: queued") for line in run.replies())
    assert len(transcript.messages) == seen + 1
    assert b"To: alice@mail.example.org,bob@mail.example.org" in transcript.messages[-1]
    records = results.since(start)
    assert summary(records) == [("bob", 550, "5.1.1", None), ("alice", 250, "2.0.0", None)]


def test_swaks_implicit_tls_login(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic
) -> None:
    start = results.end()
    run = swaks(gateway.implicit_tls_port, "--tls-on-connect", *auth_args("LOGIN"),
                "--to", "carol@mail.example.org")
    assert run.returncode == 0, run.transcript
    assert run.reply_to("AUTH LOGIN").startswith("334")
    assert "235 2.7.0 Authentication successful" in run.replies()
    assert summary(results.since(start)) == [("carol", 250, "2.0.0", None)]


def test_swaks_auth_not_offered_before_starttls(gateway: LiveGateway) -> None:
    run = swaks(gateway.port, *auth_args("PLAIN"), "--to", "x@mail.example.org")
    assert run.returncode != 0
    assert not any("AUTH" in line for line in run.replies())  # EHLO does not offer it


# ------------------------------------------------------------------ upstream behaviours (smtplib)

CASES = [
    # (id, rcpt script, data script, client sees, records)
    ("accept", {}, QUEUED, {"refused": {}, "error": None},
     [("alice", 250, "2.0.0", None), ("bob", 250, "2.0.0", None)]),
    ("550-one-of-two", {"bob": USER_UNKNOWN}, QUEUED,
     {"refused": {"bob@mail.example.org": (550, USER_UNKNOWN[4:].encode())}, "error": None},
     [("bob", 550, "5.1.1", None), ("alice", 250, "2.0.0", None)]),
    ("452-at-data", {}, "452 4.3.1 Insufficient system storage", {
        "refused": {}, "error": (452, "4.3.1 Insufficient system storage")},
     [("alice", 452, "4.3.1", None), ("bob", 452, "4.3.1", None)]),
    ("drop-at-data", {}, DROP, {"refused": {}, "error": (
        451, "4.4.1 Upstream relay unavailable (connection_reset), try again later")},
     [("alice", None, None, "connection_reset"), ("bob", None, None, "connection_reset")]),
    ("stall-at-data", {}, STALL, {"refused": {}, "error": (
        451, "4.4.1 Upstream relay unavailable (timeout), try again later")},
     [("alice", None, None, "timeout"), ("bob", None, None, "timeout")]),
]


@pytest.mark.parametrize(("rcpt", "data", "client_saw", "published"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_upstream_answer_reaches_client_and_kafka(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic,
    rcpt: dict[str, str], data: str, client_saw: dict[str, Any],
    published: list[tuple[Any, ...]],
) -> None:
    _, script, transcript = upstream
    script.rcpt, script.data = rcpt, data
    start, seen = results.end(), len(transcript.messages)
    message = message_to("alice", "bob")
    assert smtplib_send(gateway.port, message) == client_saw
    received = transcript.messages[seen:]
    assert len(received) == (1 if data == QUEUED else 0)
    records = results.since(start)
    assert summary(records) == published
    assert {(r["message_id"], r["campaign_id"], r["meta"]) for r in records if r["smtp_code"] != 550
            } <= {(message["Message-ID"], "cmp-7", "m:42")}
    assert all(r["remote_mta"] == "127.0.0.1" for r in records)


def test_452_at_rcpt_is_passed_through(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic
) -> None:
    _, script, transcript = upstream
    script.rcpt = {"alice": "452 4.5.3 Too many recipients"}
    start, seen = results.end(), len(transcript.messages)
    outcome = smtplib_send(gateway.port, message_to("alice"))
    assert outcome["refused"] == {"alice@mail.example.org": (452, b"4.5.3 Too many recipients")}
    assert len(transcript.messages) == seen
    assert summary(results.since(start)) == [("alice", 452, "4.5.3", None)]


# ------------------------------------------------------------------ upstream gone or refusing us


def test_upstream_unreachable_is_451_and_connection_refused(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path,
) -> None:
    with running_gateway(workdir, bootstrap=kafka_bootstrap, topic=results.name,
                         upstream_port=free_port(), cert=cert, users_file=users_file) as live:
        start = results.end()
        outcome = smtplib_send(live.port, message_to("dave"))
    assert outcome["refused"] == {"dave@mail.example.org": (
        451, b"4.4.1 Upstream relay unavailable (connection_refused), try again later")}
    assert summary(results.since(start)) == [("dave", None, None, "connection_refused")]


def test_upstream_refusing_our_credentials_is_451_and_auth_failure(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path,
) -> None:
    relay_password = "upstream-Relay-secret-9"
    script = Script(credentials=("gateway", "another-password"))
    with scripted_smtp(script) as (port, transcript), running_gateway(
        workdir, bootstrap=kafka_bootstrap, topic=results.name, upstream_port=port, cert=cert,
        users_file=users_file, extra=("--upstream-username", "gateway"),
        env={"BOUNCEWIRE_UPSTREAM_PASSWORD": relay_password},
    ) as live:
        start = results.end()
        outcome = smtplib_send(live.port, message_to("erin"))
        log_text = live.log_text()
    assert outcome["refused"] == {"erin@mail.example.org": (
        451, b"4.4.1 Upstream relay unavailable (auth_failure), try again later")}
    # smtplib tries each mechanism the upstream offers (PLAIN, then LOGIN): one attempt each.
    assert set(transcript.logins) == {b"gateway"} and transcript.messages == []
    assert summary(results.since(start)) == [("erin", 535, "5.7.8", "auth_failure")]
    assert relay_password not in log_text


def test_broker_unreachable_answers_451_after_relaying_once(
    workdir: Path, cert: SelfSignedCert, users_file: Path,
    upstream: tuple[int, Script, Transcript],
) -> None:
    port, _, transcript = upstream
    with running_gateway(workdir, bootstrap=f"127.0.0.1:{free_port()}", topic="nowhere",
                         upstream_port=port, cert=cert, users_file=users_file,
                         extra=("--publish-timeout", "1")) as live:
        seen = len(transcript.messages)
        message = message_to("frank")
        first = smtplib_send(live.port, message)
        second = smtplib_send(live.port, message)  # CleverTap's retry: the same message
    not_recorded = (451, "4.3.0 Result not recorded (event broker unavailable), try again later")
    assert first == second == {"refused": {}, "error": not_recorded}
    # Relayed once: the retry is recognised and not sent to the upstream again.
    assert len(transcript.messages) == seen + 1


def test_several_messages_in_one_session(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic
) -> None:
    """The upstream session is kept (reset) between the client's transactions."""
    _, script, transcript = upstream
    script.rcpt = {"bob": USER_UNKNOWN}
    start, seen = results.end(), len(transcript.messages)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=20) as client:
        client.starttls(context=context)
        client.login(USER, PASSWORD)
        refused = [client.send_message(message_to(name)) for name in ("alice", "carol")]
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(message_to("bob"))
        client.rset()
        refused.append(client.send_message(message_to("dave")))
    assert refused == [{}, {}, {}]
    assert len(transcript.messages) == seen + 3
    assert summary(results.since(start)) == [
        ("alice", 250, "2.0.0", None), ("carol", 250, "2.0.0", None),
        ("bob", 550, "5.1.1", None), ("dave", 250, "2.0.0", None)]


def test_a_user_added_while_running_logs_in_after_sighup(
    gateway: LiveGateway, users_file: Path
) -> None:
    make_users_file(users_file, "second-sender", "Second-pass-77")
    gateway.process.send_signal(signal.SIGHUP)
    run = swaks(gateway.port, "--tls", "--auth", "LOGIN", "--auth-user", "second-sender",
                "--auth-password", "Second-pass-77", "--to", "henry@mail.example.org")
    assert "235 2.7.0 Authentication successful" in run.replies(), run.transcript
    assert wait_until(lambda: "SIGHUP: users file re-read" in gateway.log_text(), timeout=10)
    assert "Second-pass-77" not in gateway.log_text()


def test_metrics_count_recipients_by_result_and_error_class(gateway: LiveGateway) -> None:
    url = f"http://127.0.0.1:{gateway.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback
        text = response.read().decode()
    for sample in ('bouncewire_gateway_recipients_total{error_class="invalid_email_id",'
                   'result="rejected"}',
                   'bouncewire_gateway_recipients_total{error_class="none",result="accepted"}',
                   'bouncewire_gateway_recipients_total{error_class="timeout",result="failed"}',
                   'bouncewire_gateway_messages_total{result="accepted"}',
                   'bouncewire_gateway_relay_seconds_bucket{command="DATA"',
                   'bouncewire_gateway_message_bytes_total',
                   'bouncewire_gateway_sessions_total{listener="implicit_tls"}'):
        assert sample in text, sample
    assert "@" not in text


def test_upstream_over_starttls_verified_with_the_given_ca(
    workdir: Path, kafka_bootstrap: str, results: ResultTopic, cert: SelfSignedCert,
    users_file: Path,
) -> None:
    script = Script(tls_context=cert.server_context())
    with scripted_smtp(script) as (port, transcript), running_gateway(
        workdir, bootstrap=kafka_bootstrap, topic=results.name, upstream_port=port, cert=cert,
        users_file=users_file,
        extra=("--upstream-security", "starttls", "--upstream-ca-file", str(cert.certfile)),
    ) as live:
        start = results.end()
        assert smtplib_send(live.port, message_to("ivy")) == {"refused": {}, "error": None}
    assert len(transcript.messages) == 1
    assert summary(results.since(start)) == [("ivy", 250, "2.0.0", None)]


def test_a_client_hanging_up_mid_data_still_gets_its_result_recorded(
    gateway: LiveGateway, upstream: tuple[int, Script, Transcript], results: ResultTopic
) -> None:
    _, script, _ = upstream
    script.data = STALL  # the upstream takes its 1 s timeout; the client does not wait
    start = results.end()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=20)
    client.starttls(context=context)
    client.login(USER, PASSWORD)
    client.mail(SENDER)
    client.rcpt("jack@mail.example.org")
    client.putcmd("DATA")
    assert client.getreply()[0] == 354
    client.send(b"Subject: gone\r\n\r\nbye\r\n.\r\n")
    time.sleep(0.3)  # the gateway is relaying it now (the upstream stalls for 1 s)
    client.close()  # hangs up before the reply
    assert wait_until(lambda: results.end() > start, timeout=15)
    assert summary(results.since(start)) == [("jack", None, None, "timeout")]
    script.data = QUEUED
    assert smtplib_send(gateway.port, message_to("kim")) == {"refused": {}, "error": None}
