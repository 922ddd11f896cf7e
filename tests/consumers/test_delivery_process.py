"""The delivery child process against a real receiver on loopback: outcomes, retries, relayed
metrics, abort, and a child that dies."""

from __future__ import annotations

import os
import queue
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bouncewire.consumers.batching import Batch
from bouncewire.consumers.delivery import DeliveryError, Outcome, OutcomeKind
from bouncewire.consumers.delivery_process import DeliveryProcess, ProcessSender
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import CallbackEvent, CallbackType, Destination, EventRef
from bouncewire.kafka_client import Secret
from bouncewire.receiver import CallbackReceiver, FaultPlan
from reliability.support import wait_until
from tests.consumers.pipeline_harness import FAST_RETRY

TOKEN = "acct-token-9f3c"
Completions = queue.SimpleQueue[tuple[Batch, Outcome]]


def batch_of(destination: Destination, kind: CallbackType, *emails: str) -> Batch:
    events = [
        CallbackEvent(f"id-{e}", kind, e, 1_700_000_000, None, EventRef("t", 0, i), 0)
        for i, e in enumerate(emails)
    ]
    return Batch(destination, events, [e.ref for e in events], 0, 0.0)


class Delivery:
    def __init__(self, receiver: CallbackReceiver) -> None:
        self.registry = CollectorRegistry()
        self.process = DeliveryProcess(
            FAST_RETRY, "legacy", ConsumerMetrics.create(self.registry)
        )
        self.completions: Completions = queue.SimpleQueue()
        url = Secret(f"{receiver.base_url}/cb/{TOKEN}")
        self.bounce = self.process.sender("bounce", url, self.completions)
        self.unsubscribe = self.process.sender("unsubscribe", url, self.completions)
        self.bounce.start()
        self.unsubscribe.start()

    def outcome(self, timeout: float = 20.0) -> tuple[Batch, Outcome]:
        return self.completions.get(timeout=timeout)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(f"bouncewire_{name}", labels) or 0.0

    def close(self, abort: bool = False) -> None:
        for sender in (self.bounce, self.unsubscribe):
            sender.close(abort)
        for sender in (self.bounce, self.unsubscribe):
            assert sender.join(10.0)


@pytest.fixture
def delivery(receiver: CallbackReceiver) -> Iterator[Delivery]:
    d = Delivery(receiver)
    yield d
    d.close(abort=True)


def test_batches_are_posted_from_the_child_and_come_back_as_the_parents_batches(
    delivery: Delivery, receiver: CallbackReceiver
) -> None:
    bounces = batch_of("bounce", "hardbounce", "a@x.io", "b@x.io")
    unsubscribes = batch_of("unsubscribe", "unsubscribe", "c@x.io")
    delivery.bounce.submit(bounces)
    delivery.unsubscribe.submit(unsubscribes)
    done = [delivery.outcome(), delivery.outcome()]
    assert {id(b) for b, _ in done} == {id(bounces), id(unsubscribes)}
    assert all(o.kind is OutcomeKind.DELIVERED for _, o in done)
    assert wait_until(lambda: delivery.bounce.backlog == 0 == delivery.unsubscribe.backlog, 5)
    emails = sorted(e.email for post in receiver.received for e in post.events)
    assert emails == ["a@x.io", "b@x.io", "c@x.io"]
    # The child's metric updates land in the parent's registry.
    assert delivery.metric("callbacks_total", destination="bounce", status_class="2xx") == 1
    assert delivery.metric("callback_duration_seconds_count", destination="bounce") == 1


def test_retries_show_as_retrying_in_the_parent_and_are_counted(
    delivery: Delivery, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(status=503, count=-1))
    delivery.bounce.submit(batch_of("bounce", "softbounce", "a@x.io"))
    assert wait_until(lambda: delivery.bounce.retrying, 10)
    receiver.set_faults(FaultPlan())
    _, outcome = delivery.outcome()
    assert outcome.kind is OutcomeKind.DELIVERED and outcome.attempts >= 2
    assert wait_until(lambda: not delivery.bounce.retrying, 5)
    assert delivery.metric("callback_retries_total", destination="bounce") == outcome.attempts - 1


def test_a_partial_success_names_the_unprocessed_events(
    delivery: Delivery, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(partial_unprocessed=1, count=1))
    delivery.bounce.submit(batch_of("bounce", "hardbounce", "a@x.io", "b@x.io"))
    batch, outcome = delivery.outcome()
    # The child has only the payload: the parent judged the answer against the batch.
    assert outcome.kind is OutcomeKind.PARTIAL
    [unprocessed] = receiver.received[-1].unprocessed
    assert [batch.events[i].email for i in outcome.failed] == [unprocessed.email]


def test_abort_cuts_retries_short_and_the_child_exits(
    delivery: Delivery, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(status=503, count=-1))
    batch = batch_of("bounce", "hardbounce", "a@x.io")
    delivery.bounce.submit(batch)
    assert wait_until(lambda: delivery.bounce.retrying, 10)
    delivery.close(abort=True)
    done, outcome = delivery.outcome(timeout=1)
    assert done is batch and outcome.kind is OutcomeKind.ABANDONED
    assert delivery.bounce.failure is None  # a requested stop is no failure


def test_a_dead_child_is_a_failure_the_pipeline_cannot_miss(delivery: Delivery) -> None:
    child = _child_pid(delivery.bounce)
    os.kill(child, signal.SIGKILL)
    assert wait_until(lambda: delivery.bounce.failure is not None, 10)
    assert "exit code -9" in (delivery.bounce.failure or "")
    with pytest.raises(DeliveryError):
        delivery.bounce.submit(batch_of("bounce", "hardbounce", "a@x.io"))


def test_the_callback_url_is_not_on_the_childs_command_line(delivery: Delivery) -> None:
    cmdline = Path(f"/proc/{_child_pid(delivery.bounce)}/cmdline").read_bytes()
    assert TOKEN.encode() not in cmdline


def _child_pid(sender: ProcessSender) -> int:
    process = sender.process._process
    assert process is not None and process.pid is not None
    return process.pid
