"""Send results to Kafka, each acknowledged before the gateway replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bouncewire.producers.acks import AcknowledgedPublisher, OutgoingRecord


class AcknowledgedResults:
    """`publish(records, timeout)`: every record acknowledged by the cluster, or PublishError."""

    def __init__(self, publisher: AcknowledgedPublisher) -> None:
        self._publisher = publisher

    def publish(self, records: Sequence[dict[str, Any]], timeout: float) -> None:
        # All produced at once, then all awaited: one acknowledgement wait, not one a record.
        self._publisher.publish_all([OutgoingRecord("send_result", r) for r in records], timeout)

    def close(self, timeout: float = 10.0) -> int:
        return self._publisher.close(timeout)
