"""Exim main-log lines, written from the formats of the Exim specification's chapter "Log
files" (Debian's exim4 conflicts with the postfix package the integration test needs, so
these are recorded shapes, not a live Exim): each line → one attempt and its verdict."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.mta_log import exim, notes
from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.notes import Note
from bouncewire.producers.mta_log.syslog import split_line
from bouncewire.schemas.classification import classify

OLD = "2024-06-05 15:09:21 1rABCD-000123-XY "  # 16-character id, Exim ≤ 4.96
NEW = "2024-06-05 15:09:21.123 +0200 [4711] 1sTXeE-00000003WQA-1aFt "  # 23 characters, 4.97+

# (line, recipient, status, smtp_code, enhanced_code, error, remote_mta, bounce, reason)
ATTEMPTS: list[tuple[Any, ...]] = [
    (
        OLD + "=> bob@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.1] "
        "X=TLS1.3:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=yes "
        'C="250 2.0.0 OK 1717600162 a1si" QT=1s DT=0s',
        "bob@example.com", "sent", 250, "2.0.0", None, "mx.example.com", "none", "delivered",
    ),
    (
        OLD + '-> carol@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.1] '
        'C="250 OK"',
        "carol@example.com", "sent", 250, None, None, "mx.example.com", "none", "delivered",
    ),
    (
        NEW + "=> local@shop.example <postmaster@shop.example> R=local_user T=mail_spool",
        "local@shop.example", "sent", 250, None, None, None, "none", "delivered",
    ),
    (
        OLD + "=> jdoe <jdoe@shop.example> R=localuser T=local_delivery",
        "jdoe@shop.example", "sent", 250, None, None, None, "none", "delivered",
    ),
    (
        OLD + "** /var/mail/full <full@shop.example> R=userforward T=address_file: "
        "mailbox is full (MTA-imposed quota exceeded while writing to /var/mail/full)",
        "full@shop.example", "bounced", 550, None, None, None, "soft", "mailbox_full",
    ),
    (
        OLD + "** dan@example.org R=dnslookup T=remote_smtp H=mx.example.org [2001:db8::25]:25: "
        "SMTP error from remote mail server after RCPT TO:<dan@example.org>: 550-5.1.1 The "
        "email account that you tried to reach does not exist.\\n550 5.1.1 Learn more (gsmtp)",
        "dan@example.org", "bounced", 550, "5.1.1", None, "mx.example.org", "hard",
        "user_unknown",
    ),
    (
        NEW + "** eve@example.net R=dnslookup T=remote_smtp H=mx.example.net [192.0.2.9]: SMTP "
        "error from remote mail server after pipelined end of data: 552 5.2.2 Mailbox full "
        "(quota (of 1 GB) exceeded)",
        "eve@example.net", "bounced", 552, "5.2.2", None, "mx.example.net", "soft",
        "mailbox_full",
    ),
    (
        OLD + "** nobody@nowhere.invalid: Unrouteable address",
        "nobody@nowhere.invalid", "bounced", 550, None, None, None, "hard", "host_unknown",
    ),
    (
        OLD + "** x@old.example R=dnslookup T=remote_smtp: SMTP error from remote mailer after "
        "RCPT TO:<x@old.example>: host mx.old.example [192.0.2.11]: 550 Unknown user",
        "x@old.example", "bounced", 550, None, None, "mx.old.example", "hard",
        "user_unknown",
    ),
    (
        OLD + "== fay@example.net R=dnslookup T=remote_smtp defer (-44) H=mx.example.net "
        "[192.0.2.9]: SMTP error from remote mail server after RCPT TO:<fay@example.net>: "
        "451 4.7.1 Greylisted, try again in 5 minutes",
        "fay@example.net", "deferred", 451, "4.7.1", None, "mx.example.net", None, None,
    ),
    (
        OLD + "== gus@down.example R=dnslookup T=remote_smtp defer (110): Connection timed out",
        "gus@down.example", "deferred", None, None, "timeout", None, None, None,
    ),
    (
        OLD + "== gus@closed.example R=dnslookup T=remote_smtp defer (111): Connection refused",
        "gus@closed.example", "deferred", None, None, "connection_refused", None, None, None,
    ),
    (
        OLD + "== hal@dns.example R=dnslookup defer (-1): host lookup did not complete",
        "hal@dns.example", "deferred", None, None, "dns_failure", None, None, None,
    ),
    (
        OLD + "== ida@tls.example R=dnslookup T=remote_smtp defer (-38) H=mx.tls.example "
        "[192.0.2.12]: a TLS session is required, but an attempt to start TLS failed",
        "ida@tls.example", "deferred", None, None, "tls_failure", None, None, None,
    ),
    (
        OLD + "== jo@drop.example R=dnslookup T=remote_smtp defer (-18) H=mx.drop.example "
        "[192.0.2.13]: Remote host closed connection in response to RCPT TO:<jo@drop.example>",
        "jo@drop.example", "deferred", None, None, "connection_reset", None, None, None,
    ),
    # Exim gives up: "expired", and the joiner gives it the last deferral's evidence.
    (
        OLD + "** gus@down.example R=dnslookup T=remote_smtp: retry timeout exceeded",
        "gus@down.example", "expired", 550, None, None, None, "soft", "timeout",
    ),
]


@pytest.mark.parametrize(
    ("line", "recipient", "status", "code", "enhanced", "error", "remote", "bounce", "reason"),
    ATTEMPTS,
)
def test_attempt_line(line: str, recipient: str, status: str, code: int | None,
                      enhanced: str | None, error: str | None, remote: str | None,
                      bounce: str | None, reason: str | None) -> None:
    attempt = exim.parse(split_line(line))
    assert isinstance(attempt, Attempt)
    evidence = attempt.evidence
    assert (attempt.recipient, attempt.status) == (recipient, status)
    assert (evidence.smtp_code, evidence.enhanced_code, evidence.error) == (code, enhanced, error)
    assert attempt.remote_mta == remote
    if bounce is not None:
        verdict = classify(recipient, evidence.smtp_code, evidence.enhanced_code,
                           evidence.smtp_message, evidence.error, command=attempt.command)
        assert (verdict.bounce, verdict.reason) == (bounce, reason)


def test_stage_drops_the_address() -> None:
    attempt = exim.parse(split_line(next(c[0] for c in ATTEMPTS if "dan@" in c[0])))
    assert isinstance(attempt, Attempt)
    assert attempt.stage == "after RCPT TO"
    assert attempt.evidence.smtp_message == (
        "5.1.1 The email account that you tried to reach does not exist.\n"
        "5.1.1 Learn more (gsmtp)")


@pytest.mark.parametrize(("line", "expected"), [
    (OLD + "<= news@shop.example H=(shop) [10.0.0.5] P=esmtp S=1234 id=m1@shop.example",
     Note("sender", "1rABCD-000123-XY", "news@shop.example", message_id="<m1@shop.example>")),
    (OLD + "<= <> R=1rABCC-000120-XX U=Debian-exim P=local S=2345",
     Note("sender", "1rABCD-000123-XY", "")),
    (OLD + "Completed", Note("removed", "1rABCD-000123-XY")),
    # Under syslog Exim writes no timestamp of its own.
    ("Jun  5 15:09:21 mx1 exim[4711]: 1rABCD-000123-XY Completed",
     Note("removed", "1rABCD-000123-XY")),
])
def test_queue_notes(line: str, expected: Note) -> None:
    assert exim.parse(split_line(line)) == expected


def test_syslog_line_takes_the_syslog_stamp() -> None:
    attempt = exim.parse(split_line(
        "Jun  5 15:09:21 mx1 exim[4711]: 1rABCD-000123-XY => a@b.example R=dnslookup "
        'T=remote_smtp H=mx.b.example [192.0.2.1] C="250 OK"'))
    assert isinstance(attempt, Attempt) and attempt.stamp == "Jun  5 15:09:21"


@pytest.mark.parametrize("line", [
    OLD + "H=(x) [192.0.2.1] F=<a@b> rejected RCPT <c@d>: relay not permitted",
    OLD + "*> a@b.example R=dnslookup T=remote_smtp H=mx [192.0.2.1]",
    "2024-06-05 15:09:21 Start queue run: pid=12345",
    "Jun  5 15:09:21 mx1 postfix/smtp[1]: 1rABCD-000123-XY => a@b",
])
def test_other_lines(line: str) -> None:
    assert exim.parse(split_line(line)) == notes.OTHER


@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    for flag in ("=> ", "** ", "== ", "<= ", ""):
        exim.parse(split_line(OLD + flag + text))
