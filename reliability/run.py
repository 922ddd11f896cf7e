"""`python -m reliability.run [--short] [--only NAME ...]`: run the fault scenarios, print
the table, write reliability-report.json, exit 1 if anything was lost or a promise broken.

Broker: KAFKA_BOOTSTRAP_SERVERS when set, else a fresh deploy/kafka/kafka.sh broker on free
ports (wiped afterwards). Scenarios that kill brokers always start their own.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from reliability.harness import REPO_ROOT, Context, LocalBroker
from reliability.model import Scenario, format_table, write_report
from reliability.scenarios import (
    broker_restart,
    callback_outage,
    consumer_sigkill,
    dlq_unavailable,
    inflight_kill,
    leader_kill,
    poison,
    scale_out_in,
    sigterm_drain,
)

SCENARIOS: tuple[ModuleType, ...] = (
    consumer_sigkill, inflight_kill, broker_restart, callback_outage, scale_out_in, poison,
    dlq_unavailable, sigterm_drain, leader_kill,
)


@contextmanager
def shared_broker() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    with LocalBroker() as broker:
        yield broker.bootstrap


def run_one(module: ModuleType, ctx: Context) -> Scenario:
    """A scenario that crashes is a failed row, not a crashed suite."""
    started = time.monotonic()
    ctx.say(f"{module.NAME}: running")
    scenario_run: Callable[[Context], Scenario] = module.run
    try:
        result = scenario_run(ctx)
    except Exception as exc:
        traceback.print_exc()
        result = Scenario(module.NAME, problems=[f"crashed: {type(exc).__name__}: {exc}"])
        result.seconds = time.monotonic() - started
    ctx.say(f"{module.NAME}: {'ok' if result.passed else 'FAILED'} in {result.seconds:.0f}s")
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability.run", description=__doc__)
    parser.add_argument("--short", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--only", nargs="+", choices=[m.NAME for m in SCENARIOS],
                        help="run only these scenarios")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "reliability-report.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [m for m in SCENARIOS if not args.only or m.NAME in args.only]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as workdir, \
            shared_broker() as bootstrap:
        ctx = Context(bootstrap, args.short, Path(workdir))
        rows = [run_one(module, ctx) for module in chosen]
    print(format_table(rows))
    total = time.monotonic() - started
    print(f"total {total:.0f}s on {os.cpu_count()} CPUs")
    write_report(rows, args.report, {"variant": "short" if args.short else "full",
                                     "total_seconds": round(total, 1),
                                     "cpus": os.cpu_count(), "python": platform.python_version()})
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
