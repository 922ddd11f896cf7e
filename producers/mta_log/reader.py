"""Log lines in, send-result records out: prefix, format, join, validate, count. Pure: no I/O.

The hot path is the line no one needs (connections, TLS notes, warnings): a few substring
tests (`wanted`) reject it before any regex runs, so a month's backfill reads at well over
100,000 lines per second (bench/mta_log_bench.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bouncewire.producers.events import parse_send_result
from bouncewire.producers.exceptions import InvalidEventError
from bouncewire.producers.mta_log import exim, notes, postfix
from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.joiner import Joiner
from bouncewire.producers.mta_log.notes import Note, Parsed
from bouncewire.producers.mta_log.results import is_published, send_result_fields
from bouncewire.producers.mta_log.syslog import Entry, StampClock, split_line

Mta = Literal["postfix", "exim"]
MTAS: Final[tuple[Mta, ...]] = ("postfix", "exim")

_FORMATS: Final[dict[str, tuple[Callable[[str], bool], Callable[[Entry], Parsed]]]] = {
    "postfix": (postfix.wanted, postfix.parse),
    "exim": (exim.wanted, exim.parse),
}


class LineNotUnderstood(ValueError):  # noqa: N818 -- reads as what happened
    """--strict: a line that looked like a delivery but was not understood."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"line not understood ({reason})")
        self.reason = reason


@dataclass
class Counts:
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)  # by status, published or not


class LogReader:
    def __init__(
        self,
        mta: Mta,
        *,
        joiner: Joiner | None = None,
        clock: StampClock | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        strict: bool = False,
        annotate: bool = False,
        include_deferred: bool = False,
    ) -> None:
        """`annotate`: records also carry the attempt's `status`, `stage` and `queue_id` (for
        --dry-run's output: such records are not for the contract's codec).
        `include_deferred`: deferred attempts give records too (--dry-run only: never
        publish one, see results.py)."""
        self._wanted, self._parse = _FORMATS[mta]
        self.joiner = joiner or Joiner()
        self._clock = clock or StampClock()
        self._now_ms = now_ms
        self._strict = strict
        self._annotate = annotate
        self._include_deferred = include_deferred
        self.counts = Counts()
        self.last_event_ms: int | None = None  # the newest line's time that gave a result

    def read(self, line: str) -> list[dict[str, Any]]:
        """The send-result records (parse_send_result's) this line completes; usually none."""
        counts = self.counts
        counts.lines += 1
        if not self._wanted(line):
            counts.skipped[notes.OTHER] += 1
            return []
        parsed = self._parse(split_line(line.rstrip("\r\n")))
        if isinstance(parsed, str):
            return self._skip(parsed)
        if isinstance(parsed, Note):
            expired = self.joiner.note(parsed)
            if parsed.kind == "expired" and not expired:
                own = self.joiner.is_own_notification(parsed.queue_id)
                return self._skip(notes.NOTIFICATION if own else notes.NO_RECIPIENTS)
            return self._results(expired)
        return self._results([parsed])

    def skip_partial_line(self) -> None:
        """The follower met a last line that never ended (a rotated-away file's tail)."""
        self.counts.lines += 1
        self._skip(notes.PARTIAL_LINE)

    def _skip(self, reason: str) -> list[dict[str, Any]]:
        self.counts.skipped[reason] += 1
        if self._strict and reason in notes.NOT_UNDERSTOOD:
            raise LineNotUnderstood(reason)
        return []

    def _results(self, attempts: list[Attempt]) -> list[dict[str, Any]]:
        records = []
        for attempt in attempts:
            joined = self.joiner.attempt(attempt)
            if joined is None:
                self._skip(notes.NOTIFICATION)
                continue
            self.counts.attempts[joined.status] += 1
            if is_published(joined) or self._include_deferred:
                record = self._record(joined)
                if record is not None:
                    records.append(record)
        return records

    def _record(self, attempt: Attempt) -> dict[str, Any] | None:
        event_ms = self._clock.millis(attempt.stamp)
        try:
            record = parse_send_result(send_result_fields(attempt, event_ms), now_ms=self._now_ms())
        except InvalidEventError:
            self._skip(notes.INVALID_EVENT)
            return None
        self.last_event_ms = record["event_time"]
        if self._annotate:
            record.update(status=attempt.status, stage=attempt.stage, queue_id=attempt.queue_id)
        return record
