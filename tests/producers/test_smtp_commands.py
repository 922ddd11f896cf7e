"""command_in: the SMTP command a quoted reply answered, as MTAs name the stage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.smtp_commands import command_in


@pytest.mark.parametrize(
    ("text", "command"),
    [
        # Postfix (bounce text, DSN human part, log line); folded anywhere.
        ("host mx[192.0.2.1] said: 550 5.1.1 <u@x>... User Unknown (in reply to RCPT TO command)",
         "RCPT"),
        ("said: 550 <u@x>:\n    Recipient address rejected: User unknown (in reply\n"
         "    to RCPT TO command)", "RCPT"),
        ("said: 554 delivery error: dd This user doesn't have a x account (in reply to end of DATA "
         "command)", "DATA"),
        ("said: 553 sorry, rejected (in reply to MAIL FROM command)", "MAIL"),
        ("lost connection with mx[192.0.2.1] while sending RCPT TO", "RCPT"),
        ("conversation with mx[192.0.2.1] timed out while sending message body", "DATA"),
        # Exim.
        ("SMTP error from remote mail server after RCPT TO:<u@x>:\n    host mx [192.0.2.1]: 550 "
         "Unknown user", "RCPT"),
        ("SMTP error from remote mailer after RCPT TO: <u@x>: host mx: 550 No such user", "RCPT"),
        ("SMTP error from remote mail server after end of data: 550 5.7.1 unsolicited", "DATA"),
        ("SMTP error from remote mail server after pipelined end of data: 550 x", "DATA"),
        ("SMTP error from remote mail server after MAIL FROM:<s@x> SIZE=1234: 550 x", "MAIL"),
        ("SMTP error from remote mail server after initial connection: 554 go away", "CONN"),
        ("LMTP error after RCPT TO:<u@x>: 550 unknown", "RCPT"),
        # Sendmail and Courier transcripts: the last command before the first failure.
        (">>> MAIL From:<s@x> SIZE=10\n<<< 250 2.1.0 ok\n>>> RCPT To:<u@x>\n<<< 550 5.1.1 unknown",
         "RCPT"),
        (">>> DATA\n<<< 550 Unknown user u@x\n554 5.0.0 Service unavailable", "DATA"),
        (">>> RCPT To: <<< 550 <u@x>, User Unknown", "RCPT"),  # folded onto one line
        # qmail-remote, IMail, X3-style tags, Gmail's client states.
        ("192.0.2.1 does not like recipient.\nRemote host said: 550 mailbox unavailable", "RCPT"),
        ("Connected to 192.0.2.1 but sender was rejected.\nRemote host said: 553 x", "MAIL"),
        ("192.0.2.1 failed after I sent the message.\nRemote host said: 554 spam", "DATA"),
        ("RCPT TO generated following response:\n553 5.3.0 <u@x>... Addressee unknown", "RCPT"),
        ("SMTP:RCPT host 192.0.2.1: 553 5.3.0 <u@x>... No such user here", "RCPT"),
        ("The error that the other server returned was: 550 550 Address unknown (state 14).",
         "RCPT"),
        ("returned was: 550 550 Unknown user u@x (state 18).", "DATA"),
        # Nothing names a stage.
        ("550 5.1.1 user unknown", None),
        ("Requested action not taken: no such user here", None),
        ("after data was sent the server said no", None),  # prose, not a command word
        ("MAIL FROM: shop@x\nRCPT TO: u@x\nSize: 1024", None),  # an envelope listing
        ("", None),
        (None, None),
    ],
)
def test_command_in(text: str | None, command: str | None) -> None:
    assert command_in(text) == command


@given(st.text(max_size=3000))
def test_never_raises_and_names_a_command_or_none(text: str) -> None:
    assert command_in(text) in (None, "RCPT", "MAIL", "DATA", "EHLO", "HELO", "STARTTLS", "AUTH",
                                "XFORWARD", "QUIT", "CONN")
