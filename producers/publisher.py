"""Publish events: encode with the contract's codec and produce, keyed and timestamped."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from bouncewire.kafka_client import DeliveryReport, KafkaProducer, TopicNames
from bouncewire.producers.exceptions import PublishError
from bouncewire.schemas import Codec


def record_key(email: str) -> bytes:
    """One address's events share a key, hence a partition, hence an order."""
    return email.strip().lower().encode("utf-8", "surrogatepass")


class EventPublisher:
    """validate → encode → produce. Failed deliveries surface from `flush()` as PublishError."""

    def __init__(self, producer: KafkaProducer, codec: Codec, topics: TopicNames) -> None:
        self._producer = producer
        self._codec = codec
        self._topics = {"send_result": topics.send_results, "unsubscribe": topics.unsubscribes}
        self.report = DeliveryReport()

    def publish(self, kind: str, record: Mapping[str, Any], *, parsed: bool = False) -> None:
        """Hand one record to the producer; the broker's answer arrives via `report`.

        `parsed`: `record` comes from a parser of producers.events, which already checked all
        the codec's pre-check would (tests/producers/test_publisher.py holds them to it).
        """
        value = self._codec.encode(kind, record, prechecked=parsed)
        self._producer.produce(
            self._topics[kind],
            value,
            key=record_key(record["email"]),
            # Replay by time relies on the record timestamp being the event time.
            timestamp_ms=record["event_time"],
            on_delivery=self.report,
        )
        self.report.sent += 1

    @property
    def acknowledged(self) -> int:
        """Records the cluster acknowledged so far; exact once `flush()` returned."""
        return self.report.acked(self._producer.outstanding)

    def publish_acknowledged(self, kind: str, record: Mapping[str, Any], timeout: float) -> None:
        """Publish one record and return only once the cluster acknowledged it."""
        failed_before = self.report.failed
        self.publish(kind, record)
        if self._producer.flush(timeout) > 0:
            raise PublishError(f"no acknowledgement within {timeout:.0f}s")
        if self.report.failed > failed_before:
            raise PublishError("the cluster refused the record: " + self.report.errors[-1])

    def flush(self, timeout: float = 60.0) -> None:
        outstanding = self._producer.flush(timeout)
        if outstanding:
            raise PublishError(f"{outstanding} record(s) still unacknowledged after {timeout:.0f}s")
        if self.report.failed:
            raise PublishError(
                f"{self.report.failed} record(s) not acknowledged: " + "; ".join(self.report.errors)
            )

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._producer.flush(10.0)
