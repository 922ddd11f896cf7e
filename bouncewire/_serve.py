"""Wiring shared by the servers that answer only once Kafka acknowledged their records
(unsubscribe-server, mail serve, smtp-gateway)."""

from __future__ import annotations

import argparse
import logging

from bouncewire._flags import kafka_settings
from bouncewire.kafka_client import BrokerUnavailableError, KafkaProducer

log = logging.getLogger("bouncewire.serve")


def acknowledging_producer(
    args: argparse.Namespace, ack_timeout_s: float, *, unavailable_reply: str, linger_ms: int = 5
) -> KafkaProducer:
    """A producer for callers that each wait for their own records (little to gain from
    lingering). It serves even if the broker is down at start: callers get `unavailable_reply`
    (a temporary failure) until it is back."""
    ack_ms = max(1000, int(ack_timeout_s * 1000))
    producer = KafkaProducer(
        kafka_settings(args),
        {
            "linger.ms": linger_ms,
            # Give up on a record about when its caller does, so an unanswered record is not
            # written long after; one that still lands is a harmless repeat (stable ids).
            "message.timeout.ms": ack_ms,
            "socket.connection.setup.timeout.ms": min(ack_ms, 10_000),
        },
    )
    try:
        producer.check_broker(timeout=min(ack_timeout_s, 5.0))
    except BrokerUnavailableError as exc:
        log.warning(
            f"broker not reachable at start; answering {unavailable_reply} until it is",
            extra={"reason": str(exc)},
        )
    return producer
