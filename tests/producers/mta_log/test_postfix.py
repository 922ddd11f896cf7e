"""Postfix delivery and queue lines, written from the shapes in Postfix's own logs (mail.md §4,
postconf(5), the bounce(8)/smtp(8) manuals): each line → one attempt with the recipient, code,
enhanced code, error kind and the classifier's verdict."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.mta_log import notes, postfix
from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.notes import Note
from bouncewire.producers.mta_log.syslog import split_line
from bouncewire.schemas.classification import classify

P = "Jun  5 15:09:21 mx1 postfix/smtp[2417]: "

# (line, recipient, status, smtp_code, enhanced_code, error, remote_mta, stage, bounce, reason)
DELIVERIES: list[tuple[Any, ...]] = [
    (
        P + "7C2D9E1F02: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1.2, "
        "delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4BwX2Q0kz)",
        "bob@example.com", "sent", 250, "2.0.0", None, "mx.example.com", None, "none", "delivered",
    ),
    (
        P + "7C2D9E1F02: to=<dan@example.org>, relay=mx.example.org[192.0.2.2]:25, delay=0.9, "
        "delays=0.1/0/0.4/0.4, dsn=5.1.1, status=bounced (host mx.example.org[192.0.2.2] said: "
        "550 5.1.1 <dan@example.org>: Recipient address rejected: User unknown in virtual "
        "mailbox table (in reply to RCPT TO command))",
        "dan@example.org", "bounced", 550, "5.1.1", None, "mx.example.org",
        "in reply to RCPT TO command", "hard", "user_unknown",
    ),
    # Gmail's multi-line reply joined by Postfix, an IPv6 relay, orig_to=.
    (
        "Jun  5 15:09:21 mx1 postfix-out/smtp[2417]: 3F1A2B: to=<nobody@gmail.com>, "
        "orig_to=<alias@shop.example>, relay=gmail-smtp-in.l.google.com[2a00:1450:400c:c0b::1b]:25,"
        " delay=0.61, delays=0.02/0/0.27/0.32, dsn=5.1.1, status=bounced (host "
        "gmail-smtp-in.l.google.com[2a00:1450:400c:c0b::1b] said: 550-5.1.1 The email account "
        "that you tried to reach does not exist. Please try 550-5.1.1 double-checking the "
        "recipient's email address for typos or 550-5.1.1 unnecessary spaces. Learn more at "
        "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser e7si (gsmtp) (in reply to RCPT "
        "TO command))",
        "nobody@gmail.com", "bounced", 550, "5.1.1", None, "gmail-smtp-in.l.google.com",
        "in reply to RCPT TO command", "hard", "user_unknown",
    ),
    # Brackets and parentheses inside the reply; the stage is only the last "(in reply to".
    (
        P + "AB12CD: to=<eve@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=3, "
        "delays=0/0/1/2, dsn=5.7.1, status=bounced (host mx.example.net[192.0.2.9] said: 554 "
        "5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org "
        "(see https://www.spamhaus.org/query/ip/203.0.113.7 (listed)) [x(y)z] (in reply to RCPT "
        "TO command))",
        "eve@example.net", "bounced", 554, "5.7.1", None, "mx.example.net",
        "in reply to RCPT TO command", "soft", "blocked",
    ),
    (
        P + "AB12CD: to=<big@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=3, "
        "delays=0/0/1/2, dsn=5.3.4, status=bounced (host mx.example.net[192.0.2.9] said: 552 "
        "5.3.4 Message size exceeds fixed limit (in reply to end of DATA command))",
        "big@example.net", "bounced", 552, "5.3.4", None, "mx.example.net",
        "in reply to end of DATA command", "soft", "message_too_large",
    ),
    # A reply without an enhanced code: Postfix's dsn= stands in.
    (
        P + "AB12CD: to=<old@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=1, "
        "delays=0/0/0.5/0.5, dsn=5.0.0, status=bounced (host mx.example.net[192.0.2.9] said: "
        "550 No such user here (in reply to RCPT TO command))",
        "old@example.net", "bounced", 550, "5.0.0", None, "mx.example.net",
        "in reply to RCPT TO command", "hard", "user_unknown",
    ),
    (
        P + "AB12CD: to=<x@greeting.example>, relay=mx.greeting.example[192.0.2.3]:25, delay=1, "
        "delays=0/0/1/0, dsn=5.7.1, status=bounced (host mx.greeting.example[192.0.2.3] refused "
        "to talk to me: 554 5.7.1 Your IP is on our blocklist)",
        "x@greeting.example", "bounced", 554, "5.7.1", None, "mx.greeting.example", None, "soft",
        "blocked",
    ),
    # Our relay refused our credentials: the reply is behind a preamble; no bounce at all.
    (
        P + "9F8E7D: to=<a@b.example>, relay=smarthost.example[192.0.2.20]:587, delay=1, "
        "delays=0/0/1/0, dsn=4.7.8, status=deferred (SASL authentication failed; server "
        "smarthost.example[192.0.2.20] said: 535 5.7.8 Error: authentication failed: "
        "authentication failure)",
        "a@b.example", "deferred", 535, "5.7.8", None, "smarthost.example", None, None, None,
    ),
    # No remote reply: the failure kind through producers.smtp_errors.
    (
        P + "9F8E7D: to=<a@down.example>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, "
        "status=deferred (connect to mx.down.example[192.0.2.4]:25: Connection timed out)",
        "a@down.example", "deferred", None, "4.4.1", "timeout", None, None, None, None,
    ),
    (
        P + "9F8E7D: to=<a@closed.example>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, "
        "status=deferred (connect to mx.closed.example[2001:db8::25]:25: Connection refused)",
        "a@closed.example", "deferred", None, "4.4.1", "connection_refused", None, None, None,
        None,
    ),
    (
        P + "9F8E7D: to=<a@nxdomain.example>, relay=none, delay=0.2, delays=0/0/0.2/0, "
        "dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for "
        "name=nxdomain.example type=A: Host not found)",
        "a@nxdomain.example", "bounced", 550, "5.4.4", "dns_failure", None, None, "hard",
        "host_unknown",
    ),
    (
        P + "9F8E7D: to=<a@servfail.example>, relay=none, delay=0.2, delays=0/0/0.2/0, "
        "dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for "
        "name=servfail.example type=MX: Host not found, try again)",
        "a@servfail.example", "deferred", None, "4.4.3", "dns_failure", None, None, "soft",
        "dns_failure",
    ),
    (
        P + "9F8E7D: to=<a@flaky.example>, relay=mx.flaky.example[192.0.2.5]:25, delay=5, "
        "delays=0/0/0.1/4.9, dsn=4.4.2, status=deferred (lost connection with "
        "mx.flaky.example[192.0.2.5] while receiving the initial server greeting)",
        "a@flaky.example", "deferred", None, "4.4.2", "connection_reset", None, None, None, None,
    ),
    (
        P + "9F8E7D: to=<a@tls.example>, relay=mx.tls.example[192.0.2.6]:25, delay=1, "
        "delays=0/0/1/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
        "a@tls.example", "deferred", None, "4.7.5", "tls_failure", None, None, None, None,
    ),
    (
        P + "9F8E7D: to=<a@slow.example>, relay=mx.slow.example[192.0.2.7]:25, delay=300, "
        "delays=0/0/0/300, dsn=4.4.2, status=deferred (conversation with "
        "mx.slow.example[192.0.2.7] timed out while sending end of data -- message may be "
        "sent more than once)",
        "a@slow.example", "deferred", None, "4.4.2", "timeout", None, None, None, None,
    ),
    (
        P + "9F8E7D: to=<a@grey.example>, relay=mx.grey.example[192.0.2.8]:25, delay=1, "
        "delays=0/0/0.5/0.5, dsn=4.7.1, status=deferred (host mx.grey.example[192.0.2.8] said: "
        "451 4.7.1 Greylisted, please try again later (in reply to RCPT TO command))",
        "a@grey.example", "deferred", 451, "4.7.1", None, "mx.grey.example",
        "in reply to RCPT TO command", None, None,
    ),
    (
        P + "9F8E7D: to=<a@down.example>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, "
        "status=deferred (delivery temporarily suspended: connect to "
        "mx.down.example[192.0.2.4]:25: Connection timed out)",
        "a@down.example", "deferred", None, "4.4.1", "timeout", None, None, None, None,
    ),
    # Local delivery agents: no SMTP reply, the code stands for the DSN class.
    (
        "Jun  5 15:09:21 mx1 postfix/local[3001]: 5A6B7C: to=<nouser@mx1.example>, relay=local, "
        "delay=0.01, delays=0/0/0/0, dsn=5.1.1, status=bounced (unknown user: \"nouser\")",
        "nouser@mx1.example", "bounced", 550, "5.1.1", None, None, None, "hard", "user_unknown",
    ),
    (
        "Jun  5 15:09:21 mx1 postfix/local[3001]: 5A6B7C: to=<root@mx1.example>, "
        "orig_to=<postmaster@mx1.example>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
        "status=sent (delivered to mailbox)",
        "root@mx1.example", "sent", 250, "2.0.0", None, None, None, "none", "delivered",
    ),
    (
        "Jun  5 15:09:21 mx1 postfix/virtual[3002]: 5A6B7C: to=<u@virt.example>, "
        "relay=virtual, delay=0.02, delays=0/0/0/0.02, dsn=2.0.0, status=sent (delivered to "
        "maildir)",
        "u@virt.example", "sent", 250, "2.0.0", None, None, None, "none", "delivered",
    ),
    (
        "Jun  5 15:09:21 mx1 postfix/error[3003]: 5A6B7C: to=<gone@shop.example>, relay=none, "
        "delay=0.1, delays=0.1/0/0/0, dsn=5.0.0, status=bounced (User unknown in virtual alias "
        "table)",
        # Words alone under dsn=5.0.0, no SMTP stage: soft (real Postfix writes 5.1.1 here).
        "gone@shop.example", "bounced", 550, "5.0.0", None, None, None, "soft", "user_unknown",
    ),
    (
        "Jun  5 15:09:21 mx1 postfix/pipe[3004]: 5A6B7C: to=<u@shop.example>, relay=dovecot, "
        "delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered via dovecot service)",
        "u@shop.example", "sent", 250, "2.0.0", None, None, None, "none", "delivered",
    ),
    (
        "Jun  5 15:09:21 mx1 postfix/lmtp[3005]: 5A6B7C: to=<u@shop.example>, "
        "relay=mail.shop.example[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0,"
        " status=sent (250 2.0.0 <u@shop.example> kLo0AQ Saved)",
        "u@shop.example", "sent", 250, "2.0.0", None, "mail.shop.example", None, "none",
        "delivered",
    ),
    # Older lines without dsn= or delays=; a multi-instance name without "postfix".
    (
        "Jun  5 15:09:21 mx1 bwtest/smtp[11]: 1A2B3C: to=<a@b.example>, relay=mx.b.example"
        "[192.0.2.10]:25, delay=2, status=sent (250 OK id=1rABCD-000123-XY)",
        "a@b.example", "sent", 250, None, None, "mx.b.example", None, "none", "delivered",
    ),
    # soft_bounce = yes: a 5xx kept in the queue.
    (
        P + "1A2B3C: to=<a@b.example>, relay=mx.b.example[192.0.2.10]:25, delay=1, "
        "delays=0/0/0.5/0.5, dsn=5.1.1, status=SOFTBOUNCE (host mx.b.example[192.0.2.10] said: "
        "550 5.1.1 unknown (in reply to RCPT TO command))",
        "a@b.example", "deferred", 550, "5.1.1", None, "mx.b.example",
        "in reply to RCPT TO command", None, None,
    ),
    # enable_long_queue_ids, RFC 5424 with the year, journalctl -o cat without any prefix.
    (
        "<22>1 2024-06-05T15:09:21.003+02:00 mx1 postfix/smtp 2417 - - 4Vq3Kp1Zx9z9sLw: "
        "to=<a@b.example>, relay=mx.b.example[192.0.2.10]:25, delay=0.3, delays=0/0/0.1/0.2, "
        "dsn=2.0.0, status=sent (250 2.0.0 OK)",
        "a@b.example", "sent", 250, "2.0.0", None, "mx.b.example", None, "none", "delivered",
    ),
    (
        "4Vq3Kp1Zx9z9sLw: to=<a@b.example>, relay=mx.b.example[192.0.2.10]:25, delay=0.3, "
        "delays=0/0/0.1/0.2, dsn=4.2.2, status=deferred (host mx.b.example[192.0.2.10] said: 452 "
        "4.2.2 Mailbox full (in reply to RCPT TO command))",
        "a@b.example", "deferred", 452, "4.2.2", None, "mx.b.example",
        "in reply to RCPT TO command", None, None,
    ),
    # An anonymised queue id, no host in the prefix.
    (
        "Jun  5 15:09:21 postfix/smtp[2417]: XXXX-XXXX: to=<a@b.example>, relay=mx.b.example"
        "[192.0.2.10]:25, delay=2, delays=0/0/1/1, dsn=2.0.0, status=sent (250 2.0.0 OK)",
        "a@b.example", "sent", 250, "2.0.0", None, "mx.b.example", None, "none", "delivered",
    ),
    # An exploit string as local part is data, nothing more.
    (
        P + "1A2B3C: to=<${run{\\x2fbin\\x2fsh}}@b.example>, relay=mx.b.example[192.0.2.10]:25, "
        "delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.b.example[192.0.2.10] "
        "said: 550 5.1.1 no such user (in reply to RCPT TO command))",
        "${run{\\x2fbin\\x2fsh}}@b.example", "bounced", 550, "5.1.1", None, "mx.b.example",
        "in reply to RCPT TO command", "hard", "invalid_syntax",
    ),
]


@pytest.mark.parametrize(
    ("line", "recipient", "status", "code", "enhanced", "error", "remote", "stage", "bounce",
     "reason"),
    DELIVERIES,
)
def test_delivery_line(line: str, recipient: str, status: str, code: int | None,
                       enhanced: str | None, error: str | None, remote: str | None,
                       stage: str | None, bounce: str | None, reason: str | None) -> None:
    attempt = postfix.parse(split_line(line))
    assert isinstance(attempt, Attempt)
    evidence = attempt.evidence
    assert (attempt.recipient, attempt.status) == (recipient, status)
    assert (evidence.smtp_code, evidence.enhanced_code, evidence.error) == (code, enhanced, error)
    assert (attempt.remote_mta, attempt.stage) == (remote, stage)
    assert evidence.smtp_message  # the text is always kept
    if bounce is not None:
        verdict = classify(recipient, evidence.smtp_code, evidence.enhanced_code,
                           evidence.smtp_message, evidence.error, command=attempt.command)
        assert (verdict.bounce, verdict.reason) == (bounce, reason)


def test_multi_line_reply_keeps_its_lines_without_the_repeated_codes() -> None:
    attempt = postfix.parse(split_line(next(c[0] for c in DELIVERIES if "gmail" in c[0])))
    assert isinstance(attempt, Attempt)
    assert attempt.evidence.smtp_message is not None
    assert attempt.evidence.smtp_message.splitlines()[1] == (
        "5.1.1 double-checking the recipient's email address for typos or")
    assert attempt.orig_recipient == "alias@shop.example"


@pytest.mark.parametrize(("line", "expected"), [
    (P.replace("smtp", "cleanup") + "7C2D9E1F02: message-id=<m1@shop.example>",
     Note("message_id", "7C2D9E1F02", "<m1@shop.example>")),
    (P.replace("smtp", "qmgr") + "7C2D9E1F02: from=<news@shop.example>, size=1234, nrcpt=2 "
     "(queue active)", Note("sender", "7C2D9E1F02", "news@shop.example")),
    (P.replace("smtp", "qmgr") + "7C2D9E1F02: from=<>, size=2345, nrcpt=1 (queue active)",
     Note("sender", "7C2D9E1F02", "")),
    (P.replace("smtp", "qmgr") + "7C2D9E1F02: from=<news@shop.example>, status=expired, "
     "returned to sender", Note("expired", "7C2D9E1F02", stamp="Jun  5 15:09:21")),
    (P.replace("smtp", "qmgr") + "7C2D9E1F02: removed", Note("removed", "7C2D9E1F02")),
    # postfix/bounce: the notice to our sender is the MTA's own mail, whatever follows.
    (P.replace("smtp", "bounce") + "7C2D9E1F02: sender non-delivery notification: 8D3E0A1B03",
     Note("sender", "8D3E0A1B03", "")),
    (P.replace("smtp", "bounce") + "7C2D9E1F02: sender delay notification: 8D3E0A1B04",
     Note("sender", "8D3E0A1B04", "")),
])
def test_queue_notes(line: str, expected: Note) -> None:
    assert postfix.parse(split_line(line)) == expected


@pytest.mark.parametrize(("line", "reason"), [
    (P.replace("smtp", "smtpd") + "connect from shop[10.0.0.5]", notes.OTHER),
    (P.replace("smtp", "smtpd") + "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b>: "
     "Relay access denied; from=<s@x> to=<a@b> proto=ESMTP helo=<x>", notes.OTHER),
    (P + "connect to mx.down.example[192.0.2.4]:25: Connection timed out", notes.OTHER),
    ("Jun  5 15:09:21 mx1 sshd[99]: 7C2D9E1F02: to=<a@b>, status=sent", notes.OTHER),
    (P + "7C2D9E1F02: to=<a@b.example>, relay=none, delay=1", notes.MALFORMED),
    (P + "7C2D9E1F02: to=<a@b.example", notes.MALFORMED),
    (P + "7C2D9E1F02: to=<a@b.example>, relay=none, status=weird (x)", notes.UNKNOWN_STATUS),
    (P + "7C2D9E1F02: to=<a@b.example>, relay=mx[1.2.3.4]:25, delay=1, dsn=2.1.5, "
     "status=deliverable (250 2.1.5 Ok)", notes.PROBE),
])
def test_lines_without_attempts(line: str, reason: str) -> None:
    assert postfix.parse(split_line(line)) == reason


def test_a_garbled_dsn_is_left_out_not_fatal() -> None:
    attempt = postfix.parse(split_line(P + "1A2B3C: to=<a@b.example>, relay=none, delay=1, "
                                       "dsn=9.9, status=bounced (unknown user: \"a\")"))
    assert isinstance(attempt, Attempt)
    assert (attempt.evidence.smtp_code, attempt.evidence.enhanced_code) == (550, None)


def test_attempt_key_tells_retries_apart() -> None:
    timeout = next(case[0] for case in DELIVERIES if "delay=30," in case[0])
    first = postfix.parse(split_line(timeout))
    later = postfix.parse(split_line(timeout.replace("delay=30,", "delay=930,")))
    assert isinstance(first, Attempt) and isinstance(later, Attempt)
    assert first.attempt != later.attempt


@given(st.text(max_size=300))
def test_never_raises_on_any_text(text: str) -> None:
    postfix.parse(split_line(text))
    postfix.parse(split_line(P + "7C2D9E1F02: to=<" + text))


@given(st.text(max_size=80), st.text(max_size=200))
def test_never_raises_on_delivery_shaped_noise(address: str, reason: str) -> None:
    line = (P + f"7C2D9E1F02: to=<{address}>, relay=mx[1.2.3.4]:25, delay=1, dsn=5.1.1, "
            f"status=bounced ({reason})")
    parsed = postfix.parse(split_line(line))
    assert isinstance(parsed, Attempt | str)
