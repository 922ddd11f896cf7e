"""The sender's HTTP policy on httpx.MockTransport: what a final answer means for a batch, judged
in the sender (threads) or, from an ANSWERED outcome, by the parent of the delivery child."""

from __future__ import annotations

import queue
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from bouncewire.consumers.batching import Batch
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
