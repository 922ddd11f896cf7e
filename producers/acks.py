"""Publish records and wait for *their own* acknowledgements, safely from many threads.

`EventPublisher.publish_acknowledged` decides from shared counters and a full `flush()`, which
is right for one caller at a time. The servers (unsubscribe web service, SMTP gateway, mail
serve) publish from many threads and answer only once their records are acknowledged: there,
one caller could be told about another's failure, or a lost counter update could hide its own.
So each record here gets its own delivery callback.

One background thread serves delivery callbacks; a waiting caller sleeps on its own records'
events and wakes the moment they are set (polling from every caller instead made each wait up
to a poll interval longer than the acknowledgement).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bouncewire.kafka_client import KafkaClientError, KafkaProducer, TopicNames
from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.publisher import record_key
from bouncewire.schemas import Codec

_POLL_INTERVAL_S: Final = 0.05


class Outgoing(Protocol):
    """What can be published: a schema kind ("send_result", "unsubscribe") and its record."""

    @property
    def kind(self) -> str: ...

    @property
    def record(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    kind: str
    record: Mapping[str, Any] = field(repr=False)  # holds an address: never in a repr


def topics_by_kind(topics: TopicNames) -> dict[str, str]:
    """Each kind's topic, for a publisher that may send both."""
    return {"send_result": topics.send_results, "unsubscribe": topics.unsubscribes}


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
    """`publish_all(events, timeout)` returns once the cluster acknowledged every one, else
    raises PublishError. `prechecked`: the callers build records the schema pre-check would pass
    (see `Codec.encode`)."""

    def __init__(
        self,
        producer: KafkaProducer,
        codec: Codec,
        topics: Mapping[str, str],
        *,
        prechecked: bool = False,
    ) -> None:
        self._producer = producer
        self._codec = codec
        self._topics = dict(topics)
        self._prechecked = prechecked
        self._stop = threading.Event()
        # The client is made on first use and `poll()` returns at once without one: made here,
        # before the poller starts, so the poller blocks in poll() instead of spinning (and
        # never races a caller's first produce() to create it).
        _ = producer.client
        self._poller = threading.Thread(target=self._poll, name="acks-poller", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_INTERVAL_S)

    def publish_one(self, kind: str, record: Mapping[str, Any], timeout: float) -> None:
        self.publish_all([OutgoingRecord(kind, record)], timeout)

    def publish_all(self, events: Sequence[Outgoing], timeout: float) -> None:
        """Produce all, then wait for all; PublishError if any is refused or still unanswered
        at the deadline (some may then still land: harmless repeats, the ids are stable)."""
        deliveries = [_Delivery() for _ in events]
        try:
            for event, delivery in zip(events, deliveries, strict=True):
                self._produce(event, delivery)
        except KafkaClientError as exc:
            raise PublishError(str(exc)) from exc
        deadline = time.monotonic() + timeout
        for delivery in deliveries:
            if not delivery.done.wait(max(deadline - time.monotonic(), 0.0)):
                raise PublishError(f"no acknowledgement within {timeout:g}s")
        errors = [d.error for d in deliveries if d.error is not None]
        if errors:
            raise PublishError("the cluster refused the record: " + errors[0])

    def _produce(self, event: Outgoing, delivery: _Delivery) -> None:
        self._producer.produce(
            self._topics[event.kind],
            self._codec.encode(event.kind, event.record, prechecked=self._prechecked),
            key=record_key(event.record["email"]),
            timestamp_ms=event.record["event_time"],
            on_delivery=delivery,
        )

    def close(self, timeout: float = 10.0) -> int:
        """Wait for what is still in flight; returns how many records stayed unacknowledged."""
        remaining = self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout)
        return remaining
