"""Print classify()'s cost per call (µs/op); not a test, pytest does not collect it.

Run: .venv/bin/python -m tests.schemas.bench_classification
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable

from bouncewire.schemas.classification import classify
from tests.schemas.test_classification import REAL_REPLIES

EMAIL = "someone@example.com"
ROUNDS = 20_000


def _per_call_us(label: str, call: Callable[[], object], calls_per_round: int = 1) -> None:
    # CPU time of this process, so other work on a shared machine does not inflate it.
    best = min(timeit.repeat(call, number=ROUNDS, repeat=5, timer=time.process_time))
    print(f"{label:<44} {best / ROUNDS / calls_per_round * 1e6:7.2f} µs/op")


def main() -> None:
    replies = [(row[1], row[2], row[3]) for row in REAL_REPLIES]
    huge = "550 5.7.1 " + "blocked " * 200_000

    _per_call_us("machine yardstick: sum(range(100))", lambda: sum(range(100)))
    _per_call_us("delivered (250)", lambda: classify(EMAIL, 250, "2.0.0", "250 2.0.0 OK", None))
    _per_call_us("gmail 550 5.1.1 (multi-line text)", lambda: classify(EMAIL, *replies[1], None))
    _per_call_us("no reply: timeout", lambda: classify(EMAIL, None, None, None, "timeout"))
    _per_call_us("1.6 MB reply text", lambda: classify(EMAIL, 550, None, huge, None))
    _per_call_us(
        f"mix of the {len(replies)} real replies (mean)",
        lambda: [classify(EMAIL, code, enh, text, None) for code, enh, text in replies],
        calls_per_round=len(replies),
    )


if __name__ == "__main__":
    main()
