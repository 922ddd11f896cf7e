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

_STATUS: Final = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
# The generic RFC 5321 reply of each class, standing in when only the class is stated.
_CODE_OF_CLASS: Final = {2: 250, 4: 450, 5: 550}
_REMOTE_IN_TEXT: Final = re.compile(
    r"(?:\bhost|\bserver|\bMTA|talking to|remote system|\bfrom)\s*:?\s*(?:dns;\s*)?\[?"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}|\d{1,3}(?:\.\d{1,3}){3})"
    r"(?![\w-])",
    re.IGNORECASE,
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


def status_field(value: str | None) -> str | None:
    """A Status field's RFC 3463 code ("5.1.1 (user unknown)" → "5.1.1"), else None."""
    if not value:
        return None
    found = _STATUS.search(value)
    return found.group(0) if found else None


def _is_specific(code: str) -> bool:
    """X.0.0 and 4.4.7 (expired) say less than the code the remote gave, when there is one."""
    return not code.endswith(".0.0") and code != "4.4.7"


def recipient_report(found: Found) -> RecipientReport:
    """The RecipientReport for `found`; never raises."""
    diagnosis = found.diagnosis or ""
    reply = find_reply(diagnosis) if diagnosis.strip() else NO_REPLY
    status = status_field(found.status)
    enhanced = reply.enhanced if reply.enhanced and _is_specific(reply.enhanced) else None
    enhanced = enhanced or status or reply.enhanced
    code = reply.code
    inferred: tuple[str, ...] = ()
    error = transport_failure(diagnosis) if code is None and diagnosis else None
    if code is None:
        code = _code_of_class(found, enhanced, diagnosis)
        inferred = ("smtp_code",) if code is not None else ()
    return RecipientReport(
        kind=found.kind,
        email=found.email,
        enhanced_code=enhanced,
        smtp_code=code,
        smtp_message=reply.message or (clean(diagnosis) or None),
        remote_mta=found.remote_mta or remote_in_text(diagnosis),
        event_time_ms=found.event_time_ms,
        error=error,
        inferred=inferred,
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
    """The remote host a reply or failure text names ("host mx.example.com[192.0.2.1] said")."""
    if not text:
        return None
    found = _REMOTE_IN_TEXT.search(text)
    return found.group(1).rstrip(".").lower() if found else None
