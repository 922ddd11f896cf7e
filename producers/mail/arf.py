"""ARF complaint reports (RFC 5965), and Microsoft's JMRP which only forwards the original.

The complaining address is Original-Rcpt-To when the feedback loop keeps it; most redact it
(RFC 6590), so the original's To: (or Microsoft's X-HmXmrOriginalRecipient) stands in, and
the original's identity (Message-ID, VERP Return-Path, meta) is what ties it back.
"""

from __future__ import annotations

from bouncewire.producers.mail.message import Mail, decode_header
from bouncewire.producers.mail.report import MailKind, OriginalMessage, RecipientReport
from bouncewire.producers.mail.rfc3464 import field_groups
from bouncewire.producers.mail.text import addresses, date_ms, first_address

# RFC 6430: the user says the message is *not* spam; that is no complaint.
_NOT_COMPLAINTS = frozenset({"not-spam"})


def is_feedback(mail: Mail) -> bool:
    """An ARF report, or a Hotmail/Outlook JMRP forward."""
    if mail.feedback_report is not None or mail.report_type == "feedback-report":
        return True
    return mail.original is not None and bool(mail.original.get("X-HmXmrOriginalRecipient"))


def complaint(
    mail: Mail, original: OriginalMessage, date: int | None
) -> tuple[MailKind, list[RecipientReport]]:
    """The report's kind and the complaining recipients."""
    fields = _fields(mail.feedback_report or "")
    kind: MailKind = "complaint"
    if fields.get("feedback-type", "").strip().lower() in _NOT_COMPLAINTS:
        kind = "unknown"
    when = date_ms(fields.get("arrival-date") or fields.get("received-date")) or date
    rcpt = [
        a
        for value in _all_values(mail.feedback_report or "", "original-rcpt-to")
        for a in addresses(value)
    ]
    if not rcpt:
        rcpt = [a for a in (_jmrp_recipient(mail), original.to) if a][:1]
    return kind, [RecipientReport(kind=kind, email=address, event_time_ms=when) for address in rcpt]


def _fields(text: str) -> dict[str, str]:
    message, groups = field_groups(text)
    for group in groups:
        for name, value in group.items():
            message.setdefault(name, value)
    return message


def _all_values(text: str, name: str) -> list[str]:
    prefix = f"{name}:"
    return [line[len(prefix) :] for line in text.splitlines() if line.lower().startswith(prefix)]


def _jmrp_recipient(mail: Mail) -> str | None:
    if mail.original is None:
        return None
    return first_address(decode_header(mail.original.get("X-HmXmrOriginalRecipient")))
