"""One delivery attempt as an MTA logged it, and the evidence read from its text. Pure: no I/O.

Both formats (postfix.py, exim.py) produce `Attempt`s; the joiner adds the Message-ID and
results.py turns final ones into send results. Evidence goes through producers.smtp_errors:
a remote reply through `from_reply`, a transport failure through `error_kind` of the very
exception class the failure's text names (the socket's strerror, a TLS or DNS failure, a
dropped session), so the log and the SMTP capture map failures to the same error kinds.
"""

from __future__ import annotations

import errno
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Final, Literal

from bouncewire.producers import smtp_errors
from bouncewire.producers.smtp_commands import command_in
from bouncewire.producers.smtp_errors import MAX_REPLY_TEXT, Evidence

Status = Literal["sent", "deferred", "bounced", "expired"]
FINAL_STATUSES: Final = frozenset({"sent", "bounced", "expired"})

_REPLY: Final = re.compile(r"([2-5][0-9]{2})(?:[ -]|$)", re.ASCII)


@dataclass(slots=True)
class Attempt:
    """One recipient's attempt. `stamp` and `attempt` make its event id unique and stable.

    Not frozen: the joiner sets `message_id` in place (a copy per result cost 1.5 µs)."""

    mta: str  # "postfix" | "exim"
    queue_id: str
    recipient: str
    status: Status
    evidence: Evidence
    stamp: str = ""  # the line's timestamp as written
    attempt: str = ""  # what else tells two attempts apart: Postfix's delay=, Exim's flag
    remote_mta: str | None = None
    stage: str | None = None  # "in reply to RCPT TO command", "after end of data", ...
    orig_recipient: str | None = None
    message_id: str | None = None

    @property
    def command(self) -> str | None:
        """The SMTP command the reply answered, as the stage names it ("RCPT", "DATA")."""
        return command_in(self.stage)


def parse_reply(text: str) -> tuple[int, str] | None:
    """(code, text after the code) of an SMTP reply written on one line, else None.

    MTAs join a multi-line reply's lines with a space (Postfix) or an escaped newline (Exim):
    "550-5.1.1 The email account ... 550-5.1.1 double-checking ... 550 5.1.1 https://..." →
    (550, "5.1.1 The email account ...\\n5.1.1 double-checking ...\\n5.1.1 https://...").
    """
    match = _REPLY.match(text)
    if match is None:
        return None
    code = match[1]
    body = text[match.end() :]
    if f"{code}-" in text or "\\n" in body:
        body = re.sub(rf"(?:\\n| ){code}[ -]", "\n", body.replace(f"\\n{code}", f" {code}"))
    return int(code), body


def reply_evidence(text: str, fallback_enhanced: str | None = None) -> Evidence | None:
    """Evidence of a remote reply's text ("550 5.1.1 <x>: ..."), None when it is none.

    The server's enhanced code when it gave one (and its class agrees), else the MTA's own
    status for it (Postfix's dsn=).
    """
    parsed = parse_reply(text)
    if parsed is None:
        return None
    evidence = smtp_errors.from_reply(*parsed)
    if evidence.enhanced_code is None and _class_agrees(fallback_enhanced, evidence.smtp_code):
        return Evidence(evidence.smtp_code, fallback_enhanced, evidence.smtp_message)
    return evidence


def _class_agrees(enhanced: str | None, code: int | None) -> bool:
    return enhanced is not None and code is not None and enhanced[0] == str(code)[0]


# Phrases of the MTAs' own failure texts → the exception a client would have seen. Order
# matters: the first phrase found wins ("lost connection ... while performing the TLS
# handshake" is a dropped session, not a TLS refusal).
_FAILURES: Final[tuple[tuple[str, BaseException | None], ...]] = (
    # Exim's final "retry timeout exceeded" names no failure: the deferrals before it did.
    ("retry time", None),
    ("Connection timed out", OSError(errno.ETIMEDOUT, "Connection timed out")),
    ("Connection refused", OSError(errno.ECONNREFUSED, "Connection refused")),
    ("Connection reset", OSError(errno.ECONNRESET, "Connection reset by peer")),
    ("lost connection", smtplib.SMTPServerDisconnected("lost connection")),
    ("closed connection", smtplib.SMTPServerDisconnected("closed connection")),
    ("timed out", TimeoutError("timed out")),
    ("timeout", TimeoutError("timeout")),
    ("Host or domain name not found", socket.gaierror("host not found")),
    ("Name service error", socket.gaierror("name service error")),
    ("host lookup did not complete", socket.gaierror("host lookup did not complete")),
    ("TLS", ssl.SSLError("TLS failure")),
    ("certificate", ssl.SSLError("certificate")),
)


def failure_kind(text: str) -> str | None:
    """The contract's error kind a failure text names (smtp_errors' mapping), else None."""
    for phrase, exc in _FAILURES:
        if phrase in text:
            return None if exc is None else smtp_errors.error_kind(exc)
    return None


def own_verdict(status: str, enhanced: str | None, text: str) -> Evidence:
    """Evidence of a result the MTA decided itself, no remote reply in it: "unknown user",
    "Host or domain name not found", "mail forwarding loop".

    The reply code the MTA's status class stands for (RFC 3463 §3.1: X.y.z classes follow
    RFC 5321's first digit), so the classifier reads the text with the code the MTA would have
    answered with — except for a transport failure the MTA only retried: that one is its
    error kind alone, so a timeout stays a timeout. A failure the MTA declared permanent
    (5.x.x: Postfix's "Host or domain name not found" with 5.4.4 is NXDOMAIN, not a DNS
    hiccup) carries both, as the mail parser does for the same DSN.
    """
    message = text[:MAX_REPLY_TEXT] or None
    kind = None if status == "sent" else failure_kind(text)
    first = enhanced[0] if enhanced else {"sent": "2", "deferred": "4"}.get(status, "5")
    if kind is not None and first != "5":
        return Evidence(enhanced_code=enhanced, smtp_message=message, error=kind)
    return Evidence({"2": 250, "4": 450}.get(first, 550), enhanced, message, kind)
