"""`bouncewire mta-log` without Kafka: --dry-run output (the classify command's verdicts),
--strict, checkpoints that make a second run read only what is new, bad inputs."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from bouncewire import cli
from bouncewire._mta_log import MtaLogMetrics
from bouncewire.producers.mta_log import LogReader

LOG = """\
Jun  5 15:09:20 mx1 postfix/cleanup[2]: QA1: message-id=<m1@shop.example>
Jun  5 15:09:20 mx1 postfix/qmgr[3]: QA1: from=<news@shop.example>, size=1234, nrcpt=2 (queue active)
Jun  5 15:09:21 mx1 postfix/smtp[4]: QA1: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)
Jun  5 15:09:21 mx1 postfix/smtp[4]: QA1: to=<dan@example.org>, relay=mx.example.org[192.0.2.2]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.example.org[192.0.2.2] said: 550 5.1.1 <dan@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command))
Jun  5 15:09:21 mx1 postfix/qmgr[3]: QA1: removed
"""  # noqa: E501 -- real log lines are long
MORE = """\
Jun  5 15:10:21 mx1 postfix/smtp[4]: QB2: to=<eve@example.net>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to mx.example.net[192.0.2.3]:25: Connection refused)
Jun  5 15:10:22 mx1 postfix/smtp[4]: QB3: to=<fay@example.net>, relay=mx.example.net[192.0.2.3]:25, delay=1, delays=0/0/1/0, dsn=5.2.2, status=bounced (host mx.example.net[192.0.2.3] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command))
"""  # noqa: E501


Printed = tuple[int, list[dict[str, object]], str]


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> Printed:
    code = cli.main(["mta-log", *argv])
    captured = capsysbinary.readouterr()
    return code, [orjson.loads(line) for line in captured.out.splitlines()], captured.err.decode()


def test_dry_run_prints_results_with_their_verdicts(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log = tmp_path / "maillog"
    log.write_text(LOG)
    code, results, _ = run(capsysbinary, "postfix", str(log), "--dry-run")
    assert code == 0
    assert [(r["email"], r["smtp_code"], r["bounce"], r["error_class"], r["reason"])
            for r in results] == [
        ("bob@example.com", 250, "none", None, "delivered"),
        ("dan@example.org", 550, "hard", "invalid_email_id", "user_unknown"),
    ]
    assert {r["message_id"] for r in results} == {"<m1@shop.example>"}
    assert [(r["status"], r["queue_id"], r["stage"]) for r in results] == [
        ("sent", "QA1", None), ("bounced", "QA1", "in reply to RCPT TO command")]


def test_deferred_attempts_are_printed_only_when_asked(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log = tmp_path / "maillog"
    log.write_text(MORE)
    assert [r["status"] for r in run(capsysbinary, "postfix", str(log), "--dry-run")[1]] == [
        "bounced"]
    code, results, _ = run(capsysbinary, "postfix", str(log), "--dry-run", "--include-deferred")
    assert code == 0
    assert [(r["status"], r["error"], r["bounce"]) for r in results] == [
        ("deferred", "connection_refused", "soft"), ("bounced", None, "soft")]
    code, _, err = run(capsysbinary, "postfix", str(log), "--include-deferred")
    assert code == 2 and "--include-deferred is for --dry-run" in err


def test_checkpoint_makes_the_next_run_read_only_what_is_new(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log, checkpoint = tmp_path / "maillog", tmp_path / "maillog.checkpoint"
    log.write_text(LOG)
    flags = ["postfix", str(log), "--dry-run", "--checkpoint", str(checkpoint)]
    first = run(capsysbinary, *flags)[1]
    assert run(capsysbinary, *flags)[1] == []
    with open(log, "a") as handle:
        handle.write(MORE)
    new = run(capsysbinary, *flags)[1]
    assert [r["email"] for r in first + new] == [
        "bob@example.com", "dan@example.org", "fay@example.net"]


def test_stdin_and_journalctl_cat_lines(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    without_prefix = "".join(line.split(": ", 1)[1] + "\n" for line in LOG.splitlines())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(without_prefix.encode())))
    code, results, _ = run(capsysbinary, "postfix", "-", "--dry-run")
    assert code == 0 and len(results) == 2


def test_strict_fails_on_a_line_it_does_not_understand(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log = tmp_path / "maillog"
    log.write_text(LOG + "Jun  5 15:09:22 mx1 postfix/smtp[4]: QC1: to=<a@b.example>, relay=no\n")
    assert run(capsysbinary, "postfix", str(log), "--dry-run")[0] == 0
    code, results, err = run(capsysbinary, "postfix", str(log), "--dry-run", "--strict")
    assert code == 1 and len(results) == 2
    assert "line 6: line not understood (malformed_delivery)" in err


def test_bad_inputs_are_named(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, _, err = run(capsysbinary, "postfix", str(tmp_path / "nope"), "--dry-run")
    assert code == 2 and "no such log file" in err
    damaged = tmp_path / "cp.json"
    damaged.write_text("{")
    log = tmp_path / "maillog"
    log.write_text(LOG)
    code, _, err = run(capsysbinary, "exim", str(log), "--dry-run", "--checkpoint", str(damaged))
    assert code == 2 and "not valid JSON" in err
    code, _, err = run(capsysbinary, "postfix", "-", "--dry-run", "--checkpoint", str(damaged))
    assert code == 2 and "--checkpoint needs a log file" in err


def test_metrics_follow_the_reader_counts() -> None:
    registry = CollectorRegistry()
    metrics = MtaLogMetrics(registry)
    reader = LogReader("postfix")
    for line in LOG.splitlines():
        reader.read(line)
    metrics.update(reader, published=2, behind_s=0.0)
    for line in MORE.splitlines():
        reader.read(line)
    reader.read("Jun  5 15:10:23 mx1 postfix/anvil[9]: statistics: max connection rate 1/60s")
    metrics.update(reader, published=1, behind_s=3.5)
    sample = registry.get_sample_value
    assert sample("bouncewire_mta_log_lines_read_total") == 8
    assert sample("bouncewire_mta_log_events_published_total") == 3
    assert sample("bouncewire_mta_log_attempts_total", {"status": "deferred"}) == 1
    assert sample("bouncewire_mta_log_attempts_total", {"status": "bounced"}) == 2
    assert sample("bouncewire_mta_log_lines_skipped_total", {"reason": "other"}) == 1
    assert sample("bouncewire_mta_log_seconds_behind") == 3.5
