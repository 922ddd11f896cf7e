"""Exim main log lines → Attempts and Notes. Pure: no I/O.

    2024-06-05 15:09:21 1rABCD-000123-XY <= news@shop.example H=... P=esmtp S=1234 id=m1@shop
    2024-06-05 15:09:22 1rABCD-000123-XY => bob@example.com R=dnslookup T=remote_smtp
        H=mx.example.com [192.0.2.1] X=TLS1.3:... C="250 2.0.0 OK id=1rABCE-0001"
    ... -> second@example.com ...        (another address of the same delivery)
    ... ** bob@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.1]:
        SMTP error from remote mail server after RCPT TO:<bob@example.com>: 550 5.1.1 Unknown
    ... == bob@example.com R=dnslookup T=remote_smtp defer (-44) H=...: SMTP error ... 451 ...
    ... Completed

(Exim specification, chapter "Log files".) Message ids: 16 characters up to Exim 4.96, 23 from
4.97. The line may come with Exim's own timestamp (its main log) or under a syslog prefix
(`log_file_path = syslog`), which Exim writes without its own timestamp. `** ...: retry
timeout exceeded` is Exim giving up after deferrals: an "expired" attempt, like Postfix's.
"""

from __future__ import annotations

import re
from typing import Final

from bouncewire.producers.mta_log import notes
from bouncewire.producers.mta_log.attempts import Attempt, Status, own_verdict, reply_evidence
from bouncewire.producers.mta_log.notes import Note, Parsed
from bouncewire.producers.mta_log.syslog import Entry
from bouncewire.producers.smtp_errors import Evidence

_ID: Final = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_LINE: Final = re.compile(
    r"(?:(?P<stamp>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?"
    r"(?: [+-][0-9]{4})?) )?(?:\[[0-9]+\] )?"
    rf"(?P<id>{_ID}) (?P<flag><=|=>|->|\*>|\*\*|==|Completed)(?: |$)",
    re.ASCII,
)
_STATUS_BY_FLAG: Final[dict[str, Status]] = {
    "=>": "sent",
    "->": "sent",
    "**": "bounced",
    "==": "deferred",
}
_HOST: Final = re.compile(r" H=(\S+) \[[^\]]*\]")
_CONFIRMATION: Final = re.compile(r' C="((?:[^"\\]|\\.)*)"')
_MESSAGE_ID: Final = re.compile(r" id=(\S+)")
# "SMTP error from remote mail server after RCPT TO:<x@y>: 550 ..." (older: "remote mailer",
# with "host mx [ip]: " before the reply).
_SMTP_ERROR: Final = re.compile(
    r"SMTP error from remote mail(?: server|er) after (?P<stage>.*?): "
    r"(?:host (?P<host>\S+) \[[^\]]*\]: )?(?=[2-5][0-9]{2}[ -])",
    re.ASCII,
)
_STAGE_ADDRESS: Final = re.compile(r":<.*", re.DOTALL)


def wanted(line: str) -> bool:
    """Whether the line may be one parse() reads: a cheap test before any regex runs."""
    return (
        " => " in line
        or " ** " in line
        or " -> " in line
        or " == " in line
        or " <= " in line
        or " Completed" in line
    )


def parse(entry: Entry) -> Parsed:
    """The line's meaning; a skip reason (notes.*) when it holds no attempt or queue fact."""
    if entry.program is not None and not entry.program.startswith("exim"):
        return notes.OTHER
    match = _LINE.match(entry.text)
    if match is None:
        return notes.OTHER
    message, flag = match["id"], match["flag"]
    stamp = match["stamp"] or entry.stamp
    rest = entry.text[match.end() :]
    status = _STATUS_BY_FLAG.get(flag)
    if status is not None:
        return _attempt(message, status, flag, rest, stamp)
    if flag == "<=":
        return _arrival(message, rest)
    if flag == "Completed":
        return Note("removed", message)
    return notes.OTHER  # "*>": delivery suppressed by -N


def _arrival(message: str, rest: str) -> Note:
    sender = rest.partition(" ")[0]
    found = _MESSAGE_ID.search(rest)
    return Note("sender", message, "" if sender == "<>" else sender, message_id=_id(found))


def _id(found: re.Match[str] | None) -> str:
    """Exim logs the Message-ID without its angle brackets; the header (and Postfix) has them."""
    return f"<{found[1].strip('<>')}>" if found else ""


def _attempt(message: str, status: Status, flag: str, rest: str, stamp: str) -> Attempt | str:
    token, _, after = rest.partition(" ")
    recipient = token.rstrip(":")
    if not recipient:
        return notes.MALFORMED
    orig = after[1 : after.find(">")] if after.startswith("<") and ">" in after else None
    if orig and "@" not in recipient:
        # A local delivery logs the local part, a file or a pipe; the address is in <...>.
        recipient, orig = orig, recipient
    if status == "sent":
        evidence, remote, stage = _confirmation(after)
    else:
        fields, text = _fields_and_text(token, after)
        if status == "bounced" and "retry time" in text:
            status = "expired"
        evidence, remote, stage = _failure(status, fields, text)
    return Attempt(
        "exim",
        message,
        recipient,
        status,
        evidence,
        stamp=stamp,
        attempt=flag,
        remote_mta=remote,
        stage=stage,
        orig_recipient=orig,
    )


def _fields_and_text(token: str, after: str) -> tuple[str, str]:
    """("R=dnslookup T=remote_smtp H=...", "SMTP error ...") of a failure's rest of line."""
    if token.endswith(":"):  # "** x@y: Unrouteable address": no fields
        return "", after
    colon = after.find(": ")
    return (after, "") if colon < 0 else (after[:colon], after[colon + 2 :])


def _confirmation(fields: str) -> tuple[Evidence, str | None, str | None]:
    """A delivery's C="250 ..." (log_selector +smtp_confirmation, on by default) or a bare 250."""
    found = _CONFIRMATION.search(fields)
    if found is not None:
        evidence = reply_evidence(found[1].replace('\\"', '"'))
        if evidence is not None:
            return evidence, _host(fields), None
    return own_verdict("sent", None, ""), None, None


def _failure(status: str, fields: str, text: str) -> tuple[Evidence, str | None, str | None]:
    found = _SMTP_ERROR.search(text)
    if found is not None:
        evidence = reply_evidence(text[found.end() :])
        if evidence is not None:
            stage = "after " + _STAGE_ADDRESS.sub("", found["stage"])
            return evidence, _host(fields) or found["host"], stage
    return own_verdict(status, None, text), None, None


def _host(fields: str) -> str | None:
    found = _HOST.search(fields)
    return found[1] if found else None
