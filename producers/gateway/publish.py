"""Send results to Kafka, each acknowledged before the gateway replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bouncewire.producers.unsubscribe.acks import AcknowledgedSender


class AcknowledgedResults:
    """`publish(records, timeout)`: every record acknowledged by the cluster, or PublishError."""

    def __init__(self, sender: AcknowledgedSender) -> None:
        self._sender = sender

    def publish(self, records: Sequence[dict[str, Any]], timeout: float) -> None:
        for record in records:
            self._sender.send(record, timeout)

    def close(self, timeout: float = 10.0) -> int:
        return self._sender.close(timeout)
