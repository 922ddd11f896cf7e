"""`bouncewire replay` and `bouncewire dlq inspect|redrive`: wiring only.

Both run the very CallbackPipeline `consume` runs (classification, batching, retries,
dead-lettering), fed by a bounded source instead of the consumer group: see
consumers/replay.py and consumers/dead_letter_tools.py. Exit codes: 0 done, 1 stopped with
work left (drain timed out), 2 bad input or setup error, 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx
import orjson
from prometheus_client import CollectorRegistry

from bouncewire._consume import add_pipeline_flags, pipeline_config, tune_interpreter
from bouncewire._flags import add_flag, add_kafka_flags, kafka_settings, topic_names
from bouncewire._produce import build_codec
from bouncewire.consumers.checkpoint import (
    CheckpointError,
    RunParameters,
    TimeParseError,
    Window,
    destinations_fingerprint,
    parse_instant,
)
from bouncewire.consumers.dead_letter_tools import (
    DeadLetterSource,
    LetterFilter,
    inspect_dead_letters,
    open_redrive,
    redrive_group,
)
from bouncewire.consumers.delivery import build_http_client, url_for_logs
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import Destination
from bouncewire.consumers.pipeline import (
    CallbackPipeline,
    PipelineConfig,
    Sender,
    SenderFactory,
)
from bouncewire.consumers.replay import (
    DEFAULT_SLACK_MS,
    BoundedScan,
    CompletionQueue,
    DryRunDeadLetters,
    DryRunSender,
    DryRunWriter,
    PacedSender,
    Pacer,
    ReplaySource,
    open_replay,
)
from bouncewire.kafka_client import KafkaClientError, KafkaProducer, KafkaSettings, Secret

log = logging.getLogger("bouncewire.replay")
Subparsers = argparse._SubParsersAction  # argparse has no public name for it
EXIT_OK, EXIT_LEFT_OVER, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
CALLBACK_TYPES = ("hardbounce", "softbounce", "unsubscribe")


# --- progress -------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_progress(done: int, total: int, elapsed_s: float, width: int = 28) -> str:
    """`[#####.....] done/total records  pct  rate/s  ETA h:mm:ss` (one terminal line)."""
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = format_duration((total - done) / rate) if rate > 0 and done < total else "-:--:--"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} records "
        f"{fraction * 100:5.1f}%  {rate:,.0f}/s  ETA {eta}"
    )


class Progress:
    """A `\\r` progress bar on a terminal, else a JSON log line every `interval_s`."""

    def __init__(
        self,
        stream: IO[str],
        *,
        tty: bool,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream, self._tty, self._clock = stream, tty, clock
        self._interval = 0.2 if tty else interval_s
        self._started = clock()
        self._next_at = self._started
        self.done = self.total = 0

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = self._clock()
        if now >= self._next_at:
            self._next_at = now + self._interval
            self._show(now)

    def _show(self, now: float) -> None:
        elapsed = now - self._started
        if self._tty:
            self._stream.write("\r" + format_progress(self.done, self.total, elapsed))
            self._stream.flush()
        else:
            rate = self.done / elapsed if elapsed > 0 else 0.0
            log.info(
                "progress",
                extra={"done": self.done, "total": self.total, "rate_per_s": round(rate, 1)},
            )

    def finish(self) -> None:
        self._show(self._clock())
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _progress(args: argparse.Namespace) -> Progress:
    return Progress(sys.stderr, tty=sys.stderr.isatty(), interval_s=args.progress_interval)


# --- the job: one pipeline over a bounded source ------------------------------------------


@dataclass
class Job:
    pipeline: CallbackPipeline
    source: BoundedScan
    registry: CollectorRegistry
    progress: Progress
    on_close: Callable[[], None] = lambda: None

    def run(self) -> int:
        """Run to the end of the source (or a stop), then report; see the module's exit codes."""
        try:
            with _stop_on_signals(self.pipeline):
                self.pipeline.run()
        except CheckpointError as exc:
            print(
                f"\nbouncewire: {exc}; stopped before sending anything it could not record",
                file=sys.stderr,
            )
            return EXIT_ERROR
        finally:
            self.on_close()
        self.progress.finish()
        return self._verdict()

    def _verdict(self) -> int:
        done, total = self.source.progress()
        print(orjson.dumps(self.summary()).decode(), file=sys.stderr)
        if done >= total and self.source.exhausted:
            return EXIT_OK
        if self.pipeline.stop_requested.is_set():
            return EXIT_INTERRUPTED
        return EXIT_LEFT_OVER

    def summary(self) -> dict[str, Any]:
        def value(name: str, **labels: str) -> int:
            return int(self.registry.get_sample_value(name, labels) or 0)

        done, total = self.source.progress()
        dead = sum(
            int(s.value)
            for metric in self.registry.collect()
            if metric.name == "bouncewire_dead_letters"
            for s in metric.samples
            if s.name.endswith("_total")
        )
        return {
            "records_done": done,
            "records_total": total,
            "delivered": {
                t: value("bouncewire_callback_events_total", callback_type=t)
                for t in CALLBACK_TYPES
            },
            "dead_lettered": dead,
        }


@contextlib.contextmanager
def _stop_on_signals(pipeline: CallbackPipeline) -> Iterator[None]:
    """SIGINT/SIGTERM stop the pipeline, which drains and checkpoints (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        pipeline.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sender_factory(
    config: PipelineConfig, http: httpx.Client, metrics: ConsumerMetrics, rate_limit: float | None
) -> SenderFactory | None:
    if rate_limit is None:
        return None
    pacer = Pacer(rate_limit)

    def paced(destination: Destination, url: Secret, completions: CompletionQueue) -> Sender:
        return PacedSender(
            destination,
            url,
            http,
            config.retry,
            config.payload_format,
            metrics,
            completions,
            max_in_flight=config.max_in_flight,
            pacer=pacer,
        )

    return paced


def _dry_run_factory(writer: DryRunWriter) -> SenderFactory:
    def dry(destination: Destination, _url: Secret, completions: CompletionQueue) -> Sender:
        return DryRunSender(destination, writer, completions)

    return dry


def _fail(exc: Exception) -> int:
    print(f"bouncewire: {exc}", file=sys.stderr)
    return EXIT_ERROR


# --- replay ---------------------------------------------------------------------------------


def default_checkpoint(window: Window, dry_run: bool) -> Path:
    mode = ".dry-run" if dry_run else ""
    return Path(
        f"bouncewire-replay-{window.start_ms // 1000}-{window.end_ms // 1000}{mode}.checkpoint.json"
    )


def replay_parameters(args: argparse.Namespace, window: Window) -> RunParameters:
    topics = topic_names(args)
    dry = args.dry_run is not None
    urls = ("dry-run",) if dry else (args.bounce_callback_url, args.unsubscribe_callback_url)
    return RunParameters(
        window,
        topics.sources(),
        destinations_fingerprint(*urls),
        "dry-run" if dry else "live",
        args.payload_format,
    )


def _replay_config(args: argparse.Namespace, window: Window) -> PipelineConfig:
    if args.dry_run is None and not (args.bounce_callback_url and args.unsubscribe_callback_url):
        raise SystemExit(
            "bouncewire: replay needs --bounce-callback-url and "
            "--unsubscribe-callback-url (or --dry-run FILE)"
        )
    args.bounce_callback_url = args.bounce_callback_url or ""
    args.unsubscribe_callback_url = args.unsubscribe_callback_url or ""
    return replace(
        pipeline_config(args), event_time_window_ms=window.as_tuple(), group_id="bouncewire-replay"
    )


def build_replay(args: argparse.Namespace, progress: Progress) -> Job:
    """Plan (or resume) the replay and write its checkpoint; nothing is sent yet."""
    window = Window.parse(args.from_time, args.to_time)
    config = _replay_config(args, window)
    settings = kafka_settings(args)
    path = args.checkpoint or default_checkpoint(window, args.dry_run is not None)
    source = open_replay(
        settings,
        path,
        replay_parameters(args, window),
        resume=args.resume,
        slack_ms=round(args.slack * 1000),
        on_progress=progress.update,
    )
    if args.dry_run is not None:
        registry = CollectorRegistry()
        metrics = ConsumerMetrics.create(registry)
        handle = args.dry_run.open("ab" if args.resume else "wb")
        pipeline = CallbackPipeline(
            config,
            source,
            DryRunDeadLetters(settings),
            build_codec(args),
            None,
            metrics,
            sender_factory=_dry_run_factory(DryRunWriter(handle, config.payload_format)),
        )
        return Job(pipeline, source, registry, progress, on_close=handle.close)
    return _live_job(args, config, settings, source, progress, "bouncewire-replay-dlq")


def _live_job(
    args: argparse.Namespace,
    config: PipelineConfig,
    settings: KafkaSettings,
    source: BoundedScan,
    progress: Progress,
    dlq_client_id: str,
) -> Job:
    """The same pipeline `consume` runs, over a bounded source, POSTing for real."""
    registry = CollectorRegistry()
    metrics = ConsumerMetrics.create(registry)
    http = build_http_client(config.retry, 2 * config.max_in_flight)
    pipeline = CallbackPipeline(
        config,
        source,
        KafkaProducer(settings, {"client.id": dlq_client_id}),
        build_codec(args),
        http,
        metrics,
        sender_factory=_sender_factory(config, http, metrics, args.rate_limit),
    )
    return Job(pipeline, source, registry, progress, on_close=http.close)


def cmd_replay(args: argparse.Namespace) -> int:
    progress = _progress(args)
    try:
        job = build_replay(args, progress)
    except (CheckpointError, TimeParseError, KafkaClientError, OSError) as exc:
        return _fail(exc)
    assert isinstance(job.source, ReplaySource)
    log.info(
        "replay",
        extra={
            "from": args.from_time,
            "to": args.to_time,
            "checkpoint": str(job.source.path),
            "resume": args.resume,
            "records": job.source.checkpoint.total,
            "already_done": job.source.checkpoint.done,
            "dry_run": str(args.dry_run) if args.dry_run else None,
            "bounce_url": None if args.dry_run else url_for_logs(job.pipeline.config.bounce_url),
        },
    )
    tune_interpreter()  # a backfill is the consumer's hot loop too
    code = job.run()
    if code == EXIT_INTERRUPTED:
        print(
            f"bouncewire: interrupted; continue with --resume --checkpoint {job.source.path}",
            file=sys.stderr,
        )
    return code


# --- dlq ------------------------------------------------------------------------------------


def cmd_dlq_inspect(args: argparse.Namespace) -> int:
    try:
        summary = inspect_dead_letters(
            kafka_settings(args), topic_names(args).dlq, redrive_group(args.group_id)
        )
    except KafkaClientError as exc:
        return _fail(exc)
    if args.json:
        print(orjson.dumps(summary.to_json()).decode())
    else:
        print(summary.render())
    return EXIT_OK


def letter_filter(args: argparse.Namespace) -> LetterFilter:
    since = parse_instant(args.since) if args.since else None
    return LetterFilter(reason=args.reason, since_ms=since)


def build_redrive(args: argparse.Namespace, progress: Progress) -> Job:
    config = pipeline_config(args)
    settings = kafka_settings(args)
    source = open_redrive(
        settings,
        config.topics.dlq,
        redrive_group(config.group_id),
        letter_filter(args),
        on_progress=progress.update,
    )
    return _live_job(args, config, settings, source, progress, "bouncewire-redrive-dlq")


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    progress = _progress(args)
    try:
        job = build_redrive(args, progress)
    except (TimeParseError, KafkaClientError) as exc:
        return _fail(exc)
    code = job.run()
    if isinstance(job.source, DeadLetterSource) and job.source.kept:
        print(
            f"bouncewire: {job.source.kept} letter(s) outside the filter kept "
            "(copied to the end of the dead-letter topic)",
            file=sys.stderr,
        )
    return code


# --- parsers --------------------------------------------------------------------------------


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    add_flag(
        p,
        "--rate-limit",
        type=float,
        metavar="EVENTS_PER_S",
        help="at most this many callback events per second (all destinations)",
    )
    add_flag(
        p,
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to finish in-flight batches when interrupted",
    )
    add_flag(
        p,
        "--progress-interval",
        type=float,
        default=10.0,
        help="seconds between progress log lines when stderr is not a terminal",
    )


def add_replay_parser(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="re-deliver the callbacks of an event-time window")
    add_kafka_flags(p)
    add_pipeline_flags(p, urls_required=False)
    add_flag(
        p,
        "--from",
        dest="from_time",
        required=True,
        metavar="T1",
        help="window start (inclusive): ISO-8601 (UTC if no offset) or epoch seconds",
    )
    add_flag(
        p,
        "--to",
        dest="to_time",
        required=True,
        metavar="T2",
        help="window end (exclusive): ISO-8601 or epoch seconds",
    )
    add_flag(
        p,
        "--dry-run",
        type=Path,
        metavar="FILE",
        help="write one JSON line per POST that would be sent; send nothing",
    )
    add_flag(
        p,
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="progress file (default bouncewire-replay-<from>-<to>[.dry-run].checkpoint.json)",
    )
    add_flag(p, "--resume", action="store_true", help="continue the run of --checkpoint")
    add_flag(
        p,
        "--slack",
        type=float,
        default=DEFAULT_SLACK_MS / 1000,
        help="seconds scanned beyond the window for records published out of order",
    )
    _add_run_flags(p)
    p.set_defaults(handler=cmd_replay)


def add_dlq_parser(sub: Subparsers[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="inspect or redrive the dead-letter topic")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    inspect = commands.add_parser("inspect", help="count dead letters by reason and age")
    add_kafka_flags(inspect)
    add_flag(
        inspect,
        "--group-id",
        default="bouncewire-callbacks",
        help="the consumer group whose redrive progress counts as done",
    )
    add_flag(inspect, "--json", action="store_true", help="print one JSON document")
    inspect.set_defaults(handler=cmd_dlq_inspect)

    redrive = commands.add_parser("redrive", help="re-process dead letters through the pipeline")
    add_kafka_flags(redrive)
    add_pipeline_flags(redrive)
    add_flag(
        redrive,
        "--group-id",
        default="bouncewire-callbacks",
        help="redrive progress is committed to <group-id>-redrive",
    )
    add_flag(redrive, "--reason", help="only letters with this reason (e.g. http_400)")
    add_flag(
        redrive,
        "--since",
        metavar="T",
        help="only letters written at or after T (ISO-8601 or epoch seconds)",
    )
    _add_run_flags(redrive)
    redrive.set_defaults(handler=cmd_dlq_redrive)


def add_replay_commands(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """`replay` and `dlq` subcommands; each sets `handler(args) -> int`."""
    add_replay_parser(sub)
    add_dlq_parser(sub)
