"""What every scenario shares: the bench's own broker, topics, the sink process, helpers."""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from bouncewire.kafka_client import KafkaProducer, KafkaSettings, create_topics
from reliability.support import process_tree, wait_until

REPO = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"
KAFKA_LIBS = REPO / ".cache" / "kafka" / "libs"
PYTHON = sys.executable


@dataclass(frozen=True)
class BenchEnv:
    """Where results go and which broker the scenarios use."""

    bootstrap: str
    out: Path
    partitions: int = 2
    prefix: str = "bench"
    broker_pid: int | None = None  # our own broker's JVM, for its CPU use

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    @property
    def logs(self) -> Path:
        path = self.out / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_file(self, name: str) -> IO[bytes]:
        return open(self.logs / name, "wb")  # noqa: SIM115 -- the child process owns it

    def create(self, *topics: str) -> None:
        create_topics(
            KafkaSettings(bootstrap_servers=self.bootstrap),
            list(topics),
            partitions=self.partitions,
            replication_factor=1,
        )
        # create_topics returns before every partition has a leader: producing earlier fails.
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        if not wait_until(lambda: self._have_leaders(admin, topics), timeout=30, interval=0.1):
            raise RuntimeError(f"topics without leaders after 30 s: {topics}")

    def _have_leaders(self, admin: AdminClient, topics: tuple[str, ...]) -> bool:
        listed = admin.list_topics(timeout=5).topics
        return all(
            name in listed
            and listed[name].error is None
            and len(listed[name].partitions) == self.partitions
            and all(p.leader >= 0 for p in listed[name].partitions.values())
            for name in topics
        )


def kafka_script(port: int, action: str) -> str:
    """Run deploy/kafka/kafka.sh for our own port; returns its last stdout line.

    The bench broker keeps Kafka's default group.initial.rebalance.delay.ms (3 s; the test
    brokers use 0): consumer processes started together then share the group's first
    assignment, as a deployment's replicas do, instead of the first one taking every
    partition and handing half over in a cooperative rebalance mid-run."""
    done = subprocess.run(
        ["/bin/bash", str(KAFKA_SCRIPT), action],
        env={
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "3000",
        },
        check=True,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def broker_pid(port: int) -> int | None:
    """The JVM of the broker kafka.sh started on `port`, if any."""
    try:
        return int((REPO / ".kafka" / str(port) / "kafka.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def python_module(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def bouncewire(*args: str) -> list[str]:
    return python_module("bouncewire.cli", *args)


def on_cpu(argv: list[str], cpu: int | None) -> list[str]:
    """argv held to one CPU (`taskset -c`), threads and children included; as is for None."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def cpus_to_pin(processes: int = 2) -> tuple[int, ...] | None:
    """The last `processes` CPUs of this process's affinity mask: one per consumer process in
    the one-CPU-per-process deployment. None when taskset or the CPUs are missing."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < processes:
        return None
    return tuple(cpus[-processes:])


def produce_cli(env: BenchEnv, topic: str, lines: Path) -> list[str]:
    """argv of `bouncewire produce send-results LINES` into `topic` (timed and profiled)."""
    return bouncewire(
        "produce",
        "send-results",
        str(lines),
        "--bootstrap-servers",
        env.bootstrap,
        "--send-results-topic",
        topic,
        "--log-level",
        "warning",
    )


def run_json(argv: Sequence[str], log: IO[bytes]) -> dict[str, Any]:
    """Run a helper process that prints one JSON object as its last stdout line; adds the
    process's CPU seconds as `cpu_seconds`."""
    cpu_before = children_cpu_seconds()
    done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=log)
    result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    result["cpu_seconds"] = children_cpu_seconds() - cpu_before
    return result


class Sink:
    """Client side of bench.fast_receiver, running as its own process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self.base + path, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            result: dict[str, Any] = orjson.loads(response.read())
            return result

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def set_status(self, status: int) -> None:
        self._call("POST", f"/status/{status}")

    def set_delay(self, ms: int) -> None:
        """Answer each callback `ms` after it arrived, concurrently (a distant API)."""
        self._call("POST", f"/delay/{ms}")

    def set_max_concurrent(self, k: int) -> None:
        """429 + Retry-After to callbacks arriving while `k` are in progress (0: no limit)."""
        self._call("POST", f"/max-concurrent/{k}")

    def wait_for_events(self, expected: int, timeout: float) -> dict[str, Any]:
        """Stats once `expected` events arrived (or the timeout passed: check `events`)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["events"] >= expected or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


@contextmanager
def running_sink(env: BenchEnv) -> Iterator[Sink]:
    proc = subprocess.Popen(
        python_module("bench.fast_receiver"),
        stdout=subprocess.PIPE,
        stderr=env.log_file("fast_receiver.log"),
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Sink(proc, port)
    finally:
        proc.terminate()
        proc.wait(10)


def warm_up(bootstrap: str, topic: str) -> None:
    """A fresh broker loads its transaction and group coordinators on first use (seconds):
    pay that here, not inside the first measured producer or consumer."""
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap))
    producer.produce(topic, b"warm-up")
    producer.flush(60)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-warm-up",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while not consumer.consume(1, timeout=1.0) and time.monotonic() < deadline:
            pass
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def children_cpu_seconds() -> float:
    """User + system CPU of every waited-for child so far (librdkafka threads included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, all its threads (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # utime and stime are fields 14 and 15 of stat(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its descendants (bouncewire's delivery child)."""
    return sum(process_cpu_seconds(p) for p in process_tree(pid))


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


class CpuWatch:
    """CPU used meanwhile by the machine and by named processes (the broker, the sink, ...)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.before = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine_before = machine_cpu_seconds()

    def report(self) -> dict[str, float]:
        """CPU seconds per named process, plus `machine_busy_share` (0..1 of every core)."""
        used = {
            f"{name}_cpu_seconds": process_cpu_seconds(pid) - self.before[name]
            for name, pid in self.pids.items()
        }
        busy, total = machine_cpu_seconds()
        used["machine_busy_share"] = (busy - self.machine_before[0]) / max(
            total - self.machine_before[1], 1e-9
        )
        return used


def machine_description() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024**2, 1),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }
