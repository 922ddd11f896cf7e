"""Producer scenarios: the CLI vs a bare parse+encode+produce loop vs Kafka's ProducerPerformance.

All three write to their own topic of the same partition count on the bench broker, with the
same producer settings (idempotent, acks=all, linger.ms=20, lz4). The bare loop's topic is the
one the consumer scenarios read afterwards.
"""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    KAFKA_LIBS,
    BenchEnv,
    children_cpu_seconds,
    produce_cli,
    python_module,
    run_json,
)

_PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
    r"([\d.]+) ms avg latency, ([\d.]+) ms max latency"
)


def bare_loop(env: BenchEnv, topic: str, lines: Path) -> dict[str, Any]:
    result = run_json(
        python_module(
            "bench.bare_produce",
            "--bootstrap",
            env.bootstrap,
            "--topic",
            topic,
            "--file",
            str(lines),
        ),
        env.log_file("bare_produce.log"),
    )
    result["rate"] = result["records"] / result["seconds"]
    result["record_bytes"] = result["bytes"] / max(result["records"], 1)
    return result


def _cli_seconds(env: BenchEnv, topic: str, lines: Path, log_name: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `bouncewire produce` process."""
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    subprocess.run(
        produce_cli(env, topic, lines),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=env.log_file(log_name),
    )
    return time.perf_counter() - started, children_cpu_seconds() - cpu_before


def cli(env: BenchEnv, topic: str, lines: Path, records: int) -> dict[str, Any]:
    """`bouncewire produce` as a process, wall clock; its fixed start-up cost is measured on an
    empty file and reported (not subtracted)."""
    empty = env.out / "tmp" / "empty.jsonl"
    empty.write_bytes(b"")
    startup, startup_cpu = _cli_seconds(env, topic, empty, "produce_cli_empty.log")
    seconds, cpu = _cli_seconds(env, topic, lines, "produce_cli.log")
    return {
        "records": records,
        "seconds": seconds,
        "startup_seconds": startup,
        "rate": records / seconds,
        "cpu_seconds": cpu,
        "startup_cpu_seconds": startup_cpu,
    }


def producer_performance(
    env: BenchEnv, topic: str, records: int, record_size: int
) -> dict[str, Any]:
    """Kafka's own kafka-producer-perf-test (random payloads of our average record size)."""
    argv = [
        "java",
        "-Xmx512m",
        "-cp",
        f"{KAFKA_LIBS}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={env.bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=20",
        "compression.type=lz4",
    ]
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu = children_cpu_seconds() - cpu_before
    (env.logs / "producer_performance.log").write_text(done.stdout + done.stderr)
    matches = list(_PERF_LINE.finditer(done.stdout))
    if not matches:
        raise RuntimeError("ProducerPerformance printed no summary")
    match = matches[-1]  # the last line is the summary
    return {
        "records": int(match[1]),
        "rate": float(match[2]),
        "mb_per_s": float(match[3]),
        "avg_latency_ms": float(match[4]),
        "wall_seconds": seconds,
        "cpu_seconds": cpu,
        "record_size": record_size,
    }
