"""Which SMTP command a quoted reply answered, as the text around it says. Pure; never raises.

classify() makes words alone ("user unknown") a hard bounce only in a reply to RCPT, so the
sources that quote a remote reply (bounce mail, MTA logs) look for the stage the MTA names:

    Postfix   "... User unknown (in reply to RCPT TO command)", "(in reply to end of DATA
              command)", "lost connection with mx[ip] while sending RCPT TO"
    Exim      "SMTP error from remote mail server after RCPT TO:<x@y>:", "after end of data:",
              "after MAIL FROM:<s> SIZE=1234:", "after initial connection:"
    Sendmail  the transcript: ">>> RCPT To:<x@y>" then "<<< 550 5.1.1 ... User unknown"
    qmail     "x.x.x.x does not like recipient.", "Connected to H but sender was rejected.",
              "H failed after I sent the message."
    Gmail     "The error that the other server returned was: 550 ... (state 14)." (the state of
              Google's SMTP client when the reply came: 14 = after RCPT, 15-18 = DATA)

Commands are named as RFC 5321 spells them ("RCPT", "MAIL", "DATA", "EHLO", "HELO",
"STARTTLS", "AUTH"), plus "CONN" for the greeting (no command yet). Command words are matched
in capitals, as MTAs write them: "after data" in prose is no stage.
"""

from __future__ import annotations

import re
from typing import Final

_COMMAND_WORD: Final = (
    r"(?P<command>RCPT|MAIL|DATA|EHLO|HELO|LHLO|STARTTLS|AUTH|BDAT|XFORWARD|QUIT)"
    r"|(?P<end>[Ee]nd\s+of\s+(?:DATA|[Dd]ata)|message\s+body)"
    r"|(?P<conn>initial\s+connection)"
)
# Stage phrases around the command word (a bounce folds its lines anywhere: any whitespace).
_STAGE: Final = re.compile(
    r"(?:in\s+reply\s+to|after|while\s+sending|failed\s+on)(?:\s+the)?(?:\s+pipelined)?"
    rf"\s+(?:{_COMMAND_WORD})\b"
    # IMail: "RCPT TO generated following response:"; X3 and others: "SMTP:RCPT host ...".
    r"|\b(?P<generated>RCPT|MAIL|DATA)(?:\s+(?:TO|FROM))?\s+generated\s+(?:the\s+)?following"
    r"|\bSMTP:(?P<tagged>RCPT|MAIL|DATA)\b"
)
# A transcript: ">>> RCPT To:<x>" (the command sent) and "<<< 550 ..." (the reply to it),
# each on its own line, or joined on one where a report folds the dialogue.
_SENT: Final = re.compile(r">>>[ \t]*(?P<command>[A-Za-z]{4,8})\b")
_FAILED_REPLY: Final = re.compile(r"<<<[ \t]*[45][0-9][0-9]")
# qmail-remote's own sentences for each stage (qmail-remote.c).
_QMAIL: Final = (
    ("does not like recipient", "RCPT"),
    ("but sender was rejected", "MAIL"),
    ("failed after i sent the message", "DATA"),
    ("failed on data command", "DATA"),
    ("but greeting failed", "CONN"),
    ("but my name was rejected", "EHLO"),
)
_GMAIL_STATE: Final = re.compile(r"\(state (1[45678])\)")
_COMMAND_OF_GMAIL_STATE: Final = {
    "14": "RCPT",
    "15": "DATA",
    "16": "DATA",
    "17": "DATA",
    "18": "DATA",
}
_TRANSCRIPT_COMMANDS: Final = frozenset(
    {"RCPT", "MAIL", "DATA", "EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "BDAT", "QUIT"}
)


def command_in(text: str | None) -> str | None:
    """The SMTP command the failure reply in `text` answered, None when the text says not."""
    if not text:
        return None
    try:
        return _from_transcript(text) or _from_stage(text) or _from_qmail(text) or _from_gmail(text)
    except Exception:  # evidence, not a verdict: odd input costs the command, never a raise
        return None


def _from_transcript(text: str) -> str | None:
    """The last command sent before the first failure reply of a transcript."""
    failed = _FAILED_REPLY.search(text)
    if failed is None:
        return None
    command: str | None = None
    for sent in _SENT.finditer(text, 0, failed.start()):
        word = sent["command"].upper()
        if word in _TRANSCRIPT_COMMANDS:
            command = _canonical(word)
    return command


def _from_stage(text: str) -> str | None:
    found = _STAGE.search(text)
    if found is None:
        return None
    if found["end"]:
        return "DATA"  # the reply to the message itself (after the final ".")
    if found["conn"]:
        return "CONN"
    return _canonical(found["command"] or found["generated"] or found["tagged"])


def _canonical(command: str) -> str:
    """LMTP's LHLO is its EHLO; BDAT (RFC 3030 CHUNKING) carries the message as DATA does."""
    return "EHLO" if command == "LHLO" else "DATA" if command == "BDAT" else command


def _from_qmail(text: str) -> str | None:
    lower = text.lower()
    for phrase, command in _QMAIL:
        if phrase in lower:
            return command
    return None


def _from_gmail(text: str) -> str | None:
    found = _GMAIL_STATE.search(text)
    return None if found is None else _COMMAND_OF_GMAIL_STATE[found[1]]
