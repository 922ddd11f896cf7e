"""Joins each queue id's lines: the Message-ID (Postfix's cleanup, Exim's arrival) and sender
(qmgr's from=) go onto its attempts, and its deferred recipients are remembered for when the
message expires. Pure: no I/O.

Memory stays bounded: a queue id leaves the table when the MTA logs it removed (Postfix's
`removed`, Exim's `Completed`), and past `capacity` queue ids the oldest is evicted (a log
that started mid-stream never shows some removals). Each message keeps at most
`deferred_per_message` deferred recipients.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.notes import Note
from bouncewire.producers.smtp_errors import Evidence

DEFAULT_CAPACITY: Final = 100_000
DEFAULT_DEFERRED_PER_MESSAGE: Final = 1_000


@dataclass(slots=True)
class _Queued:
    message_id: str = ""
    sender: str | None = None  # None: not seen; "": the null sender of the MTA's own mail
    deferred: dict[str, Attempt] = field(default_factory=dict)


class Joiner:
    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        deferred_per_message: int = DEFAULT_DEFERRED_PER_MESSAGE,
    ) -> None:
        self._capacity = capacity
        self._deferred_cap = deferred_per_message
        self._queued: dict[str, _Queued] = {}  # insertion order = age, for eviction
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._queued)

    def note(self, note: Note) -> list[Attempt]:
        """Take a fact in; an expired message gives one attempt per recipient it deferred."""
        if note.kind == "removed":
            self._queued.pop(note.queue_id, None)
            return []
        queued = self._entry(note.queue_id)
        if note.kind == "message_id":
            queued.message_id = note.value
        elif note.kind == "sender":
            queued.sender = note.value
            queued.message_id = note.message_id or queued.message_id
        elif note.kind == "expired":
            return self._expired(queued, note.stamp)
        return []

    def attempt(self, attempt: Attempt) -> Attempt | None:
        """The attempt, given its Message-ID; None when it delivers the MTA's own notification
        (a bounce or delay notice to our sender, from=<>): no send result of ours."""
        queued = self._queued.get(attempt.queue_id)
        if queued is None:
            if attempt.status != "deferred":
                return attempt
            queued = self._entry(attempt.queue_id)
        if queued.sender == "":
            return None
        if attempt.status == "deferred":
            self._defer(queued, attempt)
        else:
            earlier = queued.deferred.pop(attempt.recipient, None)
            if attempt.status == "expired" and earlier is not None:
                attempt.evidence = earlier.evidence
        attempt.message_id = attempt.message_id or queued.message_id or None
        return attempt

    def is_own_notification(self, queue_id: str) -> bool:
        """The queue id is the MTA's own mail (from=<>), as far as its lines told."""
        queued = self._queued.get(queue_id)
        return queued is not None and queued.sender == ""

    def _entry(self, queue_id: str) -> _Queued:
        queued = self._queued.get(queue_id)
        if queued is None:
            if len(self._queued) >= self._capacity:
                del self._queued[next(iter(self._queued))]
                self.evicted += 1
            queued = self._queued[queue_id] = _Queued()
        return queued

    def _defer(self, queued: _Queued, attempt: Attempt) -> None:
        if attempt.recipient in queued.deferred or len(queued.deferred) < self._deferred_cap:
            queued.deferred[attempt.recipient] = attempt

    def _expired(self, queued: _Queued, stamp: str) -> list[Attempt]:
        if queued.sender == "":
            return []
        expired = [
            dataclasses.replace(
                deferral,
                status="expired",
                stamp=stamp,
                attempt="expired",
                message_id=queued.message_id or None,
            )
            for deferral in queued.deferred.values()
        ]
        queued.deferred.clear()
        return expired

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> list[dict[str, Any]]:
        """The table as JSON-ready data, oldest first (a restart resumes with it)."""
        return [
            {
                "queue_id": queue_id,
                "message_id": queued.message_id,
                "sender": queued.sender,
                "deferred": [dataclasses.asdict(a) for a in queued.deferred.values()],
            }
            for queue_id, queued in self._queued.items()
        ]

    def restore(self, state: list[dict[str, Any]]) -> None:
        for item in state[-self._capacity :]:
            deferred = [_attempt_from(data) for data in item.get("deferred", ())]
            self._queued[str(item["queue_id"])] = _Queued(
                str(item.get("message_id") or ""),
                item.get("sender"),
                {a.recipient: a for a in deferred[: self._deferred_cap]},
            )


def _attempt_from(data: dict[str, Any]) -> Attempt:
    return Attempt(**{**data, "evidence": Evidence(**data["evidence"])})
