"""Errors raised by the Kafka adapter. Vendor errors are translated here, at the boundary.

    KafkaClientError
    ├── BrokerUnavailableError   -- no broker answered a metadata request in time
    ├── DeliveryError            -- a produced record was not acknowledged (.code, .retriable)
    ├── ConsumeError             -- a fatal consumer error (.code)
    └── TopicAdminError          -- creating topics failed for a reason other than "exists"

Messages name what failed (topic, broker count, error code) and never carry a password,
a callback URL or a record's value.
"""

from __future__ import annotations


class KafkaClientError(Exception):
    """Root of every error the adapter raises."""


class BrokerUnavailableError(KafkaClientError):
    """No broker of the configured bootstrap list answered in time."""


class DeliveryError(KafkaClientError):
    """A record was not acknowledged by the cluster."""

    def __init__(self, message: str, *, code: str = "", retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable


class ConsumeError(KafkaClientError):
    """The consumer reported an error it cannot recover from."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TopicAdminError(KafkaClientError):
    """A topic could not be created."""
