"""Transactions relayed upstream whose send results did not reach Kafka. Pure: no I/O.

The gateway answers 451 when it cannot publish a result, so the client sends the message
again. The upstream already has it: relaying it a second time would deliver it twice. So
the results of such a transaction are kept here, keyed by a digest of what the client sent
(sender, recipients, message bytes); when the same transaction comes back, its DATA is not
relayed again and only the kept results are published. Memory is bounded (count and age):
a retry after the entry is gone is relayed again (a duplicate delivery, never a lost event).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def transaction_digest(sender: str, recipients: Sequence[str], data: bytes) -> str:
    digest = hashlib.sha256()
    for part in (sender.lower(), *sorted(r.lower() for r in recipients)):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Unpublished:
    """What a relayed transaction produced: its records and the reply it earned."""

    records: tuple[dict[str, Any], ...] = field(repr=False)
    reply: str
    kept_at: float


@dataclass
class RecentlyRelayed:
    max_entries: int = 10_000
    max_age_s: float = 24 * 3600.0
    _entries: OrderedDict[str, Unpublished] = field(default_factory=OrderedDict, repr=False)

    def keep(self, digest: str, entry: Unpublished) -> None:
        self._entries[digest] = entry
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def find(self, digest: str, now: float) -> Unpublished | None:
        entry = self._entries.get(digest)
        if entry is not None and now - entry.kept_at > self.max_age_s:
            del self._entries[digest]
            return None
        return entry

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def __len__(self) -> int:
        return len(self._entries)
