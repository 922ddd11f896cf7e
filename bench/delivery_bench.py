"""Callbacks that cross a real round trip (issue 20): the same consumer, the same topic, a sink
answering after 0, 50, 100 and 300 ms (concurrently, like a real API), a sink that takes at
most K POSTs at once and answers 429 + Retry-After above that, and the peer: the same job as a
Quix Streams application (`bench/quix_peer.py`) on the same topic and sink.

    python -m bench.delivery_bench --records 100000     # these rows alone, on an own broker

In `make bench` these rows run after the consumer scenarios, on their own (smaller) topic.
bouncewire rows: one unpinned process (`--delivery auto`: the child), median steady rate of
interleaved trials. Peer rows: process start to the last callback, once per delay, compared
with bouncewire's process start to last callback of the same delay.
"""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import consumer_bench, fast_receiver, producer_bench, report
from bench.common import REPO, BenchEnv, Sink, running_sink, warm_up
from bench.data import callbacks_expected, write_send_results

DELAYS_MS = (0, 50, 100, 300)
PEER_DELAYS_MS = (0, 100, 300)
# bouncewire beside the peer once more with the KIP-848 group protocol (Kafka >= 4.0, as the
# bench broker): no group.initial.rebalance.delay.ms (3 s here, as Kafka's default) at start.
KIP848_FLAGS = ("--group-protocol", "consumer")
THROTTLE_K = 8
# 8 POSTs of 1,000 events per 300 ms is ~27k events/s, below what one process delivers at once
# (~60k): the limit, not the consumer's CPU, is what holds it back, as it would with CleverTap.
THROTTLE_DELAY_MS = 300
QUIX_VENV = REPO / ".cache" / "quix-venv"
# quixstreams 3.28 requires confluent-kafka < 2.13; constraints.txt pins 2.16.1, so the peer
# gets a virtualenv of its own (bouncewire installed into it too, for the codec and classify).
QUIX_REQUIREMENT = "quixstreams==3.28.1"


def run_rows(
    env: BenchEnv,
    sink: Sink,
    topic: str,
    records: int,
    callbacks: int,
    trials: int,
    peer: bool = True,
    delays: tuple[int, ...] = DELAYS_MS,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every row of this module; the sink is left answering at once, without a limit.
    `extra`: more `bouncewire consume` flags (to compare settings)."""
    try:
        result: dict[str, Any] = {"records": records, "callbacks": callbacks, "extra": extra}
        result["delays"] = by_delay(env, sink, topic, records, callbacks, trials, delays, extra)
        result["throttle"] = throttled(env, sink, topic, records, callbacks, extra)
        if peer:
            result["peer"] = quix_rows(env, sink, topic, records, callbacks, delays)
            result["kip848"] = kip848_rows(env, sink, topic, records, callbacks, delays, extra)
        return result
    finally:
        sink.set_delay(0)
        sink.set_max_concurrent(0)


def by_delay(
    env: BenchEnv,
    sink: Sink,
    topic: str,
    records: int,
    callbacks: int,
    trials: int,
    delays: tuple[int, ...],
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """bouncewire at each sink delay, the delays taken in turns (a slow spell hits them alike)."""
    runs: dict[int, list[dict[str, Any]]] = {}
    for trial in range(1, trials + 1):
        for ms in delays:
            sink.set_delay(ms)
            print(f"bench: sink delay {ms} ms #{trial} ...", flush=True)
            runs.setdefault(ms, []).append(
                consumer_bench.throughput(env, sink, topic, records, callbacks, 1, extra=extra)
            )
    sink.set_delay(0)
    return {str(ms): report.median_run(trials_) for ms, trials_ in runs.items()}


def throttled(
    env: BenchEnv, sink: Sink, topic: str, records: int, callbacks: int, extra: tuple[str, ...]
) -> dict[str, Any]:
    """A sink answering after 300 ms that takes at most K POSTs at once (429 + Retry-After: 1
    above): where the adaptive limit settles, and what share of POSTs was refused."""
    sink.set_delay(THROTTLE_DELAY_MS)
    sink.set_max_concurrent(THROTTLE_K)
    print(f"bench: throttling sink (K={THROTTLE_K}) ...", flush=True)
    try:
        run = consumer_bench.throughput(env, sink, topic, records, callbacks, 1, extra=extra)
    finally:
        sink.set_max_concurrent(0)
        sink.set_delay(0)
    attempts = run["posts"] + run["throttled_posts"]
    return {
        **run,
        "k": THROTTLE_K,
        "delay_ms": THROTTLE_DELAY_MS,
        "share_429": run["throttled_posts"] / attempts if attempts else math.nan,
    }


# --- the peer ---------------------------------------------------------------------------------


def quix_python() -> Path | None:
    """The peer's interpreter, its virtualenv made on first use (~1 min); None if that fails."""
    python = QUIX_VENV / "bin" / "python"
    if (QUIX_VENV / ".ready").exists():
        return python
    print("bench: making the Quix Streams virtualenv (.cache/quix-venv) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, QUIX_REQUIREMENT], check=True)
        subprocess.run([*pip, "-e", str(REPO)], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"bench: no Quix Streams peer ({exc})", flush=True)
        return None
    (QUIX_VENV / ".ready").touch()
    return python


def quix_rows(
    env: BenchEnv,
    sink: Sink,
    topic: str,
    records: int,
    callbacks: int,
    delays: tuple[int, ...],
) -> dict[str, Any]:
    python = quix_python()
    if python is None:
        return {}
    return _at_peer_delays(
        sink, delays, "Quix Streams peer",
        lambda: quix_run(env, sink, python, topic, records, callbacks),
    )  # fmt: skip


def kip848_rows(
    env: BenchEnv,
    sink: Sink,
    topic: str,
    records: int,
    callbacks: int,
    delays: tuple[int, ...],
    extra: tuple[str, ...],
) -> dict[str, Any]:
    """bouncewire with `--group-protocol consumer` at the peer's delays, one run each."""
    flags = (*extra, *KIP848_FLAGS)
    return _at_peer_delays(
        sink, delays, "bouncewire --group-protocol consumer",
        lambda: consumer_bench.throughput(env, sink, topic, records, callbacks, 1, extra=flags),
    )  # fmt: skip


def _at_peer_delays(
    sink: Sink, delays: tuple[int, ...], label: str, run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`run()` once at each of the peer's delays that `delays` has, keyed by the delay."""
    rows = {}
    for ms in (d for d in PEER_DELAYS_MS if d in delays):
        sink.set_delay(ms)
        print(f"bench: {label}, sink delay {ms} ms ...", flush=True)
        rows[str(ms)] = run()
    sink.set_delay(0)
    return rows


def quix_run(
    env: BenchEnv, sink: Sink, python: Path, topic: str, records: int, callbacks: int
) -> dict[str, Any]:
    """Process start to the last callback (the sink's clock), then SIGTERM."""
    sink.reset()
    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    argv = [str(python), "-m", "bench.quix_peer", "--bootstrap", env.bootstrap, "--topic",
            topic, "--group", group, "--url", f"{sink.base}/bounce",
            "--state-dir", str(env.out / "tmp" / "quix-state")]  # fmt: skip
    started = time.time()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=env.log_file(f"quix_{group}.log"))  # fmt: skip
    try:
        stats = sink.wait_for_events(callbacks, timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    start_to_last = stats["last_ns"] / 1e9 - started
    return {
        "records": records,
        "callbacks": stats["events"],
        "posts": stats["posts"],
        "start_to_last_seconds": start_to_last,
        "rate": records / start_to_last,
        "steady_rate": fast_receiver.steady_records_rate(stats, records),
        "peak_in_flight": stats.get("peak_in_progress", 0),
        "complete": stats["events"] >= callbacks,
    }


# --- figures ----------------------------------------------------------------------------------


def start_to_last_rate(run: dict[str, Any]) -> float:
    """Records over process start to the last callback (the peer's measure)."""
    return float(run["records"]) / (float(run["startup_seconds"]) + float(run["seconds"]))


def ratios(delivery: dict[str, Any]) -> dict[str, float]:
    """Rate at each delay / rate at 0 ms (steady, and first to last); bouncewire / the peer."""
    delays, out = delivery.get("delays", {}), {}
    base = delays.get("0")
    for ms, run in delays.items():
        if base is None or ms == "0":
            continue
        out[f"delay_{ms}ms_vs_0ms"] = report.ratio(_steady(run), _steady(base))
        out[f"delay_{ms}ms_vs_0ms_first_to_last"] = report.ratio(run["rate"], base["rate"])
    for ms, peer in (delivery.get("peer") or {}).items():
        if ms in delays:
            out[f"bouncewire_vs_quix_{ms}ms"] = report.ratio(
                start_to_last_rate(delays[ms]), peer["rate"]
            )
            out[f"bouncewire_vs_quix_{ms}ms_steady"] = report.ratio(
                _steady(delays[ms]), _steady(peer)
            )
        if ms in (kip848 := delivery.get("kip848") or {}):
            out[f"bouncewire_kip848_vs_quix_{ms}ms"] = report.ratio(
                start_to_last_rate(kip848[ms]), peer["rate"]
            )
    return out


def _steady(run: dict[str, Any]) -> float:
    steady = float(run.get("steady_rate", math.nan))
    return float(run["rate"]) if math.isnan(steady) else steady


def markdown(delivery: dict[str, Any]) -> list[str]:
    """The report's section for these rows."""
    if not delivery:
        return []
    r = ratios(delivery)
    lines = [
        "",
        "## Callbacks across a round trip (sink answering after N ms, concurrently)",
        "",
        f"{delivery['records']:,} send results ({delivery['callbacks']:,} callbacks), one "
        "`bouncewire consume` process (unpinned), default `--max-in-flight`; steady rate "
        "(10th-90th percentile of callbacks), first to last in brackets; POSTs in flight at "
        "the sink (mean over the steady window, peak).",
        "",
        "| sink | records/s | vs 0 ms | in flight (mean / peak) | start to last (s) |",
        "|---|---|---|---|---|",
    ]
    for ms, run in delivery["delays"].items():
        vs = r.get(f"delay_{ms}ms_vs_0ms")
        lines.append(
            f"| {ms} ms | {_steady(run):,.0f} ({run['rate']:,.0f}) | "
            f"{'' if vs is None else f'{vs:.2f}'} | "
            f"{run['steady_in_flight']:.1f} / {run['peak_in_flight']} | "
            f"{run['startup_seconds'] + run['seconds']:.1f} |"
        )
    t = delivery.get("throttle")
    if t:
        lines += [
            "",
            f"**Throttling sink** (answers after {t['delay_ms']} ms, at most {t['k']} at once, "
            f"429 + `Retry-After: 1` above): {_steady(t):,.0f} records/s steady, in flight "
            f"{t['steady_in_flight_unpaused']:.1f} mean over the steady window outside the "
            f"Retry-After pauses ({t['steady_in_flight']:.1f} with them) / "
            f"{t['peak_in_flight']} peak, "
            f"{t['throttled_posts']} of {t['posts'] + t['throttled_posts']} POSTs refused "
            f"({t['share_429']:.1%}), every callback delivered: "
            f"{'yes' if t['complete'] else '**no**'}.",
        ]
    peer = delivery.get("peer") or {}
    if peer:
        lines += [
            "",
            "**Peer: Quix Streams** (`bench/quix_peer.py`, same topic and sink; process start "
            "to last callback, both; the broker keeps Kafka's default 3 s "
            "group.initial.rebalance.delay.ms, which the classic group protocol waits at "
            "start and KIP-848's `--group-protocol consumer` does not):",
            "",
            "| sink | Quix Streams records/s | bouncewire records/s | bouncewire / Quix | "
            "with `--group-protocol consumer` | steady: Quix, bouncewire, ratio |",
            "|---|---|---|---|---|---|",
        ]
        kip848 = delivery.get("kip848") or {}
        for ms, run in peer.items():
            ours = delivery["delays"][ms]
            with_kip848 = ""
            if ms in kip848:
                kip848_ratio = r[f"bouncewire_kip848_vs_quix_{ms}ms"]
                with_kip848 = f"{start_to_last_rate(kip848[ms]):,.0f} ({kip848_ratio:.1f}x)"
            lines.append(
                f"| {ms} ms | {run['rate']:,.0f} | {start_to_last_rate(ours):,.0f} | "
                f"{r[f'bouncewire_vs_quix_{ms}ms']:.1f}x | {with_kip848} | {_steady(run):,.0f}, "
                f"{_steady(ours):,.0f}, {r[f'bouncewire_vs_quix_{ms}ms_steady']:.1f}x |"
            )
    return lines


def _target(name: str, value: float, goal: str, met: bool) -> dict[str, Any]:
    return {"target": name, "value": value, "goal": goal, "met": met}


def targets(delivery: dict[str, Any]) -> list[dict[str, Any]]:
    if not delivery:
        return []
    r, rows = ratios(delivery), []
    for ms, floor in (("100", 0.7), ("300", 0.5)):
        value = r.get(f"delay_{ms}ms_vs_0ms")
        if value is not None:
            name = f"sink answering after {ms} ms / at once, steady"
            rows.append(_target(name, value, f">= {floor}x", value >= floor))
    t = delivery.get("throttle")
    if t:
        k, mean = t["k"], t["steady_in_flight_unpaused"]
        near = 0.7 * k <= mean <= k and t["complete"]
        rows.append(_target(f"throttling sink (K={k}): mean in flight while not paused", mean,
                            f"near K: {0.7 * k:g}..{k}", near))  # fmt: skip
        share = t["share_429"]
        rows.append(_target("throttling sink: share of POSTs refused (429)", share, "<= 0.05",
                            share <= 0.05))  # fmt: skip
    for ms in delivery.get("peer") or {}:
        for key, how in (("bouncewire", ""), ("bouncewire_kip848", " (--group-protocol consumer)")):
            value = r.get(f"{key}_vs_quix_{ms}ms")
            if value is not None:
                name = f"bouncewire{how} / Quix Streams at {ms} ms, start to last"
                rows.append(_target(name, value, ">= 2x", value >= 2))
    return rows


# --- these rows alone -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from bench.run import broker  # the bench's own broker (KAFKA_PORT 29092 by default)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--port", type=int, default=29092)
    p.add_argument("--bootstrap", help="use this running broker instead of starting one")
    p.add_argument("--keep-broker", action="store_true")
    p.add_argument("--no-peer", action="store_true", help="skip the Quix Streams rows")
    p.add_argument("--delays", default=",".join(map(str, DELAYS_MS)))
    p.add_argument("--out", type=Path, default=REPO / "bench-results" / "delivery")
    p.add_argument("--prefix", default="bench-delivery")
    p.add_argument("--consume-args", default="", help="more `bouncewire consume` flags")
    args = p.parse_args(argv)
    os.chdir(REPO)
    (args.out / "tmp").mkdir(parents=True, exist_ok=True)
    with broker(args) as bootstrap:
        env = BenchEnv(bootstrap, args.out, prefix=args.prefix)
        topic = env.topic("delivery")
        env.create(topic, env.topic("unsubscribes"), env.topic("dlq"), env.topic("warm-up"))
        warm_up(env.bootstrap, env.topic("warm-up"))
        callbacks = produce_topic(env, topic, args.records)
        delays = tuple(int(d) for d in args.delays.split(","))
        with running_sink(env) as sink:
            delivery = run_rows(env, sink, topic, args.records, callbacks, args.trials,
                                peer=not args.no_peer, delays=delays,
                                extra=tuple(args.consume_args.split()))  # fmt: skip
    delivery["ratios"] = ratios(delivery)
    (args.out / "delivery.json").write_bytes(orjson.dumps(delivery, option=orjson.OPT_INDENT_2))
    shutil.rmtree(args.out / "tmp", ignore_errors=True)
    print("\n".join(markdown(delivery)))
    for row in targets(delivery):
        met = "met" if row["met"] else "NOT met"
        print(f"{row['target']}: {row['value']:.3f} ({row['goal']}) {met}")
    return 0


def produce_topic(env: BenchEnv, topic: str, records: int) -> int:
    """`records` send results (the bench's mix, its own seed) on `topic`; the callbacks due."""
    lines = env.out / "tmp" / "delivery.jsonl"
    mix = write_send_results(lines, records, seed=5)
    producer_bench.bare_loop(env, topic, lines)
    return callbacks_expected(mix)


if __name__ == "__main__":
    raise SystemExit(main())
