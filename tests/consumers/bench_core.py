"""Micro-benchmark of the consumer's pure core (not collected by pytest).

Run from the repository root:  .venv/bin/python -m tests.consumers.bench_core
Prints µs per event for batching + payload building, and for offset tracking, on 100k events.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

from bouncewire.consumers.batching import Batch, Batcher, InFlightIds
from bouncewire.consumers.offsets import OffsetTracker
from bouncewire.consumers.payloads import (
    CallbackEvent,
    CallbackType,
    EventRef,
    PayloadFormat,
    build_payload,
)

N = 100_000
PARTITIONS = 6
ROUNDS = 5


def make_events(n: int) -> list[CallbackEvent]:
    rng = random.Random(7)
    kinds: list[CallbackType] = ["softbounce", "hardbounce", "unsubscribe"]
    events = []
    for i in range(n):
        kind = rng.choices(kinds, weights=(6, 3, 1))[0]
        topic = "unsubscribes" if kind == "unsubscribe" else "send-results"
        ref = EventRef(topic, i % PARTITIONS, i // PARTITIONS)
        email = f"user.{rng.randrange(10**9)}@example{i % 50}.com"
        meta = f"acct-1234|cmp-{i % 977}|{i:08x}"
        events.append(CallbackEvent(f"{i:032x}", kind, email, 1_700_000_000 + i, meta, ref, i))
    return events


def batch_and_build(events: list[CallbackEvent], fmt: PayloadFormat) -> int:
    in_flight = InFlightIds()
    batchers = {
        d: Batcher(d, fmt=fmt, max_events=1000, in_flight=in_flight)
        for d in ("bounce", "unsubscribe")
    }
    total = 0

    def ship(batch: Batch | None) -> None:
        nonlocal total
        if batch is not None:
            total += len(build_payload(batch.events, fmt))
            in_flight.release(batch)

    for event in events:
        ship(batchers["unsubscribe" if event.kind == "unsubscribe" else "bounce"].add(event))
    for batcher in batchers.values():
        ship(batcher.flush())
    return total


def track_and_complete(events: list[CallbackEvent]) -> int:
    tracker = OffsetTracker()
    commits = 0
    for start in range(0, len(events), 1000):
        chunk = events[start : start + 1000]
        for e in chunk:
            tracker.track(e.ref.topic, e.ref.partition, e.ref.offset)
        tracker.complete_many(e.ref for e in reversed(chunk))
        commits += len(tracker.committable())
    return commits


def best_us_per_event(label: str, run: Callable[[], object], n: int) -> None:
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    print(f"{label:<44} {min(timings) / n * 1e6:6.2f} µs/event (best of {ROUNDS})")


def main() -> None:
    events = make_events(N)
    formats: tuple[PayloadFormat, ...] = ("legacy", "v2")
    for fmt in formats:
        best_us_per_event(
            f"batching + build_payload ({fmt})", functools.partial(batch_and_build, events, fmt), N
        )
        best_us_per_event(
            f"  of which build_payload alone ({fmt})", functools.partial(build_all, events, fmt), N
        )
    best_us_per_event(
        "offset track + complete_many + committable",
        functools.partial(track_and_complete, events),
        N,
    )


def build_all(events: list[CallbackEvent], fmt: PayloadFormat) -> list[bytes]:
    return [build_payload(events[i : i + 1000], fmt) for i in range(0, len(events), 1000)]


if __name__ == "__main__":
    main()
