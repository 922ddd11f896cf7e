"""`bouncewire mta-log postfix|exim PATH`: send results from the MTA's own log (wiring only).

The pure parts are in producers/mta_log/ (reader: lines → send-result records; follower/tail:
complete lines across rotations and restarts). Here: the loop that publishes through the
one EventPublisher (or prints, --dry-run), checkpoints only what Kafka acknowledged, and
serves metrics. Exit codes: 0 done, 1 lines not understood under --strict, 2 setup or
publishing failure, 130 interrupted while reading stdin.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

from bouncewire._flags import add_flag, add_kafka_flags, kafka_settings, topic_names
from bouncewire._produce import build_codec, classify_line
from bouncewire.consumers.endpoints import EndpointServer
from bouncewire.kafka_client import BrokerUnavailableError, KafkaClientError, KafkaProducer
from bouncewire.producers import EventPublisher, PublishError
from bouncewire.producers.mta_log import (
    MTAS,
    Checkpoint,
    Chunk,
    LineNotUnderstood,
    LogFile,
    LogReader,
    Position,
    load_checkpoint,
    save_checkpoint,
    stream_chunks,
)

log = logging.getLogger("bouncewire.mta_log")
EXIT_OK, EXIT_STRICT, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
# Flush (wait for Kafka's acknowledgements) and checkpoint at least this often while busy.
FLUSH_EVERY_RECORDS = 20_000


def add_mta_log_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mta-log", help="publish the send results in Postfix's or Exim's log")
    p.add_argument("mta", choices=MTAS)
    p.add_argument("path", help="the log file; - reads stdin (journalctl -f -o cat -u postfix)")
    add_flag(p, "--follow", action="store_true", help="keep reading what is appended")
    add_flag(p, "--checkpoint", type=Path, help="resume from and save the position here")
    add_flag(p, "--dry-run", action="store_true", help="print results and verdicts, no Kafka")
    add_flag(
        p,
        "--include-deferred",
        action="store_true",
        help="with --dry-run, print deferred attempts too (never published)",
    )
    add_flag(p, "--strict", action="store_true", help="a line not understood is an error")
    add_flag(p, "--metrics-port", type=int, help="serve /metrics, /healthz, /readyz here")
    add_flag(p, "--metrics-host", default="127.0.0.1")
    add_flag(p, "--flush-interval", type=float, default=1.0, help="seconds between checkpoints")
    add_flag(p, "--poll-interval", type=float, default=0.25, help="seconds between file polls")
    add_flag(p, "--broker-timeout", type=float, default=15.0)
    add_kafka_flags(p)
    p.set_defaults(handler=cmd_mta_log)


class Sink(Protocol):
    def publish(self, record: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


class PrintSink:
    """--dry-run: each result as a JSON line with its verdict, as `bouncewire classify` gives."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def publish(self, record: dict[str, Any]) -> None:
        self._out.write(orjson.dumps({**record, **classify_line(record)}) + b"\n")

    def flush(self) -> None:
        self._out.flush()


class KafkaSink:
    def __init__(self, publisher: EventPublisher, timeout_s: float) -> None:
        self._publisher, self._timeout_s = publisher, timeout_s

    def publish(self, record: dict[str, Any]) -> None:
        self._publisher.publish("send_result", record, parsed=True)

    def flush(self) -> None:
        self._publisher.flush(self._timeout_s)


class MtaLogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        prefix = "bouncewire_mta_log_"
        self.lines = PromCounter(prefix + "lines_read", "Log lines read", registry=registry)
        self.published = PromCounter(
            prefix + "events_published", "Send results acknowledged by Kafka", registry=registry
        )
        self.skipped = PromCounter(
            prefix + "lines_skipped", "Lines without a send result", ["reason"], registry=registry
        )
        self.attempts = PromCounter(
            prefix + "attempts", "Delivery attempts read, by status", ["status"], registry=registry
        )
        self.behind = Gauge(
            prefix + "seconds_behind",
            "The file's last write minus the newest result read; 0 at the end of the file",
            registry=registry,
        )
        self._seen: dict[str, Counter[str]] = {"skipped": Counter(), "attempts": Counter()}
        self._lines = 0

    def update(self, reader: LogReader, published: int, behind_s: float) -> None:
        counts = reader.counts
        self.lines.inc(counts.lines - self._lines)
        self._lines = counts.lines
        self.published.inc(published)
        for name, metric, current in (
            ("skipped", self.skipped, counts.skipped),
            ("attempts", self.attempts, counts.attempts),
        ):
            for label, value in current.items():
                metric.labels(label).inc(value - self._seen[name][label])
            self._seen[name] = Counter(current)
        self.behind.set(behind_s)


class Run:
    """The read → publish → flush → checkpoint loop."""

    def __init__(self, args: argparse.Namespace, sink: Sink, reader: LogReader) -> None:
        self._args, self._sink, self._reader = args, sink, reader
        self.metrics: MtaLogMetrics | None = None
        self.position: Position | None = None  # after the last line read
        self._pending = 0  # records handed to the sink since the last flush
        self.published = 0
        self._flushed: Position | None = None
        self._last_flush = time.monotonic()

    def run(self, chunks: Iterator[Chunk]) -> None:
        for chunk in chunks:
            self._read(chunk)
            self.position = chunk.position or self.position
            if self._flush_due(chunk):
                self.checkpoint(self.position)

    def _read(self, chunk: Chunk) -> None:
        reader, publish = self._reader, self._sink.publish
        for raw in chunk.lines:
            for record in reader.read(raw.decode("utf-8", "replace")):
                publish(record)
                self._pending += 1
        for _ in range(chunk.partial):
            reader.skip_partial_line()

    def _flush_due(self, chunk: Chunk) -> bool:
        if self._pending == 0 and self.position == self._flushed:
            return False
        if chunk.idle or self._pending >= FLUSH_EVERY_RECORDS:
            return True
        return time.monotonic() - self._last_flush >= float(self._args.flush_interval)

    def checkpoint(self, position: Position | None) -> None:
        """Flush, then save the position: only what Kafka acknowledged is behind it."""
        self._sink.flush()
        self.published += self._pending
        published, self._pending = self._pending, 0
        self._last_flush = time.monotonic()
        if self._args.checkpoint is not None and position is not None:
            save_checkpoint(
                self._args.checkpoint, Checkpoint(position, self._reader.joiner.state())
            )
        self._flushed = position
        if self.metrics is not None:
            self.metrics.update(self._reader, published, self._behind_s(position))

    def _behind_s(self, position: Position | None) -> float:
        if position is None or self._args.path == "-":
            return 0.0
        try:
            stat = os.stat(self._args.path)
        except OSError:
            return 0.0
        last_ms = self._reader.last_event_ms
        if position.offset >= stat.st_size or last_ms is None:
            return 0.0
        return max(0.0, stat.st_mtime - last_ms / 1000)


def _fail(message: str) -> int:
    print(f"bouncewire: {message}", file=sys.stderr)
    return EXIT_ERROR


def _sink(args: argparse.Namespace) -> Sink:
    if args.dry_run:
        return PrintSink(sys.stdout.buffer)
    producer = KafkaProducer(kafka_settings(args))
    producer.check_broker(timeout=args.broker_timeout)
    publisher = EventPublisher(producer, build_codec(args), topic_names(args))
    return KafkaSink(publisher, args.broker_timeout * 3)


def _chunks(
    args: argparse.Namespace, saved: Position | None, stop: threading.Event
) -> Iterator[Chunk]:
    if args.path == "-":
        return stream_chunks(sys.stdin.buffer)
    log_file = LogFile(
        args.path,
        saved,
        follow=args.follow,
        poll_s=args.poll_interval,
        stop=stop,
        not_logs=(args.checkpoint,) if args.checkpoint else (),
    )
    return log_file.chunks()


def _serve_metrics(args: argparse.Namespace, run: Run) -> EndpointServer | None:
    if args.metrics_port is None:
        return None
    registry = CollectorRegistry()
    run.metrics = MtaLogMetrics(registry)
    server = EndpointServer(
        registry,
        liveness=lambda: (True, "ok"),
        readiness=lambda: (True, "ok"),
        host=args.metrics_host,
        port=args.metrics_port,
    )
    server.start()
    return server


def cmd_mta_log(args: argparse.Namespace) -> int:
    if args.path == "-" and args.checkpoint is not None:
        return _fail("--checkpoint needs a log file: stdin has no position to resume from")
    if args.include_deferred and not args.dry_run:
        return _fail("--include-deferred is for --dry-run: deferred attempts are never published")
    try:
        saved = load_checkpoint(args.checkpoint) if args.checkpoint else None
    except ValueError as exc:
        return _fail(str(exc))
    if args.path != "-" and not args.follow and not os.path.exists(args.path):
        return _fail(f"no such log file: {args.path}")
    try:
        sink = _sink(args)
    except (BrokerUnavailableError, KafkaClientError) as exc:
        return _fail(f"{exc}; nothing read")
    reader = LogReader(
        args.mta,
        strict=args.strict,
        annotate=args.dry_run,
        include_deferred=args.include_deferred,
    )
    if saved is not None:
        reader.joiner.restore(saved.joiner)
    run = Run(args, sink, reader)
    stop = threading.Event()
    server = _serve_metrics(args, run)
    log.info(
        "mta log reading",
        extra={
            "mta": args.mta,
            "path": args.path,
            "follow": args.follow,
            "resume_offset": saved.position.offset if saved else None,
            "dry_run": args.dry_run,
        },
    )
    try:
        with _stopped_by_signals(stop, args.path != "-"):
            return _loop(run, _chunks(args, saved.position if saved else None, stop), reader)
    finally:
        if server is not None:
            server.stop()


@contextmanager
def _stopped_by_signals(stop: threading.Event, wanted: bool) -> Iterator[None]:
    """SIGTERM and SIGINT end a file's run after the current chunk (flushed, checkpointed).
    Not for stdin: a read blocked on a pipe would not see `stop`; Ctrl-C interrupts it."""
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in previous:
        signal.signal(signum, lambda *_: stop.set())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _loop(run: Run, chunks: Iterator[Chunk], reader: LogReader) -> int:
    code = EXIT_OK
    try:
        try:
            run.run(chunks)
        except LineNotUnderstood as exc:
            print(f"bouncewire: line {reader.counts.lines}: {exc}", file=sys.stderr)
            code = EXIT_STRICT
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        # Under --strict, what was published is flushed but the position stays before it.
        run.checkpoint(run.position if code != EXIT_STRICT else None)
    except (KafkaClientError, PublishError) as exc:
        return _fail(f"{exc}; the checkpoint stays where Kafka last acknowledged")
    counts = reader.counts
    log.info(
        "mta log read",
        extra={
            "lines": counts.lines,
            "published": run.published,
            "attempts": dict(counts.attempts),
            "skipped": dict(counts.skipped),
        },
    )
    return code
