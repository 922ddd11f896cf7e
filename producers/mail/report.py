"""What the mail parser finds in one message: the evidence, never a verdict. Pure data.

`classify` (schemas/classification.py) alone turns a send result's evidence into hard, soft or
none; the parser only says what the message reports, recipient by recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

MailKind = Literal[
    "bounce",  # DSN Action: failed (or a non-standard bounce saying so)
    "delay",  # Action: delayed: the message may still arrive
    "delivered",  # delivered, relayed, expanded
    "complaint",  # ARF feedback report (RFC 5965)
    "unsubscribe",  # a request sent to a List-Unsubscribe mailto address (RFC 2369)
    "auto_reply",  # RFC 3834 Auto-Submitted, vacation and out-of-office replies
    "unknown",
]
MAIL_KINDS: Final[tuple[MailKind, ...]] = (
    "bounce",
    "delay",
    "delivered",
    "complaint",
    "unsubscribe",
    "auto_reply",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient's fate as the message states it; the address stays out of repr."""

    kind: MailKind
    email: str | None = field(repr=False)  # Final-Recipient, else Original-Recipient, else text
    enhanced_code: str | None = None  # RFC 3463 "5.1.1"
    smtp_code: int | None = None  # from Diagnostic-Code or the human-readable text
    smtp_message: str | None = None
    remote_mta: str | None = None
    event_time_ms: int | None = None  # Last-Attempt-Date / Arrival-Date / Date; None: unknown
    # Transport failure named instead of a reply (the schema's SmtpError symbols), e.g. "timeout".
    error: str | None = None
    # The SMTP command the reply answered ("RCPT", "DATA", ...) where the text names it:
    # classify makes "user unknown" in words alone hard only in a reply to RCPT.
    smtp_command: str | None = None
    # Fields the message did not state but the parser filled from what it did state: "smtp_code"
    # (550/450/250 for a status class when no reply was quoted, so classify sees the permanence),
    # "enhanced_code" (5.1.1/5.1.2 when a permanent failure says in words that the mailbox or
    # domain does not exist and gives no code).
    inferred: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OriginalMessage:
    """What the returned original message (or its headers) says about the mail that failed."""

    message_id: str | None = None
    campaign_id: str | None = None
    meta: str | None = field(default=None, repr=False)  # X-CleverTap_META
    return_path: str | None = field(default=None, repr=False)  # to find a signed VERP address
    to: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MailReport:
    """One message's worth: its overall kind, each recipient in the order listed, the original.

    `envelope_to` holds the addresses the message was delivered to (the VERP or mailto address),
    filled by the edge that received it; the parser fills `to_header` from the To: header.
    """

    kind: MailKind
    recipients: tuple[RecipientReport, ...] = ()
    original: OriginalMessage = OriginalMessage()
    message_id: str | None = None  # the report's own Message-ID (for event ids)
    date_ms: int | None = None  # the report's Date header
    to_header: tuple[str, ...] = field(default=(), repr=False)
    sender: str | None = field(default=None, repr=False)  # From: of an unsubscribe request
    format: str = "unknown"  # which format module recognised it, e.g. "rfc3464", "qmail"
    problems: tuple[str, ...] = ()  # what was malformed but got past (for counting)
