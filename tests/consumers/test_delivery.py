"""The sender's HTTP policy on httpx.MockTransport: what a final answer means for a batch, judged
in the sender (threads) or, from an ANSWERED outcome, by the parent of the delivery child."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from bouncewire.consumers.batching import Batch
from bouncewire.consumers.concurrency import AdaptiveConcurrency
from bouncewire.consumers.delivery import (
    DestinationSender,
    Outcome,
    OutcomeKind,
    judge_answer,
)
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import CallbackEvent, EventRef
from bouncewire.kafka_client import Secret
from tests.consumers.pipeline_harness import FAST_RETRY

EMAILS = ("a@x.io", "b@x.io", "c@x.io")


def batch() -> Batch:
    events = [
        CallbackEvent(f"id{i}", "hardbounce", e, 1_700_000_000, None, EventRef("t", 0, i), 0)
        for i, e in enumerate(EMAILS)
    ]
    return Batch("bounce", events, [e.ref for e in events], 0, 0.0)


def body(**report: Any) -> bytes:
    return orjson.dumps(report)


# (status, body, expected kind, expected failed indexes)
FINAL_ANSWERS = [
    (200, b"", OutcomeKind.DELIVERED, ()),
    (200, body(status="success"), OutcomeKind.DELIVERED, ()),
    (200, body(UNPROCESSED_EVENTS=[{"e": "B@x.io", "ts": 1_700_000_000}]),
     OutcomeKind.PARTIAL, (1,)),
    (200, body(PROCESSED_EVENTS=1, TOTAL_EVENTS=3), OutcomeKind.PARTIAL, (0, 1, 2)),
    (400, body(PROCESSED_EVENTS=2, UNPROCESSED_EVENTS=[{"e": "c@x.io"}]),
     OutcomeKind.PARTIAL, (2,)),
    (400, body(error="invalid email ID a@x.io"), OutcomeKind.REJECTED, ()),
    (302, b"", OutcomeKind.REJECTED, ()),
]  # fmt: skip


def sender_for(handler: Any) -> DestinationSender:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    metrics = ConsumerMetrics.create(CollectorRegistry())
    return DestinationSender(
        "bounce", Secret("http://cb.test/t0k3n"), client, FAST_RETRY, "legacy", metrics,
        queue.SimpleQueue(),
    )  # fmt: skip


def answering(*responses: tuple[int, bytes]) -> DestinationSender:
    answers = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        status, content = next(answers)
        return httpx.Response(status, content=content)

    return sender_for(handler)


@pytest.mark.parametrize(("status", "content", "kind", "failed"), FINAL_ANSWERS)
def test_a_final_answer_means_the_same_judged_in_the_sender_or_from_answered(
    status: int, content: bytes, kind: OutcomeKind, failed: tuple[int, ...]
) -> None:
    in_sender = answering((503, b"busy"), (status, content)).deliver(batch())
    answered = Outcome(OutcomeKind.ANSWERED, status, attempts=2, first_failure_ms=5,
                       last_failure_ms=5, content=content)  # fmt: skip
    from_answered = judge_answer(answered, batch().events)
    for outcome in (in_sender, from_answered):
        assert (outcome.kind, outcome.status, outcome.failed) == (kind, status, failed)
        assert outcome.attempts == 2
        assert outcome.first_failure_ms is not None
    assert from_answered.body == in_sender.body
    assert from_answered.reason == in_sender.reason


def test_kept_bodies_carry_no_address() -> None:
    content = body(error="invalid email ID a@x.io")
    outcome = judge_answer(Outcome(OutcomeKind.ANSWERED, 400, content=content), batch().events)
    assert outcome.kind is OutcomeKind.REJECTED
    assert "a@x.io" not in outcome.body
    assert "invalid email ID" in outcome.body


# --- several POSTs in flight (threads; the delivery child runs the same sender) --------------


class SlowSink:
    """A MockTransport handler that answers after `delay` (per batch index in the body: the
    first event's id) and records how many POSTs were in flight at once and in what order
    they started and ended."""

    def __init__(self, delay: float, slow: dict[str, float] | None = None,
                 first: tuple[int, str | None] | None = None) -> None:
        self.delay, self.slow, self.first = delay, slow or {}, first
        self.lock = threading.Lock()
        self.active = self.peak = self.posts = 0
        self.started: list[str] = []
        self.ended: list[tuple[float, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = orjson.loads(request.content)[0]["data"][0]["e"]
        with self.lock:
            self.posts += 1
            post = self.posts
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.started.append(key)
        try:
            if self.first is not None and post == 1:
                status, retry_after = self.first
                headers = {"Retry-After": retry_after} if retry_after else {}
                return httpx.Response(status, headers=headers)
            time.sleep(self.slow.get(key, self.delay))
            return httpx.Response(200)
        finally:
            with self.lock:
                self.active -= 1
                self.ended.append((time.monotonic(), key))


def numbered(i: int) -> Batch:
    event = CallbackEvent(f"id{i}", "hardbounce", f"b{i}@x.io", 1_700_000_000, None,
                          EventRef("t", 0, i), 0)  # fmt: skip
    return Batch("bounce", [event], [event.ref], 0, 0.0)


def run_batches(sink: SlowSink, batches: int, cap: int, initial: int = 1
                ) -> list[tuple[Batch, Outcome]]:
    client = httpx.Client(transport=httpx.MockTransport(sink))
    completions: queue.SimpleQueue[tuple[Batch, Outcome]] = queue.SimpleQueue()
    sender = DestinationSender(
        "bounce", Secret("http://cb.test/t0k3n"), client, FAST_RETRY, "legacy",
        ConsumerMetrics.create(CollectorRegistry()), completions,
        limiter=AdaptiveConcurrency(cap, initial=initial),
    )  # fmt: skip
    sender.start()
    for i in range(batches):
        sender.submit(numbered(i))
    done = [completions.get(timeout=10) for _ in range(batches)]
    sender.close(abort=False)
    assert sender.join(5)
    return done


def test_posts_overlap_up_to_the_cap_and_every_batch_is_delivered() -> None:
    sink = SlowSink(0.05)
    done = run_batches(sink, 40, cap=6)
    assert all(outcome.kind is OutcomeKind.DELIVERED for _, outcome in done)
    assert sorted(b.events[0].event_id for b, _ in done) == sorted(f"id{i}" for i in range(40))
    assert 4 <= sink.peak <= 6  # slow start from 4 reaches the cap within a round trip or two


def test_batches_finish_out_of_order_but_never_run_more_than_a_window_ahead() -> None:
    # Batch 0 takes 0.5 s, the rest 20 ms: later batches overtake it, but only those
    # submitted fewer than `cap` after it may start before it finishes.
    sink = SlowSink(0.02, slow={"b0@x.io": 0.5})
    done = run_batches(sink, 12, cap=4, initial=4)
    finished = [b.events[0].event_id for b, _ in done]
    assert finished[0] != "id0" and "id0" in finished
    end_of_0 = next(t for t, k in sink.ended if k == "b0@x.io")
    later = {f"b{i}@x.io" for i in range(4, 12)}
    assert all(t >= end_of_0 for t, k in sink.ended if k in later)


def test_a_retry_after_pauses_the_whole_destination() -> None:
    # The first POST is refused with Retry-After: 1; nothing else may leave meanwhile.
    sink = SlowSink(0.01, first=(429, "1"))
    started = time.monotonic()
    done = run_batches(sink, 6, cap=4)
    assert all(outcome.kind is OutcomeKind.DELIVERED for _, outcome in done)
    assert min(t for t, _ in sink.ended[1:]) - started >= 0.95
    assert sink.posts == 7  # six batches, one of them twice: no retry storm
