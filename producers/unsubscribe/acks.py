"""Publish one unsubscribe and wait for *its own* acknowledgement, safely from many threads.

`EventPublisher.publish_acknowledged` decides from shared counters and a full `flush()`, which
is right for one caller at a time. The web service publishes from a thread pool: there, one
request could be told about another's failure, or a lost counter update could hide its own.
So each record here gets its own delivery callback, and the waiting thread serves callbacks
with `poll()` until its record is acknowledged, refused, or the deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from bouncewire.kafka_client import KafkaClientError, KafkaProducer
from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.publisher import record_key
from bouncewire.schemas import Codec

KIND: Final = "unsubscribe"
_POLL_INTERVAL_S: Final = 0.05


class _Delivery:
    """The outcome of one record: set once by librdkafka's delivery callback."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.error = f"{err.name()} ({err.str()})"
        self.done.set()


class AcknowledgedSender:
    """`send(record, timeout)` returns once the cluster acknowledged the record, else raises."""

    def __init__(self, producer: KafkaProducer, codec: Codec, topic: str, kind: str = KIND) -> None:
        self._producer = producer
        self._codec = codec
        self._topic = topic
        self._kind = kind  # the SMTP gateway sends "send_result" records the same way

    def send(self, record: Mapping[str, Any], timeout: float) -> None:
        delivery = _Delivery()
        try:
            self._producer.produce(
                self._topic,
                self._codec.encode(self._kind, dict(record)),
                key=record_key(record["email"]),
                timestamp_ms=record["event_time"],
                on_delivery=delivery,
            )
            self._wait(delivery, timeout)
        except KafkaClientError as exc:
            raise PublishError(str(exc)) from exc
        if delivery.error is not None:
            raise PublishError("the cluster refused the record: " + delivery.error)

    def _wait(self, delivery: _Delivery, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not delivery.done.is_set():
            if time.monotonic() >= deadline:
                raise PublishError(f"no acknowledgement within {timeout:g}s")
            # Serves every pending callback, ours or another request's.
            self._producer.poll(_POLL_INTERVAL_S)

    def close(self, timeout: float = 10.0) -> int:
        """Wait for what is still in flight; returns how many records stayed unacknowledged."""
        return self._producer.flush(timeout)
