"""Dead-letter tools: inspect the dead-letter topic, and redrive it through the pipeline.

Redrive reads the dead-letter topic as a bounded scan (consumers.replay.BoundedScan) from the
offsets committed by its own consumer group (`<group>-redrive`) up to the end captured at
the start, and hands the letters to the same CallbackPipeline `consume` runs: the original
bytes are decoded, classified and batched again. A letter that fails again is dead-lettered
again (its history headers carry on, attempts raised) beyond the captured end, so the next
redrive picks it up. Progress is committed to the redrive group as letters are done, so a
second redrive does not send what the first already did.

Filters (`--reason`, `--since`) keep letters out of a redrive. A skipped letter is not
dropped: it is copied, bytes, headers and timestamp unchanged, to the end of the topic before
the group's offset may pass it — so a later redrive still finds it, and the committed offset
keeps meaning "everything below was redriven".

Inspect reads the topic from the beginning to the end captured at the start and counts
letters by reason, age, destination and source topic; letters below the redrive group's
offset count as already redriven. It never decodes a letter, so no address is ever shown.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bouncewire.consumers.dead_letters import parse_dead_letter_headers
from bouncewire.consumers.replay import (
    BoundedScan,
    ProgressCallback,
    ScanRange,
    scan_consumer,
)
from bouncewire.kafka_client import (
    ConsumeError,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    Partition,
    record_timestamp_ms,
)

log = logging.getLogger(__name__)

HOUR_MS = 3600 * 1000
AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("<1h", HOUR_MS),
    ("<24h", 24 * HOUR_MS),
    ("<7d", 7 * 24 * HOUR_MS),
)
OLDER = ">=7d"
INSPECT_TIMEOUT_S = 300.0


def redrive_group(group_id: str) -> str:
    return f"{group_id}-redrive"


def age_bucket(age_ms: int) -> str:
    for label, limit in AGE_BUCKETS:
        if age_ms < limit:
            return label
    return OLDER


def letter_timestamp_ms(msg: Any) -> int | None:
    """When the letter was written (its record timestamp), if the record has one."""
    return record_timestamp_ms(msg)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters a redrive takes: all, or those of one reason and/or written since."""

    reason: str | None = None
    since_ms: int | None = None

    def matches(self, headers: Mapping[str, str], written_ms: int | None) -> bool:
        if self.reason is not None and headers.get("reason") != self.reason:
            return False
        if self.since_ms is not None and (written_ms is None or written_ms < self.since_ms):
            return False
        return True

    @property
    def everything(self) -> bool:
        return self.reason is None and self.since_ms is None


@dataclass(slots=True)
class DeadLetterSummary:
    """Counts over the dead-letter topic; the breakdowns cover the letters still pending."""

    total: int = 0
    redriven: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_age: Counter[str] = field(default_factory=Counter)
    by_destination: Counter[str] = field(default_factory=Counter)
    by_source_topic: Counter[str] = field(default_factory=Counter)
    max_attempts: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.redriven

    def add(
        self, headers: Mapping[str, str], written_ms: int | None, now_ms: int, *, pending: bool
    ) -> None:
        self.total += 1
        if not pending:
            self.redriven += 1
            return
        self.by_reason[headers.get("reason", "unknown")] += 1
        self.by_age[age_bucket(now_ms - written_ms) if written_ms is not None else "unknown"] += 1
        self.by_destination[headers.get("destination", "none")] += 1
        self.by_source_topic[headers.get("source.topic", "unknown")] += 1
        try:
            self.max_attempts = max(self.max_attempts, int(headers.get("attempts", "0")))
        except ValueError:
            pass

    def to_json(self) -> dict[str, Any]:
        return {
            "letters": self.total,
            "already_redriven": self.redriven,
            "pending": self.pending,
            "by_reason": dict(self.by_reason.most_common()),
            "by_age": {
                label: self.by_age[label]
                for label in [*(b for b, _ in AGE_BUCKETS), OLDER, "unknown"]
                if self.by_age[label]
            },
            "by_destination": dict(self.by_destination.most_common()),
            "by_source_topic": dict(self.by_source_topic.most_common()),
            "max_attempts": self.max_attempts,
        }

    def render(self) -> str:
        """A short human-readable report."""
        data = self.to_json()
        lines = [
            f"dead letters: {self.total} ({self.redriven} already redriven, {self.pending} pending)"
        ]
        for title in ("by_reason", "by_age", "by_destination", "by_source_topic"):
            if data[title]:
                lines.append(f"  {title.replace('_', ' ')}:")
                lines.extend(f"    {name:<24} {count:>8}" for name, count in data[title].items())
        if self.pending:
            lines.append(f"  highest attempt count: {self.max_attempts}")
        return "\n".join(lines)


def _plan(
    consumer: KafkaConsumer, topic: str
) -> tuple[dict[Partition, tuple[int, int]], dict[Partition, int | None]]:
    parts = consumer.partitions_of([topic])
    return consumer.watermarks(parts), consumer.committed_offsets(parts)


# --- inspect ---------------------------------------------------------------------------------


def inspect_dead_letters(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    now_ms: int | None = None,
    timeout_s: float = INSPECT_TIMEOUT_S,
) -> DeadLetterSummary:
    """Count every letter of `topic` up to its current end; `group_id` is the redrive group
    whose committed offsets tell redriven letters from pending ones (nothing is committed)."""
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    consumer = scan_consumer(settings, group_id)
    summary = DeadLetterSummary()
    try:
        marks, committed = _plan(consumer, topic)
        scan = BoundedScan(consumer, {k: (low, low, high) for k, (low, high) in marks.items()})
        scan.assign()
        deadline = time.monotonic() + timeout_s
        while not scan.exhausted:
            if time.monotonic() > deadline:
                raise ConsumeError(f"could not read {topic} to its end in {timeout_s:.0f}s")
            for msg in scan.consume(1000, 0.5):
                key = (msg.topic(), msg.partition())
                done_below = committed.get(key) or 0
                summary.add(
                    parse_dead_letter_headers(msg.headers()),
                    letter_timestamp_ms(msg),
                    now,
                    pending=msg.offset() >= done_below,
                )
    finally:
        consumer.close()
    return summary


# --- redrive ---------------------------------------------------------------------------------


class DeadLetterSource(BoundedScan):
    """The dead-letter topic from the redrive group's offsets to the captured end."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        ranges: Mapping[Partition, tuple[int, int, int]],
        letters: LetterFilter,
        copier: KafkaProducer,
        topic: str,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(consumer, ranges, on_progress)
        self._filter = letters
        self._copier = copier
        self._topic = topic
        self._committed = {k: start for k, (_o, start, _e) in ranges.items()}
        self.kept = 0  # letters skipped by the filter and copied to the end of the topic

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        self._copier.poll(0)
        return super().consume(max_messages, timeout)

    def _accept(self, msg: Any, r: ScanRange) -> bool:
        written = letter_timestamp_ms(msg)
        if self._filter.matches(parse_dead_letter_headers(msg.headers()), written):
            return True
        r.held.add(msg.offset())
        self._copy(msg, r, written)
        return False

    def _copy(self, msg: Any, r: ScanRange, written: int | None) -> None:
        offset = msg.offset()
        headers = [(k, v) for k, v in msg.headers() or [] if v is not None]

        def delivered(err: Any, _copy: Any) -> None:
            if err is None:
                r.held.discard(offset)
                self.kept += 1
                return
            log.warning(
                "copy of a skipped letter not acknowledged; retrying",
                extra={"code": err.name(), "partition": msg.partition()},
            )
            self._copy(msg, r, written)

        self._copier.produce(
            self._topic,
            msg.value() or b"",
            key=msg.key(),
            timestamp_ms=written,
            headers=headers,
            on_delivery=delivered,
        )

    def _persist(self, sync: bool) -> None:
        if sync:
            self._copier.flush(30.0)
        moved = {k: o for k, o in self.done_offsets().items() if o > self._committed[k]}
        if not moved:
            return
        try:
            self._consumer.commit_offsets(moved, asynchronous=not sync)
        except ConsumeError as exc:
            log.warning("redrive commit failed", extra={"code": exc.code, "detail": str(exc)})
            return
        self._committed.update(moved)

    def close(self) -> None:
        self._copier.flush(30.0)
        super().close()


def open_redrive(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    letters: LetterFilter,
    on_progress: ProgressCallback | None = None,
) -> DeadLetterSource:
    """A redrive source over `topic` continuing where the redrive group `group_id` stopped."""
    consumer = scan_consumer(settings, group_id)
    try:
        marks, committed = _plan(consumer, topic)
    except Exception:
        consumer.close()
        raise
    ranges = {}
    for key, (low, high) in marks.items():
        start = max(committed.get(key) or low, low)
        ranges[key] = (start, start, max(start, high))
    copier = KafkaProducer(settings, {"client.id": "bouncewire-redrive-copy"})
    return DeadLetterSource(consumer, ranges, letters, copier, topic, on_progress)
