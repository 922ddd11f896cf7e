"""Bounded record sources for the callback pipeline: replay an event-time window, and the
senders that go with it (dry run, rate limit).

A bounded scan reads fixed offset ranges by manual assignment: no group membership, no
rebalance, and never a commit to the live consumer group. Each range's end is captured once,
at the start, so a scan never chases new data; a partition is finished when its position
reaches that end (or librdkafka reports end-of-partition, which also covers ranges ending in
transaction markers). The pipeline ends its run once the source is `exhausted` and every
record read is done.

Progress ("every record below offset N is done") is what the pipeline stores through
`store()`; a source turns it into something durable: the replay checkpoint file here, the
redrive consumer group's offsets in consumers.dead_letter_tools.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bouncewire.consumers.batching import Batch
from bouncewire.consumers.checkpoint import (
    Checkpoint,
    CheckpointError,
    RunParameters,
    Window,
    load_checkpoint,
    new_checkpoint,
    write_checkpoint,
)
from bouncewire.consumers.delivery import DestinationSender, Outcome, OutcomeKind
from bouncewire.consumers.payloads import Destination, PayloadFormat, build_payload
from bouncewire.kafka_client import (
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    Partition,
    PartitionLag,
    RebalanceListener,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
DEFAULT_SLACK_MS = 10 * 60 * 1000
# A scan reads and never commits; offsets live in the checkpoint (replay) or are committed
# explicitly (redrive). End-of-partition events tell a scan it is finished.
SCAN_CONFIG: Mapping[str, object] = {
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
}


def scan_consumer(settings: KafkaSettings, group_id: str) -> KafkaConsumer:
    return KafkaConsumer(settings, group_id, SCAN_CONFIG)


# --- planning the offset ranges -------------------------------------------------------------


def plan_window(
    consumer: KafkaConsumer,
    topics: Iterable[str],
    window: Window,
    slack_ms: int = DEFAULT_SLACK_MS,
) -> list[tuple[Partition, int, int]]:
    """(partition, start, end) ranges holding every record of `window`.

    Record timestamps are event times (the producer stamps them), so the broker's time index
    bounds the scan; the slack on both sides catches records published slightly out of order.
    An event published more than the slack late is outside the scan: widen `slack_ms`.
    """
    parts = consumer.partitions_of(topics)
    marks = consumer.watermarks(parts)
    starts = consumer.offsets_for_time(parts, window.start_ms - slack_ms)
    ends = consumer.offsets_for_time(parts, window.end_ms + slack_ms)
    ranges = []
    for key in parts:
        low, high = marks[key]
        first, last = starts[key], ends[key]
        start = high if first is None else max(first, low)
        end = high if last is None else min(high, last)
        ranges.append((key, start, max(start, end)))
    return ranges


# --- the bounded scan -------------------------------------------------------------------------


@dataclass(slots=True)
class ScanRange:
    origin: int  # where the whole run started (progress counts from here)
    start: int  # where this process starts reading
    end: int
    read: int = 0  # next offset to read
    stored: int = 0  # the pipeline's done-position (every handed record below is done)
    at_end: bool = False
    handed: deque[int] = field(default_factory=deque)  # offsets handed, maybe not done
    held: set[int] = field(default_factory=set)  # skipped offsets whose side work is pending

    def done_upto(self) -> int:
        """Every record below this offset is done: handed and completed, or skipped."""
        while self.handed and self.handed[0] < self.stored:
            self.handed.popleft()
        if self.handed:
            upto = self.handed[0]
        else:
            upto = self.end if self.at_end else self.read
        if self.held:
            upto = min(upto, min(self.held))
        return max(upto, self.start)


class _NoListener:
    def on_assigned(self, partitions: list[Partition]) -> None: ...
    def on_revoked(self, partitions: list[Partition]) -> None: ...
    def on_lost(self, partitions: list[Partition]) -> None: ...


class BoundedScan:
    """A RecordSource over fixed offset ranges (see the module docstring).

    `ranges` maps each partition to (origin, start, end): the run began at `origin`, this
    process reads [start, end). Subclasses decide what "done" is persisted as (`_persist`)
    and may keep records away from the pipeline (`_accept`).
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        ranges: Mapping[Partition, tuple[int, int, int]],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self._consumer = consumer
        self._ranges = {
            key: ScanRange(origin, start, end, read=start, stored=start, at_end=start >= end)
            for key, (origin, start, end) in ranges.items()
        }
        self._assigned: set[Partition] = set()
        self._on_progress = on_progress

    # --- RecordSource ------------------------------------------------------------------------

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None:
        """Assign the planned ranges; `topics` is ignored: the plan says what is read."""
        self.assign()
        listener.on_assigned(sorted(self._ranges))

    def assign(self) -> None:
        todo = {k: r for k, r in self._ranges.items() if not r.at_end}
        if todo:
            self._consumer.assign_at({key: r.start for key, r in todo.items()})
        self._assigned = set(todo)

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        if not self._assigned or self.reading_done:
            time.sleep(timeout)
            return []
        messages, reached_eof = self._consumer.consume_scan(max_messages, timeout)
        # An end-of-partition event follows every record of its partition in the batch, so
        # taking the records first keeps the order that matters.
        good = [msg for msg in messages if self._take(msg)]
        for key in reached_eof:
            self._finish_partition(key)
        return good

    def _take(self, msg: Any) -> bool:
        key = (msg.topic(), msg.partition())
        r = self._ranges.get(key)
        if r is None or r.at_end or msg.offset() >= r.end:
            self._finish_partition(key)
            return False
        r.read = msg.offset() + 1
        if r.read >= r.end:
            self._finish_partition(key)
        if not self._accept(msg, r):
            return False
        r.handed.append(msg.offset())
        return True

    def _finish_partition(self, key: Partition) -> None:
        r = self._ranges.get(key)
        if r is not None and not r.at_end:
            r.at_end = True
            self._client_pause([key])

    def store(self, offsets: Mapping[Partition, int]) -> None:
        for key, offset in offsets.items():
            r = self._ranges.get(key)
            if r is not None and offset > r.stored:
                r.stored = offset
        self._persist(sync=False)
        self._report_progress()

    def commit_now(self) -> None:
        self._persist(sync=True)
        self._report_progress()

    def pause(self, partitions: Iterable[Partition]) -> None:
        self._client_pause(partitions)

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Resume, except partitions that reached their end: nothing beyond it is read."""
        wanted = [k for k in partitions if k in self._assigned and not self._ranges[k].at_end]
        self._consumer.resume(wanted)

    def _client_pause(self, partitions: Iterable[Partition]) -> None:
        wanted = [k for k in partitions if k in self._assigned]
        self._consumer.pause(wanted)

    def lag(self) -> dict[Partition, PartitionLag]:
        """Left of the range beyond what is done, and what was read beyond that."""
        lags = {}
        for key, scan in self._ranges.items():
            done = scan.done_upto()
            lags[key] = PartitionLag(max(scan.end - done, 0), max(scan.read - done, 0))
        return lags

    def close(self) -> None:
        self._consumer.close()

    @property
    def reading_done(self) -> bool:
        return all(r.at_end for r in self._ranges.values())

    @property
    def exhausted(self) -> bool:
        return all(r.at_end and not r.held for r in self._ranges.values())

    # --- progress -------------------------------------------------------------------------------

    def done_offsets(self) -> dict[Partition, int]:
        return {k: r.done_upto() for k, r in self._ranges.items()}

    def progress(self) -> tuple[int, int]:
        """(records done, records in the run) since the run's origin."""
        done = total = 0
        for r in self._ranges.values():
            span = max(r.end - r.origin, 0)
            total += span
            done += min(max(r.done_upto() - r.origin, 0), span)
        return done, total

    def _report_progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(*self.progress())

    # --- hooks --------------------------------------------------------------------------------

    def _accept(self, msg: Any, r: ScanRange) -> bool:
        """Hand `msg` to the pipeline? A record kept back must be recorded in `r.held` until
        whatever the subclass does with it is safe."""
        return True

    def _persist(self, sync: bool) -> None:
        """Make `done_offsets()` durable (sync: now, before returning)."""


class ReplaySource(BoundedScan):
    """Replays the ranges of a checkpoint; progress goes to the checkpoint file, never to a
    consumer group. The pipeline filters by event time (PipelineConfig.event_time_window_ms).
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        checkpoint: Checkpoint,
        path: Path,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        ranges = {key: (p.start, p.next, p.end) for key, p in checkpoint.partitions.items()}
        super().__init__(consumer, ranges, on_progress)
        self.checkpoint = checkpoint
        self.path = path

    def save(self) -> None:
        """Write the checkpoint now; CheckpointError when it cannot be written."""
        write_checkpoint(self.path, self.checkpoint)

    def _persist(self, sync: bool) -> None:
        if self.checkpoint.advance(self.done_offsets()):
            self.save()


def prepare_checkpoint(
    consumer: KafkaConsumer,
    path: Path,
    params: RunParameters,
    *,
    resume: bool,
    slack_ms: int = DEFAULT_SLACK_MS,
) -> Checkpoint:
    """The checkpoint to run: the stored one when resuming (same parameters only), else a
    fresh plan. A fresh run never overwrites a checkpoint: that would forget what was sent."""
    if resume:
        if not path.exists():
            raise CheckpointError(f"no checkpoint {path} to resume")
        checkpoint = load_checkpoint(path)
        checkpoint.check_resumable(params)
        return checkpoint
    if path.exists():
        raise CheckpointError(
            f"checkpoint {path} exists: pass --resume to continue that run, "
            "or remove the file to start over"
        )
    return new_checkpoint(params, plan_window(consumer, params.topics, params.window, slack_ms))


def open_replay(
    settings: KafkaSettings,
    path: Path,
    params: RunParameters,
    *,
    resume: bool,
    slack_ms: int = DEFAULT_SLACK_MS,
    on_progress: ProgressCallback | None = None,
) -> ReplaySource:
    """A replay source whose checkpoint was just written: a path that cannot be written
    fails here, before any callback is sent."""
    # A throwaway group id: librdkafka wants one; nothing is ever committed under it.
    consumer = scan_consumer(settings, f"bouncewire-replay-{time.time_ns():x}")
    try:
        checkpoint = prepare_checkpoint(consumer, path, params, resume=resume, slack_ms=slack_ms)
        source = ReplaySource(consumer, checkpoint, path, on_progress)
        source.save()
    except BaseException:
        consumer.close()
        raise
    return source


# --- senders ---------------------------------------------------------------------------------


CompletionQueue = queue.SimpleQueue[tuple[Batch, Outcome]]


class Pacer:
    """Spaces POSTs so that events per second stay at or below `rate` on average.

    Each POST books `events / rate` seconds; a POST waits until the bookings before it ran
    out. Shared by the destinations' sender threads.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the rate limit must be positive")
        self._rate = rate
        self._clock = clock
        self._free_at = float("-inf")
        self._lock = threading.Lock()

    def reserve(self, events: int) -> float:
        """Book `events`; returns how many seconds to wait before sending them."""
        with self._lock:
            now = self._clock()
            begin = max(now, self._free_at)
            self._free_at = begin + events / self._rate
            return begin - now


@dataclass
class PacedSender(DestinationSender):
    """A DestinationSender that waits for its pacer before each batch (--rate-limit)."""

    pacer: Pacer | None = None

    def deliver(self, batch: Batch) -> Outcome:
        if self.pacer is not None:
            wait = self.pacer.reserve(len(batch.events))
            if wait > 0 and self._abort.wait(wait):
                return Outcome(OutcomeKind.ABANDONED)
        return super().deliver(batch)


class DryRunWriter:
    """One JSON line per POST that would be sent: exactly the POST body."""

    def __init__(self, handle: IO[bytes], fmt: PayloadFormat) -> None:
        self._handle = handle
        self._fmt = fmt
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, batch: Batch) -> None:
        line = build_payload(batch.events, self._fmt) + b"\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            self.lines += 1


@dataclass
class DryRunSender:
    """Writes each batch instead of POSTing it and reports it delivered at once."""

    destination: Destination
    writer: DryRunWriter
    completions: CompletionQueue
    retrying: bool = False
    failure: str | None = None

    def start(self) -> None:
        pass

    def submit(self, batch: Batch) -> None:
        self.writer.write(batch)
        self.completions.put((batch, Outcome(OutcomeKind.DELIVERED, status=200)))

    @property
    def backlog(self) -> int:
        return 0

    def in_flight(self) -> list[Batch]:
        return []

    def close(self, abort: bool) -> None:
        pass

    def join(self, timeout: float) -> bool:
        return True


class DryRunDeadLetters(KafkaProducer):
    """Stands in for the dead-letter producer in a dry run: acknowledges without writing,
    so records that would be dead-lettered are counted (metrics) and nothing reaches Kafka."""

    def __init__(self, settings: KafkaSettings) -> None:
        super().__init__(settings)
        self._acks: list[Callable[[Any, Any], None]] = []
        self.would_write = 0

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        self.would_write += 1
        if on_delivery is not None:
            self._acks.append(on_delivery)

    def poll(self, timeout: float = 0.0) -> int:
        acks, self._acks = self._acks, []
        for ack in acks:
            ack(None, None)
        return len(acks)

    def flush(self, timeout: float = 30.0) -> int:
        self.poll()
        return 0
