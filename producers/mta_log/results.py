"""Which attempts become send results, and their fields. Pure: no I/O.

Published: `sent`, `bounced`, `expired` — each the final word on one recipient of one message.
Deferred attempts are counted, never published: the message may still be delivered, and a
soft bounce in CleverTap for mail that then arrives would be wrong (docs/mta-log.md; the same
rule as delay notices in bounce mail, docs/mail.md). When the MTA gives up, its `expired`
result carries the last deferral's evidence.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Final

from bouncewire.producers.mta_log.attempts import FINAL_STATUSES, Attempt

# Fixed forever: event ids of the same log line must stay the same across versions.
EVENT_ID_NAMESPACE: Final = uuid.UUID("080f2636-dfba-4782-a61d-f6dfe6c4a967")


def is_published(attempt: Attempt) -> bool:
    return attempt.status in FINAL_STATUSES


def event_id(attempt: Attempt) -> str:
    """uuid5 of what identifies the attempt in the log: the same line read twice (a restart,
    a backfill over a followed log) gives the same id, which the consumer deduplicates."""
    name = "\x1f".join(
        (
            attempt.mta,
            attempt.queue_id,
            attempt.recipient,
            attempt.status,
            attempt.stamp,
            attempt.attempt,
        )
    )
    return uuid5_text(name)


_NAMESPACE_BYTES: Final = EVENT_ID_NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """str(uuid.uuid5(EVENT_ID_NAMESPACE, name)) without building UUID objects (4 µs → 1)."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # RFC 4122 §4.3: version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def send_result_fields(attempt: Attempt, event_ms: int | None) -> dict[str, Any]:
    """The input object of producers.events.parse_send_result; `ts` absent = now."""
    evidence = attempt.evidence
    fields: dict[str, Any] = {
        **_reply_fields(attempt),
        "event_id": event_id(attempt),
        "email": attempt.recipient,
        "ts": None if event_ms is None else event_ms / 1000,
        # The schema: the MX host that gave the reply, null when none answered.
        "remote_mta": attempt.remote_mta if evidence.smtp_code is not None else None,
        "message_id": attempt.message_id,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _reply_fields(attempt: Attempt) -> dict[str, Any]:
    """The reply's evidence, with the command it answered (parse_send_result turns a verdict
    resting on it, "User unknown" in reply to RCPT, into the status it implies)."""
    evidence = attempt.evidence
    return {
        "smtp_code": evidence.smtp_code,
        "enhanced_code": evidence.enhanced_code,
        "smtp_message": evidence.smtp_message,
        "error": evidence.error,
        "smtp_command": attempt.command,
    }
