"""`mail parse` throughput: parse_message over the fixture corpus on one core, no I/O.

    python -m bench.mail_parse_bench             # ~3 s, prints the result as JSON

The messages are read into memory first; the loop only parses. Two figures: every fixture
(all the formats, complaints and auto-replies included) and the RFC 3464 DSNs alone, the
typical bounce (goal >= 2,000 messages/s on one core). CPU time is the process's own, so
other load on the machine slows the wall clock but not the µs per message.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson

from bouncewire.producers.mail import parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "producers" / "mail" / "fixtures"
GOAL_DSN_PER_SECOND = 2000


def corpus() -> list[bytes]:
    return [path.read_bytes() for path in sorted(FIXTURES.rglob("*.eml"))]


def typical_dsns(messages: list[bytes]) -> list[bytes]:
    """The fixtures parse_message reads as RFC 3464: the shape most bounces have today."""
    return [raw for raw in messages if parse_message(raw).format == "rfc3464"]


def measure(messages: list[bytes], seconds: float) -> dict[str, Any]:
    """Parse the messages round and round for about `seconds` of CPU time."""
    for raw in messages:  # warm-up: imports, regex compilation, caches
        parse_message(raw)
    parsed = 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    while time.process_time() - cpu_start < seconds:
        for raw in messages:
            parse_message(raw)
        parsed += len(messages)
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return {
        "records": parsed,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "rate": parsed / cpu if cpu else 0.0,
        "mean_bytes": sum(map(len, messages)) / len(messages) if messages else 0,
        "distinct_messages": len(messages),
    }


def run(seconds: float = 3.0) -> dict[str, Any]:
    messages = corpus()
    dsns = typical_dsns(messages)
    return {
        "all": measure(messages, seconds / 2),
        "dsn": measure(dsns, seconds / 2),
        "goal_dsn_per_second": GOAL_DSN_PER_SECOND,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(orjson.dumps(run(args.seconds), option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
