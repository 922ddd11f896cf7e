"""`mail parse`, `mail produce` and `verp-address` as commands: real processes; produce against
the real broker, on a Maildir and an mbox built here."""

from __future__ import annotations

import mailbox
import os
import signal
import socket
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import orjson
import pytest

from bouncewire.producers.signed_addresses import verify_address
from bouncewire.schemas import Codec, SchemaStore
from reliability.support import free_port, wait_until
from tests.producers.mail import messages
from tests.producers.mail.conftest import DOMAIN, RING, make_topics, verp_address
from tests.producers.smtp_server import self_signed_cert
from tests.producers.unsubscribe.unsubscribe_harness import LiveService

KEYS = "m2:" + "mail-serve-secret-" + "s" * 16  # RING's key, as the environment gives it
LINE_KEYS = {"file", "kind", "email", "ts", "smtp_code", "enhanced_code", "smtp_message",
             "remote_mta", "message_id", "campaign_id", "meta"}


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    return {**clean, "BOUNCEWIRE_UNSUBSCRIBE_SECRET": KEYS, **extra}


def bouncewire(*argv: str, stdin: bytes = b"", environ: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bouncewire", *argv], input=stdin,
                          capture_output=True, env=environ or env(), timeout=120, check=False)


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_verp_address_prints_a_signed_return_path() -> None:
    result = bouncewire("verp-address", "Jane@Example.com", "--domain", DOMAIN,
                        "--campaign", "c1", "--meta", "m1")
    assert result.returncode == 0, result.stderr
    address = result.stdout.decode().strip()
    assert address.startswith("bounce+v1.m2.") and address.endswith("@" + DOMAIN)
    claims = verify_address(RING, address, "bounce")
    assert (claims.email, claims.campaign_id, claims.meta) == ("Jane@Example.com", "c1", "m1")
    no_keys = bouncewire("verp-address", "a@example.com", "--domain", DOMAIN,
                         environ={k: v for k, v in env().items() if "SECRET" not in k})
    assert no_keys.returncode == 2 and b"no signing key" in no_keys.stderr


def test_parse_prints_one_line_per_event_with_classify_verdicts(tmp_path: Path) -> None:
    email = "jane@recipient.example"
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(messages.dsn(email, to=verp_address(email)))
    hello = tmp_path / "hello.eml"
    hello.write_bytes(messages.unrecognised(to="x@example.com"))
    result = bouncewire("mail", "parse", str(bounce), str(hello), "-",
                        stdin=messages.arf("bob@recipient.example", to="fbl@x.example"))
    assert result.returncode == 0, result.stderr
    event, unknown, complaint = lines(result)
    assert LINE_KEYS | {"bounce", "error_class", "reason"} <= set(event)
    assert (event["file"], event["kind"], event["email"]) == (str(bounce), "bounce", email)
    assert (event["bounce"], event["error_class"], event["reason"]) == (
        "hard", "invalid_email_id", "user_unknown")
    assert (event["smtp_code"], event["enhanced_code"], event["campaign_id"]) == (
        550, "5.1.1", "camp-7")
    assert (unknown["file"], unknown["kind"], "email" in unknown) == (str(hello), "unknown", False)
    assert (complaint["file"], complaint["kind"], complaint["email"]) == (
        "-", "complaint", "bob@recipient.example")
    assert complaint["source"] == "complaint" and "bounce" not in complaint


def test_parse_names_an_unreadable_path_and_exits_1(tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(messages.dsn("a@recipient.example", to="b@x.example"))
    result = bouncewire("mail", "parse", str(tmp_path / "missing.eml"), str(good), str(tmp_path))
    assert result.returncode == 1
    assert b"missing.eml: No such file or directory" in result.stderr
    assert b"not a Maildir" in result.stderr
    assert [line["email"] for line in lines(result)] == ["a@recipient.example"]


def test_no_complaint_unsubscribes_counts_the_complaint_only(tmp_path: Path) -> None:
    result = bouncewire("mail", "parse", "--no-complaint-unsubscribes", "-",
                        stdin=messages.arf("bob@recipient.example", to="fbl@x.example"))
    [line] = lines(result)
    assert (line["kind"], "email" in line) == ("complaint", False)
    assert line["counted"] == ["complaint", "complaint_unsubscribe_off"]


def _maildir(root: Path, messages_by_name: dict[str, bytes]) -> None:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True)
    for name, raw in messages_by_name.items():
        (root / "new" / name).write_bytes(raw)


@pytest.mark.integration
def test_produce_publishes_files_maildir_messages_and_reimports_deduplicated(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = make_topics(kafka_bootstrap)
    a, b = (f"{n}-{uuid.uuid4().hex[:6]}@recipient.example" for n in "ab")
    maildir, done = tmp_path / "Maildir", tmp_path / "Done"
    _maildir(maildir, {"1.host": messages.dsn(a, to=verp_address(a)),
                       "2.host": messages.unrecognised(to="x@example.com")})
    box = mailbox.mbox(tmp_path / "complaints.mbox")
    box.add(messages.arf(b, to="fbl@x.example"))
    box.add(messages.dsn(a, to="x@example.com", action="delayed", status="4.4.1",
                         diagnostic="smtp; 421 4.4.1 later"))
    box.close()
    argv = ["mail", "produce", "--bootstrap-servers", kafka_bootstrap, "--send-results-topic",
            topics.send_results, "--unsubscribes-topic", topics.unsubscribes]
    mbox = str(tmp_path / "complaints.mbox")
    first = bouncewire(*argv, "--move-to", str(done), str(maildir), mbox)
    assert first.returncode == 0, first.stderr
    assert b"published 2 events" in first.stderr and b"counted delay 1" in first.stderr
    # The recognised message was filed (seen, moved); the unrecognised one stays, unread.
    assert [p.name for p in (done / "cur").iterdir()] == ["1.host:2,S"]
    assert [p.name for p in (maildir / "new").iterdir()] == ["2.host"]
    # Importing the same messages again gives the same event ids.
    (done / "cur" / "1.host:2,S").rename(maildir / "cur" / "1.host:2,S")
    again = bouncewire(*argv, str(maildir), mbox)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (maildir / "cur").iterdir()] == ["1.host:2,S"]
    codec = Codec(SchemaStore.load())
    send_results = LiveService("", topics.send_results, kafka_bootstrap, codec)
    unsubscribes = LiveService("", topics.unsubscribes, kafka_bootstrap, codec)
    bounces = [send_results.decode(m) for m in send_results.published_since([0] * 3)]
    complaints = [unsubscribes.decode(m) for m in unsubscribes.published_since([0] * 3)]
    assert [r["email"] for r in bounces] == [a, a] and len({r["event_id"] for r in bounces}) == 1
    assert [(r["email"], r["source"]) for r in complaints] == [(b, "complaint")] * 2
    assert len({r["event_id"] for r in complaints}) == 1


def test_produce_without_a_broker_publishes_nothing_and_files_nothing(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    _maildir(maildir, {"1.host": messages.dsn("a@recipient.example", to="x@example.com")})
    result = bouncewire("mail", "produce", "--bootstrap-servers", "127.0.0.1:1",
                        "--broker-timeout", "1", str(maildir))
    assert result.returncode == 2 and b"nothing published" in result.stderr
    assert [p.name for p in (maildir / "new").iterdir()] == ["1.host"]


@pytest.mark.integration
def test_serve_command_takes_a_bounce_from_swaks_and_stops_cleanly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The real `bouncewire mail serve` process, swaks as the sending MTA (null sender, over
    STARTTLS with the server's --tls-cert)."""
    cert = self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("no openssl CLI to make a certificate")
    topics = make_topics(kafka_bootstrap)
    port, metrics_port = free_port(), free_port()
    email = f"s-{uuid.uuid4().hex[:6]}@recipient.example"
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(messages.dsn(email, to=verp_address(email)))
    argv = [sys.executable, "-m", "bouncewire", "mail", "serve", "--port", str(port),
            "--domain", DOMAIN, "--metrics-port", str(metrics_port), "--bootstrap-servers",
            kafka_bootstrap, "--send-results-topic", topics.send_results,
            "--unsubscribes-topic", topics.unsubscribes, "--tls-cert", str(cert.certfile),
            "--tls-key", str(cert.keyfile)]
    with subprocess.Popen(argv, env=env(), stderr=subprocess.PIPE) as server:
        try:
            assert wait_until(lambda: _listening(port), 30), "mail serve did not start"
            sent = subprocess.run(
                ["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", "",
                 "--to", verp_address(email), "--data", str(bounce), "--tls"],
                capture_output=True, timeout=60, check=False)
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert b"STARTTLS" in sent.stdout and b"250 2.0.0" in sent.stdout
            refused = subprocess.run(
                ["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", "a@b.example",
                 "--to", "victim@elsewhere.example", "--quit-after", "RCPT"],
                capture_output=True, timeout=60, check=False)
            assert refused.returncode != 0 and b"550 5.7.1" in refused.stdout
            base = f"http://127.0.0.1:{metrics_port}"
            assert httpx.get(base + "/healthz").status_code == 200
            metrics = httpx.get(base + "/metrics").text
            assert 'bouncewire_mail_messages_total{kind="bounce"} 1.0' in metrics
        finally:
            server.send_signal(signal.SIGTERM)
            stderr = server.communicate(timeout=30)[1]
    assert server.returncode == 0, stderr[-2000:]
    assert email.encode() not in stderr  # logs never carry an address
    codec = Codec(SchemaStore.load())
    reader = LiveService("", topics.send_results, kafka_bootstrap, codec)
    [record] = [reader.decode(m) for m in reader.published_since([0] * 3)]
    assert (record["email"], record["campaign_id"]) == (email, "camp-7")


def _listening(port: int) -> bool:
    with closing(socket.socket()) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_parse_finds_the_verp_address_in_delivered_to(tmp_path: Path) -> None:
    """Stored mail keeps its envelope recipient in Delivered-To: a bounce To: someone else
    (forwarded into the bounce mailbox) is still attributed by the token there."""
    email = "jane@recipient.example"
    stored = (b"Delivered-To: " + verp_address(email).encode() + b"\r\n"
              + messages.dsn("fwd@elsewhere.example", to="postmaster@sender.example"))
    result = bouncewire("mail", "parse", "-", stdin=stored)
    [line] = lines(result)
    assert (line["email"], line["campaign_id"], line["meta"]) == (email, "camp-7", "meta-7")
