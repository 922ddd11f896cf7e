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

# The command words as MTAs write them, in capitals: rare in prose, so the phrase before each
# (below) is only tried where one stands (plain str.find: re would try every offset).
_WORDS: Final = (
    "RCPT",
    "MAIL",
    "DATA",
    "EHLO",
    "HELO",
    "LHLO",
    "STARTTLS",
    "AUTH",
    "BDAT",
    "XFORWARD",
    "QUIT",
)
# The stages named in lower case: the message itself ("after end of data", "while sending
# message body") and the greeting ("after initial connection"); found by plain search.
_LOWER_STAGES: Final = (
    ("end of data", "DATA"),
    ("End of data", "DATA"),
    ("message body", "DATA"),
    ("initial connection", "CONN"),
)
# What must stand right before the word (\Z: the search ends where the word begins); a bounce
# folds its lines anywhere, so any whitespace.
_STAGE_BEFORE: Final = re.compile(
    r"(?:in\s+reply\s+to|after|while\s+sending|failed\s+on)(?:\s+the)?(?:\s+pipelined)?\s+"
    r"(?P<end>[Ee]nd\s+of\s+)?\Z"
)
# The words that open a stage phrase, and how far before the word the phrase may begin
# ("in reply to the pipelined end of ").
_LEADS: Final = ("reply", "after", "sending", "failed")
_LOOK_BACK: Final = 48
# IMail: "RCPT TO generated following response:"; X3 and others: "SMTP:RCPT host ...".
_GENERATED: Final = re.compile(
    r"(?<![A-Za-z])(RCPT|MAIL|DATA)(?:\s+(?:TO|FROM))?\s+generated\s+(?:the\s+)?following"
)
_TAGGED: Final = re.compile(r"SMTP:(RCPT|MAIL|DATA)\b")
# A transcript: ">>> RCPT To:<x>" (the command sent) and "<<< 550 ..." (the reply to it),
# each on its own line, or joined on one where a report folds the dialogue.
_SENT: Final = re.compile(r">>>[ \t]*(?P<command>[A-Za-z]{4,8})\b")
_FAILED_REPLY: Final = re.compile(r"<<<[ \t]*[45][0-9][0-9]")
# qmail-remote's own sentences for each stage (qmail-remote.c), as it writes them.
_QMAIL: Final = (
    ("does not like recipient", "RCPT"),
    ("but sender was rejected", "MAIL"),
    ("failed after I sent the message", "DATA"),
    ("failed on DATA command", "DATA"),
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
    for word in _WORDS:
        at = text.find(word)
        while at >= 0:
            end = at + len(word)
            # Not part of a longer word ("MAILER-DAEMON", "DATABASE").
            if end == len(text) or not (text[end].isalnum() or text[end] == "_"):
                before = _stage_before(text, at)
                if before is not None:
                    return "DATA" if before["end"] else _canonical(word)
            at = text.find(word, end)
    for phrase, command in _LOWER_STAGES:
        at = text.find(phrase)
        while at >= 0:
            if _stage_before(text, at) is not None:
                return command
            at = text.find(phrase, at + 1)
    tagged = _GENERATED.search(text) if "generated" in text else None
    if tagged is None and "SMTP:" in text:
        tagged = _TAGGED.search(text)
    return None if tagged is None else tagged[1]


def _stage_before(text: str, at: int) -> re.Match[str] | None:
    """The stage phrase ending right where a command word begins, if one does."""
    start = max(0, at - _LOOK_BACK)
    if not any(lead in text[start:at] for lead in _LEADS):
        return None  # the common case, settled by plain substring tests
    return _STAGE_BEFORE.search(text, start, at)


def _canonical(command: str) -> str:
    """LMTP's LHLO is its EHLO; BDAT (RFC 3030 CHUNKING) carries the message as DATA does."""
    return "EHLO" if command == "LHLO" else "DATA" if command == "BDAT" else command


def _from_qmail(text: str) -> str | None:
    for phrase, command in _QMAIL:
        if phrase in text:
            return command
    return None


def _from_gmail(text: str) -> str | None:
    found = _GMAIL_STATE.search(text) if "(state " in text else None
    return None if found is None else _COMMAND_OF_GMAIL_STATE[found[1]]
