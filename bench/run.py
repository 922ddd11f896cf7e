"""`make bench`: every scenario in one run on one broker, then the report.

    python -m bench.run                      # full run on an own broker (KAFKA_PORT 29092)
    python -m bench.run --records 200000     # smaller
    python -m bench.run --smoke --bootstrap HOST:PORT --prefix NAME   # toy size, no broker

Writes bench-results/: results.json, results.md, bench.png, profile-*.html, logs/.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import (
    consumer_bench,
    delivery_bench,
    gateway_bench,
    latency,
    mail_parse_bench,
    mail_serve_bench,
    mta_log_bench,
    producer_bench,
    profiling,
    report,
)
from bench.common import (
    REPO,
    BenchEnv,
    broker_pid,
    cpus_to_pin,
    kafka_script,
    machine_description,
    running_sink,
    warm_up,
)
from bench.data import callbacks_expected, write_send_results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="bouncewire benchmarks")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--profile-records", type=int, default=200_000)
    p.add_argument("--port", type=int, default=29092, help="the bench's own broker port")
    p.add_argument("--bootstrap", help="use this running broker instead of starting one")
    p.add_argument("--prefix", default="bench", help="topic name prefix")
    p.add_argument("--out", type=Path, default=REPO / "bench-results")
    p.add_argument("--rates", default="1000,10000", help="offered loads for latency, events/s")
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--outage-seconds", type=float, default=40.0)
    p.add_argument("--gateway-messages", type=int, default=3000, help="per smtp-gateway run")
    p.add_argument(
        "--trials",
        type=int,
        default=5,
        help="runs of each scenario the ratios compare (taken in turns; the median is kept)",
    )
    p.add_argument("--mail-messages", type=int, default=5000, help="bounces sent to mail serve")
    p.add_argument(
        "--delivery-records",
        type=int,
        default=100_000,
        help="records of the callback round-trip rows (sink delays, throttling sink, peer); "
        "0 skips them",
    )
    p.add_argument("--no-peer", action="store_true", help="skip the Quix Streams peer rows")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--no-perf-test", action="store_true", help="skip Kafka's ProducerPerformance")
    p.add_argument("--keep-broker", action="store_true", help="leave the bench broker running")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="toy sizes (seconds, not minutes); numbers mean nothing",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.records, args.profile_records, args.rates = 3000, 0, "500"
        args.mail_messages = 80
        args.latency_seconds, args.outage_seconds = 2.0, 3.0
        args.gateway_messages = 40
        args.no_profile = args.no_perf_test = args.no_peer = True
        args.trials = 1
        args.delivery_records = 2000
    return args


@contextmanager
def broker(args: argparse.Namespace) -> Iterator[str]:
    if args.bootstrap:
        yield args.bootstrap
        return
    kafka_script(args.port, "reset")  # a clean log: every run produces the same bytes
    try:
        yield kafka_script(args.port, "up")
    finally:
        if not args.keep_broker:
            kafka_script(args.port, "reset")


class Run:
    """Runs scenarios in order, timing each and noting the load average around it."""

    def __init__(self, args: argparse.Namespace, env: BenchEnv) -> None:
        self.args, self.env = args, env
        self.topic = {
            name: env.topic(name)
            for name in (
                "send-results",
                "unsubscribes",
                "dlq",
                "cli",
                "perf",
                "latency",
                "profile",
                "warm-up",
                "mta-log",
                "gateway",
                "delivery",
            )
        }
        self.results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_description(),
            "load_before": _load(),
            "config": {
                "records": args.records,
                "partitions": env.partitions,
                "linger_ms": report.LINGER_MS,
                "prefix": args.prefix,
            },
            "producer": {},
            "consumer": {},
            "mta_log": {},
            "scenario_seconds": {},
        }

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        print(f"bench: {name} ...", flush=True)
        started = time.perf_counter()
        value = action()
        seconds = time.perf_counter() - started
        self.results["scenario_seconds"][name] = round(seconds, 1)
        print(f"bench: {name} done in {seconds:.1f} s (load {_load()})", flush=True)
        return value

    def all(self) -> dict[str, Any]:
        env, topic, n = self.env, self.topic, self.args.records
        env.create(*topic.values())
        seconds = 0.2 if self.args.smoke else 10.0  # pure CPU, no broker: first, on a quiet box
        self.results["mail_parse"] = self.step("mail parse", lambda: mail_parse_bench.run(seconds))
        self.step("warm up the broker", lambda: warm_up(env.bootstrap, topic["warm-up"]))
        lines = env.out / "tmp" / "send-results.jsonl"
        mix = self.step("generate", lambda: write_send_results(lines, n))
        self.results["mix"] = mix
        callbacks = callbacks_expected(mix)
        self.producers(lines)
        self.results["mta_log"] = self.step(
            "mta-log (log lines, one CPU)",
            lambda: mta_log_bench.scenarios(env, topic["mta-log"], n),
        )
        self.results["mail_serve"] = {
            "serve": self.step(
                "mail serve", lambda: mail_serve_bench.run(env, self.args.mail_messages)
            )
        }
        self.results["gateway"] = self.step(
            "smtp-gateway",
            lambda: gateway_bench.gateway_bench(env, topic["gateway"], self.args.gateway_messages),
        )
        with running_sink(env) as sink:
            self.consumers(sink, callbacks)
            if self.args.delivery_records:
                self.results["delivery"] = self.step(
                    "callbacks across a round trip", lambda: self.delivery(sink)
                )
            self.results["latency"] = self.step(
                "latency",
                lambda: latency.latencies(
                    env,
                    sink,
                    topic["latency"],
                    [float(r) for r in self.args.rates.split(",")],
                    self.args.latency_seconds,
                ),
            )
            self.results["outage"] = self.step(
                "outage",
                lambda: consumer_bench.outage_memory(
                    env, sink, topic["send-results"], callbacks, self.args.outage_seconds
                ),
            )
            if not self.args.no_profile:
                self.profiles(sink)
        return self.results

    def producers(self, lines: Path) -> None:
        env, topic, out = self.env, self.topic, self.results["producer"]
        out["bare"] = self.step(
            "producer bare loop",
            lambda: producer_bench.bare_loop(env, topic["send-results"], lines),
        )
        out["cli"] = self.step(
            "producer CLI", lambda: producer_bench.cli(env, topic["cli"], lines, self.args.records)
        )
        if not self.args.no_perf_test:
            size = round(out["bare"]["record_bytes"])
            out["perf_test"] = self.step(
                "ProducerPerformance",
                lambda: producer_bench.producer_performance(
                    env, topic["perf"], self.args.records, size
                ),
            )

    def consumers(self, sink: Any, callbacks: int) -> None:
        env, source, n, out = (
            self.env,
            self.topic["send-results"],
            self.args.records,
            self.results["consumer"],
        )
        if shutil.which("kcat"):
            out["kcat"] = self.step("kcat", lambda: consumer_bench.kcat(env, source))
        out["bare_no_decode"] = self.step(
            "bare consume", lambda: consumer_bench.bare(env, source, n, decode=False)
        )
        # The ratios' scenarios run in turns, so that a slow spell of the machine (a shared VM
        # varies by 20 % from minute to minute) hits each of them alike.
        runs: dict[str, list[dict[str, Any]]] = {}
        pinned = cpus_to_pin()
        for trial in range(1, self.args.trials + 1):
            for key, name, action in self.consumer_scenarios(sink, callbacks, pinned):
                runs.setdefault(key, []).append(self.step(f"{name} #{trial}", action))
        for key, trials in runs.items():
            out[key] = report.median_run(trials)
        out["pinned_cpus"] = list(pinned or ())

    def consumer_scenarios(
        self, sink: Any, callbacks: int, pinned: tuple[int, ...] | None
    ) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        """(result key, name, action) of the bare decode loop (one and two processes) and one
        and two consumer processes: first each process held to a CPU of its own (the ratios
        without a suffix), then free (`_free`)."""
        env, source, n = self.env, self.topic["send-results"], self.args.records
        deployments = [("", pinned or ()), *([("_free", ())] if pinned else [])]
        for suffix, cpus in deployments:
            where = " on own CPUs" if cpus else ""
            bare_cpu = cpus[-1] if cpus else None
            yield (
                f"bare_decode{suffix}",
                f"bare consume+decode{where}",
                functools.partial(consumer_bench.bare, env, source, n, True, bare_cpu),
            )
            yield (
                f"bare_decode_x2{suffix}",
                f"bare consume+decode x2{where}",
                functools.partial(consumer_bench.bare_pair, env, source, cpus),
            )
            for key, processes, held_to in (
                ("one_process", 1, cpus[-1:]),
                ("two_processes", 2, cpus),
            ):
                yield (
                    key + suffix,
                    f"consumer x{processes}{where}",
                    functools.partial(
                        consumer_bench.throughput,
                        env,
                        sink,
                        source,
                        n,
                        callbacks,
                        processes,
                        held_to,
                    ),
                )

    def delivery(self, sink: Any) -> dict[str, Any]:
        """The sink-delay, throttling and peer rows (bench/delivery_bench.py) on a topic of
        their own, smaller than the main one: a 300 ms sink and the peer take their time."""
        records, topic = self.args.delivery_records, self.topic["delivery"]
        callbacks = delivery_bench.produce_topic(self.env, topic, records)
        smoke = self.args.smoke
        return delivery_bench.run_rows(
            self.env,
            sink,
            topic,
            records,
            callbacks,
            trials=min(self.args.trials, 3),
            peer=not self.args.no_peer,
            delays=(0, 100) if smoke else delivery_bench.DELAYS_MS,
        )

    def profiles(self, sink: Any) -> None:
        env, topic = self.env, self.topic["profile"]
        lines = self.env.out / "tmp" / "profile.jsonl"
        mix = write_send_results(lines, self.args.profile_records, seed=11)
        producer = self.step(
            "profile producer CLI", lambda: profiling.profile_producer(env, topic, lines)
        )
        consumer = self.step(
            "profile consumer",
            lambda: profiling.profile_consumer(env, sink, topic, callbacks_expected(mix)),
        )
        self.results["profile"] = {"consumer": consumer, "producer CLI": producer}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_outputs(results: dict[str, Any], out: Path) -> None:
    results["ratios"] = report.ratios(results)
    results["targets"] = report.targets(results, results["ratios"])
    results["load_after"] = _load()
    (out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "results.md").write_text(report.markdown(results))
    if importlib.util.find_spec("matplotlib") is not None:  # the `bench` extra
        report.plot(results, out / "bench.png")
    else:
        print("bench: matplotlib not installed, no bench.png", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(REPO)  # helper processes run as `python -m bench.…`
    (args.out / "tmp").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with broker(args) as bootstrap:
        pid = None if args.bootstrap else broker_pid(args.port)
        env = BenchEnv(bootstrap, args.out, prefix=args.prefix, broker_pid=pid)
        results = Run(args, env).all()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    write_outputs(results, args.out)
    shutil.rmtree(args.out / "tmp", ignore_errors=True)  # the input files are large
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
