"""From what a format module found for one recipient to its RecipientReport.

Every module ends here, so a reply is read the same way whatever the format: the code and
text from the diagnosis, the most specific enhanced code (the diagnosis's, else the Status
field), a transport failure when no reply was quoted, and the remote MTA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bouncewire.producers.mail.report import MailKind, RecipientReport
from bouncewire.producers.mail.text import (
    NO_REPLY,
    clean,
    find_reply,
    permanence_in_words,
    transport_failure,
)
from bouncewire.producers.smtp_commands import command_in

_STATUS: Final = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
# The generic RFC 5321 reply of each class, standing in when only the class is stated.
_CODE_OF_CLASS: Final = {2: 250, 4: 450, 5: 550}
_REMOTE_IN_TEXT: Final = re.compile(
    r"(?:\bhost|(?<!generating )\bserver|(?<!reporting-)\bMTA|talking to|connect to"
    r"|remote system)\b"
    r"\s*:?\s*(?:dns;\s*)?[\[<]?"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}|\d{1,3}(?:\.\d{1,3}){3})"
    r"(?![\w-])",
    re.IGNORECASE,
)

# "mx.example.com [192.0.2.1] did not like our RCPT TO": a host name with its address.
_HOST_WITH_IP: Final = re.compile(
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24})"
    r" ?\[\d{1,3}(?:\.\d{1,3}){3}\]()"
)
_QMAIL_REMOTE: Final = re.compile(
    r"(?:^|\s)([\w.-]+\.[\w-]+) does not like recipient|Connected to ([\w.-]+\.[\w-]+) but"
)


@dataclass(frozen=True, slots=True)
class Found:
    """One recipient as a format module read it, before the reply text is interpreted."""

    email: str | None
    diagnosis: str | None = None  # the reply or failure text about this recipient
    kind: MailKind = "bounce"
    status: str | None = None  # an RFC 3463 Status field, when the format has one
    remote_mta: str | None = None
    event_time_ms: int | None = None
    permanence: int | None = None  # 5 or 4 when the format says so in words
    # Words around the recipient that may be its only reason (the text before a single
    # recipient's address): read when the diagnosis quotes no reply, never for the remote.
    context: str | None = None
    # The SMTP command the reply answered, when found outside the diagnosis (the human part
    # of a DSN says "(in reply to RCPT TO command)", its Diagnostic-Code does not).
    command: str | None = None


def status_field(value: str | None) -> str | None:
    """A Status field's RFC 3463 code ("5.1.1 (user unknown)" → "5.1.1"), else None."""
    if not value:
        return None
    found = _STATUS.search(value)
    return found.group(0) if found else None


def _is_specific(code: str) -> bool:
    """Whether a code in the reply says more than the Status field: not X.Y.0 (an "other"
    detail) nor 4.4.7 (expired, the MTA's own verdict), which a Status outranks."""
    _, subject, detail = code.split(".")
    return subject != "0" and detail != "0" and code != "4.4.7"


def recipient_report(found: Found) -> RecipientReport:
    """The RecipientReport for `found`; never raises."""
    diagnosis = found.diagnosis or ""
    reply = find_reply(diagnosis) if diagnosis.strip() else NO_REPLY
    if reply.code is None and found.context:
        diagnosis = f"{diagnosis}\n\n{found.context}" if diagnosis else found.context
        reply = find_reply(diagnosis)
    status = status_field(found.status)
    enhanced = reply.enhanced if reply.enhanced and _is_specific(reply.enhanced) else None
    enhanced = enhanced or status or reply.enhanced
    code = reply.code
    inferred: tuple[str, ...] = ()
    error = transport_failure(diagnosis) if code is None and diagnosis else None
    # Without a quoted reply the class the message states stands in (550/450/250), named in
    # `inferred`; a transport failure keeps its `error` beside it, so the permanence the
    # message states (Status 4.4.1 vs 5.4.7, "permanent error") is not lost.
    if code is None:
        code = _code_of_class(found, enhanced, diagnosis)
        inferred = ("smtp_code",) if code is not None else ()
    return RecipientReport(
        kind=found.kind,
        email=found.email,
        enhanced_code=enhanced,
        smtp_code=code,
        smtp_message=reply.message or (clean(diagnosis) or None),
        remote_mta=found.remote_mta or remote_in_text(found.diagnosis),
        event_time_ms=found.event_time_ms,
        error=error,
        inferred=inferred,
        smtp_command=command_in(diagnosis) or found.command,
    )


def _code_of_class(found: Found, enhanced: str | None, diagnosis: str) -> int | None:
    """The class the message states without a reply: its status, its words, its kind."""
    if enhanced is not None:
        return _CODE_OF_CLASS.get(int(enhanced[0]))
    if found.kind == "delivered":
        return 250
    if found.kind == "delay":
        return 450
    if found.kind != "bounce":
        return None
    permanence = found.permanence or permanence_in_words(diagnosis) or 5
    return _CODE_OF_CLASS[permanence]


def remote_in_text(text: str | None) -> str | None:
    """The remote host a reply or failure text names ("host mx.example.com[192.0.2.1] said",
    qmail's "192.0.2.1 does not like recipient.")."""
    if not text:
        return None
    found = _QMAIL_REMOTE.search(text) or _REMOTE_IN_TEXT.search(text) or _HOST_WITH_IP.search(text)
    if found is None:
        return None
    return (found.group(1) or found.group(2)).rstrip(".").lower()
