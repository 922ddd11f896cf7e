"""What a format parser returns for a line: an Attempt, a Note about a queued message, or a
skip reason. Pure data; the reasons are a closed set (they label a metric)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from bouncewire.producers.mta_log.attempts import Attempt

NoteKind = Literal["message_id", "sender", "expired", "removed"]


@dataclass(frozen=True, slots=True)
class Note:
    """A fact about queue id `queue_id`: its Message-ID or sender (`value`), that it expired
    (returned to sender after the queue lifetime) or that it left the queue."""

    kind: NoteKind
    queue_id: str
    value: str = ""
    stamp: str = ""
    message_id: str = ""  # Exim's arrival line gives the sender and the Message-ID at once


# Skip reasons. "other" is a line of no interest (a connection, a warning): not an error.
# The rest are lines that looked like deliveries but were not understood: --strict fails on them.
OTHER: Final = "other"
NOTIFICATION: Final = "own_notification"  # the MTA's bounce to our sender (from=<>)
PROBE: Final = "address_probe"  # Postfix address verification: nothing was sent
MALFORMED: Final = "malformed_delivery"
UNKNOWN_STATUS: Final = "unknown_status"
NO_RECIPIENTS: Final = "expired_without_recipients"
INVALID_EVENT: Final = "invalid_event"
PARTIAL_LINE: Final = "partial_line"
NOT_UNDERSTOOD: Final = frozenset(
    {MALFORMED, UNKNOWN_STATUS, NO_RECIPIENTS, INVALID_EVENT, PARTIAL_LINE}
)
SKIP_REASONS: Final = (OTHER, NOTIFICATION, PROBE, *sorted(NOT_UNDERSTOOD))

Parsed = Attempt | Note | str
