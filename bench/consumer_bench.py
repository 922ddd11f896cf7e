"""Consumer scenarios on one pre-produced topic: kcat, bare loops, `bouncewire consume` x1 / x2,
and the consumer's memory through a callback outage with the whole topic as backlog."""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import fast_receiver
from bench.common import (
    BenchEnv,
    CpuWatch,
    Sink,
    bouncewire,
    children_cpu_seconds,
    on_cpu,
    python_module,
    run_json,
    tree_cpu_seconds,
)
from reliability.harness import committed_total
from reliability.support import tree_rss_kb, wait_until


def kcat(env: BenchEnv, topic: str) -> dict[str, Any]:
    """kcat reading the whole topic to /dev/null, wall clock (connect and metadata included)."""
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    argv = ["kcat", "-C", "-b", env.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q"]
    subprocess.run(
        argv,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=env.log_file("kcat.log"),
    )
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": children_cpu_seconds() - cpu_before,
    }


def bare(
    env: BenchEnv, topic: str, records: int, decode: bool, cpu: int | None = None
) -> dict[str, Any]:
    argv = python_module(
        "bench.bare_consume",
        "--bootstrap",
        env.bootstrap,
        "--topic",
        topic,
        "--expect",
        str(records),
        *(["--decode"] if decode else []),
    )
    log = env.log_file(f"bare_consume_{'decode' if decode else 'raw'}.log")
    result = run_json(on_cpu(argv, cpu), log)
    result["rate"] = result["records"] / result["seconds"]
    result["steady_rate"] = _steady_rate(result["arrivals"], result["records"])
    return result


def _steady_rate(arrivals: list[tuple[int, int]], records: int) -> float:
    """Records/s between the 10th and 90th percentile of the loops' records, as the sink takes
    bouncewire's callbacks (NaN at toy sizes, where one consume() batch holds both)."""
    window = fast_receiver.steady(arrivals, records)
    return window["rate"] if window else math.nan


def bare_pair(env: BenchEnv, topic: str, cpus: tuple[int, ...]) -> dict[str, Any]:
    """Two bare decode loops at once, one partition each (process i on CPU cpus[i] if given):
    the bare loop's own two-processes figure, the machine's ceiling for 2 / 1."""

    def loop(partition: int) -> dict[str, Any]:
        argv = python_module(
            "bench.bare_consume", "--bootstrap", env.bootstrap, "--topic", topic,
            "--partition", str(partition), "--decode",
        )  # fmt: skip
        cpu = cpus[partition] if cpus else None
        return run_json(on_cpu(argv, cpu), env.log_file(f"bare_consume_pair_{partition}.log"))

    with ThreadPoolExecutor(2) as pool:  # at once; run_json's own cpu_seconds then overlap
        runs = list(pool.map(loop, range(2)))
    records = sum(r["records"] for r in runs)
    seconds = max(r["last_at"] for r in runs) - min(r["first_at"] for r in runs)
    cpu_seconds = sum(r["window_cpu_seconds"] for r in runs)
    return {
        "processes": 2,
        "cpus": list(cpus),
        "records": records,
        "seconds": seconds,
        "rate": records / seconds,
        # Both loops' records together (a loop that finishes first leaves the other alone).
        "steady_rate": _steady_rate(sorted(a for r in runs for a in r["arrivals"]), records),
        "window_cpu_seconds": cpu_seconds,
        "cpu_seconds": cpu_seconds,
    }


@dataclass
class ConsumerRun:
    """`bouncewire consume` processes sharing one fresh group, posting to the sink; with
    `cpus`, process i is held to CPU cpus[i] (and `--delivery auto` then picks threads)."""

    env: BenchEnv
    sink: Sink
    topic: str
    processes: int = 1
    extra: tuple[str, ...] = ()
    cpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.group = f"bench-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def argv(self) -> list[str]:
        return bouncewire(
            "consume",
            "--bootstrap-servers",
            self.env.bootstrap,
            "--send-results-topic",
            self.topic,
            "--unsubscribes-topic",
            self.env.topic("unsubscribes"),
            "--dlq-topic",
            self.env.topic("dlq"),
            "--group-id",
            self.group,
            "--log-level",
            os.environ.get("BENCH_LOG_LEVEL", "info"),
            "--bounce-callback-url",
            f"{self.sink.base}/bounce",
            "--unsubscribe-callback-url",
            f"{self.sink.base}/unsubscribe",
            *self.extra,
        )

    def start(self) -> float:
        started = time.time()
        for i in range(self.processes):
            log = self.env.log_file(f"consume_{self.group}_{i}.log")
            cpu = self.cpus[i] if self.cpus else None
            self.procs.append(
                subprocess.Popen(
                    on_cpu(self.argv(), cpu),
                    stderr=log,
                    stdout=subprocess.DEVNULL,
                )
            )
        return started

    def committed(self) -> int:
        return committed_total(self.env.bootstrap, self.group, self.topic, self.env.partitions)

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(proc.pid) for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def consumers(run: ConsumerRun) -> Iterator[ConsumerRun]:
    try:
        yield run
    finally:
        run.stop()


def throughput(
    env: BenchEnv,
    sink: Sink,
    topic: str,
    records: int,
    callbacks: int,
    processes: int,
    cpus: tuple[int, ...] = (),
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Records/s from the first callback received to the last; start-up and the time to have
    every offset committed are reported beside it. `extra`: more `bouncewire consume` flags."""
    sink.reset()
    watch = CpuWatch({"broker": env.broker_pid, "sink": sink.proc.pid})
    with consumers(ConsumerRun(env, sink, topic, processes, extra, cpus)) as run:
        started = run.start()
        first = sink.wait_for_events(1, timeout=600)
        cpu_at_first = run.cpu_seconds()  # start-up and group join behind us
        stats = sink.wait_for_events(callbacks, timeout=600)
        all_received = time.time()
        others = watch.report()
        wait_until(lambda: run.committed() >= records, timeout=60, interval=0.2)
        committed_at = time.time()
        cpu = run.cpu_seconds()
    # The records behind the callbacks that arrived after the CPU sample, pro rata.
    window_records = records * (1 - first["events"] / max(stats["events"], 1))
    seconds = (stats["last_ns"] - stats["first_ns"]) / 1e9
    return {
        "processes": processes,
        "cpus": list(cpus),
        "records": records,
        "callbacks": stats["events"],
        "posts": stats["posts"],
        "seconds": seconds,
        "rate": records / seconds,
        # Records/s between the 10th and 90th percentile of callbacks: every process holds its
        # partitions by then (group join and rebalance fall in the first part).
        "steady_rate": fast_receiver.steady_records_rate(stats, records),
        "startup_seconds": stats["first_ns"] / 1e9 - started,
        # Start-up and the idle wait for the commit included: a slight overestimate.
        "cpu_seconds": cpu,
        # From the first callback on: what the records cost, start-up left out.
        "window_cpu_seconds": (cpu - cpu_at_first) * records / max(window_records, 1),
        # Over the whole run (start-up included): how busy the machine was, and who used it.
        "run_seconds": all_received - started,
        **others,
        "commit_lag_seconds": committed_at - all_received,
        "complete": stats["events"] >= callbacks,
        # POSTs the sink had in progress at once (peak; mean from first to last answer), and
        # refused with 429 (the throttling sink): the adaptive concurrency at work.
        "peak_in_flight": stats.get("peak_in_progress", 0),
        "mean_in_flight": stats.get("mean_in_progress", math.nan),
        "steady_in_flight": stats.get("steady_in_progress", math.nan),
        "steady_in_flight_unpaused": stats.get("steady_in_progress_unpaused", math.nan),
        "throttled_posts": stats.get("throttled_posts", 0),
    }


def outage_memory(
    env: BenchEnv, sink: Sink, topic: str, callbacks: int, outage_s: float
) -> dict[str, Any]:
    """VmRSS every 0.5 s while every POST gets 503 with the topic as backlog, then recovery."""
    sink.reset()
    sink.set_status(503)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    with consumers(ConsumerRun(env, sink, topic, extra=("--backoff-max", "2"))) as run:
        started = run.start()
        pid = run.procs[0].pid

        def sample() -> None:
            while not stop.is_set():
                kb = tree_rss_kb(pid)
                if kb is not None:
                    samples.append((time.time() - started, kb))
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The outage counts from the first refused POST: the group join (3 s on a broker with
        # Kafka's default initial rebalance delay) is not part of it.
        wait_until(lambda: sink.stats()["refused_posts"] > 0, timeout=60, interval=0.1)
        outage_started = time.time()
        time.sleep(outage_s)
        refused = sink.stats()["refused_posts"]
        sink.set_status(200)
        recovered_at = time.time()
        stats = sink.wait_for_events(callbacks, timeout=600)
        stop.set()
        sampler.join()
    shift = outage_started - started  # sample times from the outage's start (join: negative)
    samples = [(t - shift, kb) for t, kb in samples]
    return summarize_outage(samples, outage_s, refused, stats, recovered_at, callbacks)


def summarize_outage(
    samples: list[tuple[float, int]],
    outage_s: float,
    refused: int,
    stats: dict[str, Any],
    recovered_at: float,
    callbacks: int,
) -> dict[str, Any]:
    during = [kb for t, kb in samples if t <= outage_s]
    first_half = [kb for t, kb in samples if t <= outage_s / 2] or [0]
    second_half = [kb for t, kb in samples if outage_s / 2 < t <= outage_s] or [0]
    growth = max(second_half) / max(max(first_half), 1)
    return {
        "outage_seconds": outage_s,
        "refused_posts": refused,
        "peak_rss_mb_outage": max(during, default=0) / 1024,
        "peak_rss_mb_first_half": max(first_half) / 1024,
        "peak_rss_mb_second_half": max(second_half) / 1024,
        "peak_rss_mb_overall": max((kb for _, kb in samples), default=0) / 1024,
        "second_half_vs_first_half": growth,
        # Flat: the second half of the outage peaks within 5 % of the first half's peak.
        "flat": growth <= 1.05,
        "recovery_seconds": stats["last_ns"] / 1e9 - recovered_at,
        "recovered_events": stats["events"],
        "complete": stats["events"] >= callbacks,
        "samples": [(round(t, 2), kb) for t, kb in samples],
    }
