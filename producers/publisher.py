"""Publish events: encode with the contract's codec and produce, keyed and timestamped."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from bouncewire.kafka_client import DeliveryReport, KafkaProducer, KafkaSettings, TopicNames
from bouncewire.producers.events import parse_send_result, parse_unsubscribe
from bouncewire.producers.exceptions import PublishError
from bouncewire.schemas import Codec, SchemaStore, registry_client


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

    @classmethod
    def connect(
        cls,
        settings: KafkaSettings,
        topics: TopicNames | None = None,
        *,
        schema_registry_url: str | None = None,
        broker_timeout: float = 15.0,
    ) -> EventPublisher:
        """A publisher for a service's own code: BrokerUnavailableError when no broker of
        `settings` answers within `broker_timeout` seconds (nothing can be published then)."""
        producer = KafkaProducer(settings)
        producer.check_broker(timeout=broker_timeout)
        registry = registry_client(schema_registry_url) if schema_registry_url else None
        return cls(producer, Codec(SchemaStore.load(), registry=registry), topics or TopicNames())

    def publish_send_result(self, fields: Mapping[str, Any]) -> str:
        """Validate one send result (the JSON-lines input's fields) and publish it; returns
        its event id. InvalidEventError names the bad field, and nothing is sent."""
        record = parse_send_result(fields, now_ms=time.time_ns() // 1_000_000)
        self.publish("send_result", record, parsed=True)
        return str(record["event_id"])

    def publish_unsubscribe(self, fields: Mapping[str, Any]) -> str:
        """Validate one unsubscribe (the JSON-lines input's fields) and publish it; returns its
        event id. InvalidEventError names the bad field, and nothing is sent."""
        record = parse_unsubscribe(fields, now_ms=time.time_ns() // 1_000_000)
        self.publish("unsubscribe", record, parsed=True)
        return str(record["event_id"])

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
