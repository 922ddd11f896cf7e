"""Mail that carries send results and unsubscribes: bounces, complaints, auto-replies.

Public API (pure, no I/O; the SMTP and Kafka edges live elsewhere):

- ``parse_message(raw: bytes, *, now_ms: int | None = None) -> MailReport``: what one message
  reports, recipient by recipient; never raises.
- ``MailReport``, ``RecipientReport``, ``OriginalMessage``: the evidence types (report.py).
- ``MAIL_KINDS`` / ``MailKind``: bounce, delay, delivered, complaint, unsubscribe, auto_reply,
  unknown.

The format modules (rfc3464, arf, autoreply, lhost/*) are described in docs/mail-parsing.md.
"""

from bouncewire.producers.mail.parse import parse_message
from bouncewire.producers.mail.report import (
    MAIL_KINDS,
    MailKind,
    MailReport,
    OriginalMessage,
    RecipientReport,
)

__all__ = [
    "MAIL_KINDS",
    "MailKind",
    "MailReport",
    "OriginalMessage",
    "RecipientReport",
    "parse_message",
]
