"""`bouncewire mta-log postfix FILE`: log lines per second on one CPU, --dry-run and published.

The log is a busy gateway's, generated: per message the smtpd connect/client/disconnect lines,
a TLS note, cleanup's message-id, qmgr's from= and removed, and its delivery (88 % sent, 5 %
bounced, 7 % deferred once then sent) — ten lines per message, one or two of them deliveries.
The goal (issue 18): at least 100,000 lines/s in --dry-run, where a month's backfill is millions.

    python -m bench.mta_log_bench --lines 200000                 # dry-run only
    python -m bench.mta_log_bench --lines 200000 --bootstrap HOST:PORT --topic T
"""

# ruff: noqa: S603, S311 -- fixed argv lists of its own processes; random only shapes data

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import BenchEnv, bouncewire, children_cpu_seconds, cpus_to_pin, on_cpu

LINES_PER_MESSAGE = 10


def write_postfix_log(path: Path, lines: int, seed: int = 7) -> int:
    """About `lines` lines of a Postfix log; returns how many were written."""
    rng = random.Random(seed)
    written = 0
    with open(path, "w") as out:
        for number in range(max(1, lines // LINES_PER_MESSAGE)):
            block = _message(number, rng)
            out.write("".join(line + "\n" for line in block))
            written += len(block)
    return written


def _message(number: int, rng: random.Random) -> list[str]:
    queue_id = f"{0x4B00000000 + number:X}"
    second = f"{number // 400 % 60:02d}"
    prefix = f"Jun  5 15:{number // 24000 % 60:02d}:{second} mx1 postfix"
    client = f"shop{number % 7}[10.0.{number % 250}.{number % 199}]"
    rcpt = f"user{number}@example{number % 97}.com"
    relay = f"mx{number % 5}.example{number % 97}.com[192.0.2.{number % 250}]:25"
    lines = [
        f"{prefix}/smtpd[2101]: connect from {client}",
        f"{prefix}/smtpd[2101]: {queue_id}: client={client}",
        f"{prefix}/cleanup[2102]: {queue_id}: message-id=<c{number}.{rng.random():.8f}@shop>",
        f"{prefix}/qmgr[2103]: {queue_id}: from=<bounces+{number}@shop.example>, size="
        f"{rng.randint(2000, 90000)}, nrcpt=1 (queue active)",
        f"{prefix}/smtpd[2101]: disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
        "commands=5",
        f"{prefix}/smtp[2104]: Trusted TLS connection established to {relay}: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
    ]
    delivery = f"{prefix}/smtp[2104]: {queue_id}: to=<{rcpt}>, relay={relay}, delay=1.2, "
    roll = rng.random()
    if roll < 0.07:
        lines.append(
            delivery + "delays=0.1/0/0.5/0.6, dsn=4.7.1, status=deferred (host "
            f"{relay[:-3]} said: 451 4.7.1 Greylisted, try again later (in reply to "
            "RCPT TO command))"
        )
    if roll < 0.05:
        lines.append(
            delivery + "delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host "
            f"{relay[:-3]} said: 550 5.1.1 <{rcpt}>: Recipient address rejected: "
            "User unknown in virtual mailbox table (in reply to RCPT TO command))"
        )
    else:
        lines.append(
            delivery.replace("delay=1.2", "delay=301") + "delays=300/0/0.5/0.6, "
            "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4BwX2Q0kz)"
        )
    lines += [f"{prefix}/qmgr[2103]: {queue_id}: removed"]
    return lines[:LINES_PER_MESSAGE]


def _timed(argv: list[str], log: Any) -> tuple[float, float]:
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=log)
    return time.perf_counter() - started, children_cpu_seconds() - cpu_before


def measure(log_file: Path, lines: int, kafka: tuple[str, str] | None, log: Any) -> dict[str, Any]:
    """One `bouncewire mta-log` process on one CPU: --dry-run, or published to (bootstrap,
    topic). `rate` and `cpu_rate` leave out the start-up (imports, connecting), timed on an
    empty log."""
    argv = ["mta-log", "postfix", str(log_file), "--log-level", "warning"]
    if kafka is None:
        argv.append("--dry-run")
    else:
        argv += ["--bootstrap-servers", kafka[0], "--send-results-topic", kafka[1]]
    cpus = cpus_to_pin(1)
    cpu = cpus[0] if cpus else None
    empty = log_file.with_name("empty.log")
    empty.write_bytes(b"")
    on_empty = [str(empty) if a == str(log_file) else a for a in argv]
    startup, startup_cpu = _timed(on_cpu(bouncewire(*on_empty), cpu), log)
    seconds, cpu_seconds = _timed(on_cpu(bouncewire(*argv), cpu), log)
    return {
        "records": lines,
        "seconds": seconds,
        "startup_seconds": startup,
        "rate": lines / max(seconds - startup, 1e-9),
        "rate_with_startup": lines / seconds,
        # Lines per CPU second: what one core does, however busy the machine is otherwise.
        "cpu_rate": lines / max(cpu_seconds - startup_cpu, 1e-9),
        "cpu_seconds": cpu_seconds,
        "startup_cpu_seconds": startup_cpu,
        "cpus": list(cpus or ()),
    }


def scenarios(env: BenchEnv, topic: str, lines: int) -> dict[str, Any]:
    """The bench run's rows: dry-run and published, on the same generated log."""
    log_file = env.out / "tmp" / "maillog"
    written = write_postfix_log(log_file, lines)
    return {
        "dry_run": measure(log_file, written, None, env.log_file("mta_log_dry_run.log")),
        "published": measure(
            log_file, written, (env.bootstrap, topic), env.log_file("mta_log_published.log")
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=200_000)
    p.add_argument("--bootstrap", help="also publish to this broker")
    p.add_argument("--topic", default="bench-mta-log")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        log_file = Path(folder) / "maillog"
        written = write_postfix_log(log_file, args.lines)
        results = {"dry_run": measure(log_file, written, None, None)}
        if args.bootstrap:
            results["published"] = measure(log_file, written, (args.bootstrap, args.topic), None)
    print(orjson.dumps(results).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
