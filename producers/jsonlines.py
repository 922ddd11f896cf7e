"""JSON lines in, events out: every bad line is reported with its number, the rest published."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bouncewire.producers.events import PARSERS
from bouncewire.producers.exceptions import InvalidEventError


@dataclass(frozen=True, slots=True)
class BadLine:
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


def parse_lines(
    lines: Iterable[bytes | str],
    kind: str,
    *,
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> Iterator[dict[str, Any] | BadLine]:
    """Yield an Avro record per good line and a BadLine per bad one; blank lines are skipped."""
    parse = PARSERS[kind]
    for line_no, line in enumerate(lines, start=1):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            # A blank line is not JSON either: test for it only here, not on every line.
            if line.strip():
                yield BadLine(line_no, f"not valid JSON ({exc.msg})")
            continue
        try:
            yield parse(obj, now_ms=clock_ms())
        except InvalidEventError as exc:
            yield BadLine(line_no, str(exc))
