"""What a log line's send result carries for the consumer, which classifies it without the
SMTP command: a verdict that rests on the command travels as the status it implies."""

from __future__ import annotations

import pytest

from bouncewire.producers.events import parse_send_result
from bouncewire.producers.mta_log import exim, postfix
from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.results import send_result_fields
from bouncewire.producers.mta_log.syslog import split_line
from bouncewire.schemas.classification import classify

P = "Jun  5 15:09:21 mx1 postfix/smtp[2417]: 7C2D9E1F02: to=<u@example.org>, "
E = "2024-06-05 15:09:22 1rABCD-000123-XY ** u@example.org R=dnslookup T=remote_smtp "


@pytest.mark.parametrize(
    ("parser", "line", "command", "enhanced", "bounce"),
    [
        (postfix, P + "relay=mx.example.org[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, "
         "status=bounced (host mx.example.org[192.0.2.2] said: 550 unknown user <u@example.org> "
         "(in reply to RCPT TO command))", "RCPT", "5.1.1", "hard"),
        (postfix, P + "relay=mx.example.org[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, "
         "status=bounced (host mx.example.org[192.0.2.2] said: 554 delivery error: dd This user "
         "doesn't have a example.org account (in reply to end of DATA command))", "DATA",
         "5.0.0", "soft"),
        (postfix, P + "relay=mx.example.org[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=5.2.1, "
         "status=bounced (host mx.example.org[192.0.2.2] said: 550 5.2.1 <u@example.org>... "
         "User Unknown (in reply to RCPT TO command))", "RCPT", "5.1.1", "hard"),
        (exim, E + "H=mx.example.org [192.0.2.2]: SMTP error from remote mail server after "
         "RCPT TO:<u@example.org>: 550 No Such User Here", "RCPT", "5.1.1", "hard"),
        (exim, E + "H=mx.example.org [192.0.2.2]: SMTP error from remote mail server after end "
         "of data: 550 unknown user", "DATA", None, "soft"),
    ],
)
def test_a_verdict_resting_on_the_command_travels_as_its_status(
    parser: object, line: str, command: str, enhanced: str | None, bounce: str
) -> None:
    attempt = parser.parse(split_line(line))  # type: ignore[attr-defined]
    assert isinstance(attempt, Attempt)
    assert attempt.command == command
    fields = send_result_fields(attempt, None)
    assert fields["smtp_command"] == command
    record = parse_send_result(fields, now_ms=0)  # what the reader publishes
    assert record["enhanced_code"] == enhanced
    evidence = attempt.evidence
    with_command = classify(
        attempt.recipient, evidence.smtp_code, evidence.enhanced_code, evidence.smtp_message,
        evidence.error, command=attempt.command,
    )
    without = classify(
        record["email"], record["smtp_code"], record.get("enhanced_code"),
        record.get("smtp_message"), record.get("error"),
    )
    assert with_command == without
    assert without.bounce == bounce
