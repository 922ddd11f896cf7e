"""CallbackPipeline.ingest without Kafka or HTTP: what one consumed batch turns into.

In-memory messages and senders; the real Kafka/HTTP paths are in test_pipeline_integration.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import bouncewire.consumers.pipeline as pipeline_module
from bouncewire.consumers.batching import Batch
from bouncewire.consumers.delivery import DeliveryError
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.pipeline import CallbackPipeline, PipelineConfig
from bouncewire.kafka_client import Secret, TopicNames
from bouncewire.schemas import Codec, DecodedEvent, DecodeError, RegistryError, SchemaStore

TOPICS = TopicNames()
SR = TOPICS.send_results
CODEC = Codec(SchemaStore.load())


class Message:
    """The parts of a confluent_kafka.Message the pipeline reads."""

    def __init__(self, offset: int, value: bytes, partition: int = 0, topic: str = SR) -> None:
        self._topic, self._partition, self._offset, self._value = topic, partition, offset, value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"key"

    def headers(self) -> None:
        return None


class HeldSender:
    """Keeps submitted batches; nothing completes until a test says so."""

    retrying = False
    failure = None

    def __init__(self, *_: Any) -> None:
        self.batches: list[Batch] = []

    def start(self) -> None: ...

    def submit(self, batch: Batch) -> None:
        self.batches.append(batch)

    @property
    def backlog(self) -> int:
        return len(self.batches)

    def in_flight(self) -> list[Batch]:
        return list(self.batches)

    def close(self, abort: bool) -> None: ...

    def join(self, timeout: float) -> bool:
        return True


class LetterProducer:
    """A dead-letter producer that records what it was asked to write and acknowledges later."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.callbacks: list[Any] = []

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.values.append(value)
        self.callbacks.append(kwargs.get("on_delivery"))

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, timeout: float = 0.0) -> int:
        return 0


class Source:
    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        return []

    def store(self, offsets: Any) -> None: ...
    def pause(self, partitions: Any) -> None: ...
    def resume(self, partitions: Any) -> None: ...
    def commit_now(self) -> None: ...


def send_result(email: str, code: int, event_id: str) -> bytes:
    return CODEC.encode(
        "send_result",
        {"event_id": event_id, "event_time": 1_700_000_000_000, "email": email, "smtp_code": code},
    )


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def pipeline_with(codec: Any) -> tuple[CallbackPipeline, LetterProducer]:
    config = PipelineConfig(Secret("http://127.0.0.1:1/b"), Secret("http://127.0.0.1:1/u"))
    letters = LetterProducer()
    pipe = CallbackPipeline(
        config,
        Source(),  # type: ignore[arg-type]
        letters,  # type: ignore[arg-type]
        codec,
        None,
        ConsumerMetrics.create(CollectorRegistry()),
        sender_factory=HeldSender,
    )
    pipe.assigned = {(SR, 0), (SR, 1)}
    return pipe, letters


def test_records_needing_nothing_commit_at_once_and_pending_ones_hold_the_position() -> None:
    pipe, _ = pipeline_with(CODEC)
    pipe.ingest(
        [
            Message(10, send_result("a@example.com", 250, uuid(1))),  # delivered: nothing to do
            Message(11, send_result("b@example.com", 550, uuid(2))),  # hard bounce: a callback
            Message(12, send_result("c@example.com", 250, uuid(3))),
            Message(7, send_result("d@example.com", 250, uuid(4)), partition=1),
        ]
    )
    assert pipe.tracker.committable() == {(SR, 1): 8}, "partition 0 waits for offset 11"
    assert pipe.tracker.position(SR, 0) == 11 and pipe.tracker.pending_total() == 1
    assert len(pipe.held) == 1


def test_an_undecodable_record_is_tracked_before_its_dead_letter_is_acknowledged() -> None:
    pipe, letters = pipeline_with(CODEC)
    garbage = Message(0, b"\x00garbage")
    pipe.ingest([garbage, Message(1, send_result("a@example.com", 250, uuid(1)))])
    assert letters.values == [b"\x00garbage"]
    assert pipe.tracker.pending_total() == 1 and pipe.tracker.position(SR, 0) == 0
    letters.callbacks[0](None, None)  # the broker acknowledges the dead letter
    assert pipe.tracker.committable() == {(SR, 0): 2}


class FlakyRegistryCodec:
    """Fails with RegistryError first, then answers with `then` (an event or an exception)."""

    def __init__(self, then: DecodedEvent | Exception) -> None:
        self.calls = 0
        self.then = then

    def decode(self, data: bytes) -> DecodedEvent:
        self.calls += 1
        if self.calls == 1:
            raise RegistryError("registry unreachable")
        if isinstance(self.then, Exception):
            raise self.then
        return self.then


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module.time, "sleep", lambda _: None)


@pytest.mark.usefixtures("no_sleep")
def test_a_registry_outage_is_retried_then_the_record_is_read() -> None:
    decoded = CODEC.decode(send_result("a@example.com", 550, uuid(1)))
    pipe, letters = pipeline_with(FlakyRegistryCodec(decoded))
    pipe.ingest([Message(0, b"\x00\x00\x00\x00\x01body")])
    assert letters.values == [] and pipe.tracker.pending_total() == 1
    assert pipe.batchers["bounce"].open_events == 1


@pytest.mark.usefixtures("no_sleep")
def test_a_record_undecodable_after_a_registry_outage_is_dead_lettered() -> None:
    pipe, letters = pipeline_with(FlakyRegistryCodec(DecodeError("invalid_body", "bad body")))
    pipe.ingest([Message(0, b"\x00\x00\x00\x00\x01body")])
    assert letters.values == [b"\x00\x00\x00\x00\x01body"]


def test_a_sender_that_can_no_longer_deliver_stops_the_loop() -> None:
    pipe, _ = pipeline_with(CODEC)
    sender: Any = pipe.senders["bounce"]
    sender.failure = "the delivery process exited (exit code -9)"
    with pytest.raises(DeliveryError, match="exit code -9"):
        pipe.step()


def test_a_sender_failing_during_the_drain_ends_it_at_once_and_stops_with_the_error() -> None:
    pipe, _ = pipeline_with(CODEC)
    pipe.ingest([Message(0, send_result("a@x.io", 550, uuid(1)))])
    sender: Any = pipe.senders["bounce"]
    sender.failure = "the delivery process exited (exit code -9)"
    waits: list[None] = []
    pipe._wait_a_little = lambda: waits.append(None)  # type: ignore[method-assign]
    with pytest.raises(DeliveryError, match="exit code -9"):
        pipe.drain()  # the drain flushed the open batch into a sender that will never answer
    assert len(sender.batches) == 1
    assert waits == []  # not one wait for an answer that cannot come
