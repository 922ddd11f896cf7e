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
    """An ARF report; a Hotmail/Outlook JMRP or Amazon SES complaint forward; Apple's
    X-Apple-Unsubscribe request."""
    if mail.feedback_report is not None or mail.report_type == "feedback-report":
        return True
    if mail.header("x-apple-unsubscribe").strip().lower() == "true":
        return True
    if mail.header_has("subject", "complaint about message from") and mail.header_has(
        "from", "staff@hotmail.com", "complaints@email-abuse.amazonses.com"
    ):
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
    rcpt = _complainers(mail.feedback_report or mail.body)
    if not rcpt:
        rcpt = [a for a in (_jmrp_recipient(mail), original.to, _apple(mail)) if a][:1]
    return kind, [RecipientReport(kind=kind, email=address, event_time_ms=when) for address in rcpt]


def _fields(text: str) -> dict[str, str]:
    message, groups = field_groups(text)
    for group in groups:
        for name, value in group.items():
            message.setdefault(name, value)
    return message


def _complainers(text: str) -> list[str]:
    """Original-Rcpt-To (may repeat) and the older Removal-Recipient, in order, once each."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("original-rcpt-to", "removal-recipient"):
            for address in addresses(value):
                found.setdefault(address.lower(), address)
    return list(found.values())


def _apple(mail: Mail) -> str | None:
    """Apple Mail's unsubscribe request names the complainer in From: only."""
    if mail.header("x-apple-unsubscribe").strip().lower() != "true":
        return None
    return first_address(mail.header("from"))


def _jmrp_recipient(mail: Mail) -> str | None:
    if mail.original is None:
        return None
    return first_address(decode_header(mail.original.get("X-HmXmrOriginalRecipient")))
