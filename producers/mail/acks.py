"""Publish one message's events and wait for *their own* acknowledgements, from many threads.

The SMTP server answers 250 only once every event of a message is acknowledged. Sessions run
concurrently, so each record gets its own delivery callback (as the unsubscribe service's
AcknowledgedSender does for one record): one session is never told about another's failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from bouncewire.kafka_client import KafkaClientError, KafkaProducer, TopicNames
from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.mail.events import MailEvent
from bouncewire.producers.publisher import record_key
from bouncewire.schemas import Codec

_POLL_INTERVAL_S: Final = 0.05


class _Delivery:
    """The outcome of one record: set once by librdkafka's delivery callback."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.error = f"{err.name()} ({err.str()})"
        self.done.set()


class AcknowledgedPublisher:
    """`publish_all(events, timeout)` returns once the cluster acknowledged every one.

    One background thread serves delivery callbacks; a waiting session sleeps on its own
    records' events and wakes the moment they are set (polling from every session instead
    made each wait up to a poll interval longer than the acknowledgement).
    """

    def __init__(self, producer: KafkaProducer, codec: Codec, topics: TopicNames) -> None:
        self._producer = producer
        self._codec = codec
        self._topics = {"send_result": topics.send_results, "unsubscribe": topics.unsubscribes}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="mail-acks", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_INTERVAL_S)

    def publish_all(self, events: Sequence[MailEvent], timeout: float) -> None:
        """Produce all, then wait for all; PublishError if any is refused or still unanswered
        at the deadline (some may then still land: harmless repeats, the ids are stable)."""
        deliveries = [_Delivery() for _ in events]
        try:
            for event, delivery in zip(events, deliveries, strict=True):
                self._producer.produce(
                    self._topics[event.kind],
                    self._codec.encode(event.kind, event.record, prechecked=True),
                    key=record_key(event.record["email"]),
                    timestamp_ms=event.record["event_time"],
                    on_delivery=delivery,
                )
        except KafkaClientError as exc:
            raise PublishError(str(exc)) from exc
        deadline = time.monotonic() + timeout
        for delivery in deliveries:
            if not delivery.done.wait(max(deadline - time.monotonic(), 0.0)):
                raise PublishError(f"no acknowledgement within {timeout:g}s")
        errors = [d.error for d in deliveries if d.error is not None]
        if errors:
            raise PublishError("the cluster refused a record: " + errors[0])

    def close(self, timeout: float = 10.0) -> int:
        """Wait for what is still in flight; returns how many records stayed unacknowledged."""
        remaining = self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout)
        return remaining
