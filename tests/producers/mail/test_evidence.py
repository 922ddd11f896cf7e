"""Reading one recipient's diagnosis: reply code, enhanced status, transport failure, inference."""

from __future__ import annotations

import pytest

from bouncewire.producers.mail import parse_message
from bouncewire.producers.mail.evidence import Found, recipient_report
from bouncewire.producers.mail.text import find_reply
from bouncewire.schemas.classification import classify


@pytest.mark.parametrize(
    ("diagnosis", "status", "kind", "expected"),
    [
        # (code, enhanced, error, inferred)
        (
            "550 5.1.1 <a@x>: Recipient address rejected",
            "5.0.0",
            "bounce",
            (550, "5.1.1", None, ()),
        ),
        (
            "550-5.7.1 [192.0.2.1] blocked\n550 5.7.1 see url",
            None,
            "bounce",
            (550, "5.7.1", None, ()),
        ),
        (
            "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##",
            None,
            "bounce",
            (550, "5.1.1", None, ()),
        ),
        (
            "host mx.y[192.0.2.9] said: 452 4.2.2 Mailbox full",
            "4.2.2",
            "delay",
            (452, "4.2.2", None, ()),
        ),
        (
            "ERROR_CODE :550, ERROR_CODE :5.1.1 <a@x>... User unknown",
            None,
            "bounce",
            (550, "5.1.1", None, ()),
        ),
        (
            "Sorry, no mailbox here by that name. (#5.1.1)",
            None,
            "bounce",
            (550, "5.1.1", None, ("smtp_code",)),
        ),
        (
            "connect to mx.y[192.0.2.1]:25: Connection timed out",
            "4.4.1",
            "delay",
            (450, "4.4.1", "timeout", ("smtp_code",)),
        ),
        (
            "connect to mx.y[192.0.2.1]:25: Connection refused",
            "4.4.1",
            "delay",
            (450, "4.4.1", "connection_refused", ("smtp_code",)),
        ),
        (
            "Host or domain name not found. Name service error for name=x.invalid type=MX",
            "5.4.4",
            "bounce",
            (550, "5.4.4", "dns_failure", ("smtp_code",)),
        ),
        (
            "lost connection with mx.y[192.0.2.1] while receiving the initial server greeting",
            "4.4.2",
            "delay",
            (450, "4.4.2", "connection_reset", ("smtp_code",)),
        ),
        (
            "TLS is required, but was not offered by host mx.y[192.0.2.1]",
            "4.7.4",
            "delay",
            (450, "4.7.4", "tls_failure", ("smtp_code",)),
        ),
        (
            "User jo (jo@x) not listed in Domino Directory",
            None,
            "bounce",
            (550, None, None, ("smtp_code",)),
        ),
        (
            "550 Requested action not taken: mailbox unavailable",
            "5.5.0",
            "bounce",
            (550, "5.5.0", None, ()),
        ),
        (
            "550 5.2.1 The email account that you tried to reach is disabled",
            None,
            "bounce",
            (550, "5.2.1", None, ()),
        ),
        (
            "421 4.7.0 Try again later, closing connection.",
            "4.7.0",
            "delay",
            (421, "4.7.0", None, ()),
        ),
        (None, "5.1.1", "bounce", (550, "5.1.1", None, ("smtp_code",))),
        (None, None, "delivered", (250, None, None, ("smtp_code",))),
        # The parser reports the status as stated, never one read into the words: what
        # "mailbox unavailable" or "no such user" mean is classify's to say (the events layer
        # fills in the code classify's verdict implies, schemas.classification).
        (
            "550 Requested action not taken: mailbox unavailable",
            "5.0.0",
            "bounce",
            (550, "5.0.0", None, ()),
        ),
        ("550 No such user here", "5.0.0", "bounce", (550, "5.0.0", None, ())),
        (
            "452 Requested action not taken: mailbox unavailable",
            "4.0.0",
            "delay",
            (452, "4.0.0", None, ()),
        ),
    ],
)
def test_recipient_report(
    diagnosis: str | None, status: str | None, kind: str, expected: tuple[object, ...]
) -> None:
    found = Found("a@x.example", diagnosis, kind, status)  # type: ignore[arg-type]
    report = recipient_report(found)
    assert (report.smtp_code, report.enhanced_code, report.error, report.inferred) == expected


def test_a_delay_is_never_given_a_permanent_code() -> None:
    report = recipient_report(Found("a@x.example", "Mailbox unknown, will retry", kind="delay"))
    assert report.smtp_code == 450 and report.enhanced_code is None


def test_reply_text_ends_with_its_paragraph() -> None:
    reply = find_reply("550 5.1.1 user unknown\n\nPlease contact your administrator.")
    assert reply.message == "5.1.1 user unknown"


def test_numbers_that_are_no_reply_codes() -> None:
    assert find_reply("Your message of 2500 bytes to 10.5.1.1 port 25 was returned").code is None


def test_a_transcript_reply_is_the_failure_not_the_accepted_command() -> None:
    transcript = (
        "... while talking to mx.y.example.:\n>>> MAIL From:<x@ours.example>\n"
        "<<< 250 2.1.0 Sender ok\n>>> RCPT To:<y@y.example>\n"
        "<<< 550 5.1.1 <y@y.example>... User unknown"
    )
    reply = find_reply(transcript)
    assert (reply.code, reply.enhanced) == (550, "5.1.1")


_TWO_STAGES = b"""\
From: MAILER-DAEMON@mta.example (Mail Delivery System)
To: news@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta.example.

<ann@one.example>: host mx.one.example[192.0.2.1] said: 550 <ann@one.example>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)

<bob@two.example>: host mx.two.example[192.0.2.2] said: 554 delivery error: dd
    This user doesn't have a two.example account (in reply to end of DATA command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.example

Final-Recipient: rfc822; ann@one.example
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 <ann@one.example>: Recipient address rejected: User unknown

Final-Recipient: rfc822; bob@two.example
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 554 delivery error: dd This user doesn't have a two.example account

--B--
"""


def test_a_dsn_takes_each_recipients_smtp_command_from_its_human_readable_part() -> None:
    """Postfix names the stage only in the text ("in reply to RCPT TO command"), never in
    Diagnostic-Code: each recipient gets the command its own paragraph names."""
    report = parse_message(_TWO_STAGES)
    assert [(r.email, r.smtp_command) for r in report.recipients] == [
        ("ann@one.example", "RCPT"),
        ("bob@two.example", "DATA"),
    ]
    verdicts = [
        classify(r.email or "", r.smtp_code, r.enhanced_code, r.smtp_message, r.error,
                 command=r.smtp_command).bounce
        for r in report.recipients
    ]
    assert verdicts == ["hard", "soft"]
