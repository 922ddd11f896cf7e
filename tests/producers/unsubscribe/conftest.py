"""Fixtures for the unsubscribe tests (helpers live in unsubscribe_harness.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from bouncewire.kafka_client import KafkaSettings, TopicNames, create_topics
from tests.producers.unsubscribe.unsubscribe_harness import (
    PARTITIONS,
    LiveService,
    free_port,
    running_service,
)


@pytest.fixture(scope="module")
def live_service(kafka_bootstrap: str) -> Iterator[LiveService]:
    topics = TopicNames(unsubscribes=f"unsub-svc-{uuid.uuid4().hex[:8]}")
    create_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [topics.unsubscribes],
                  partitions=PARTITIONS)
    with running_service(kafka_bootstrap, topics.unsubscribes) as service:
        yield service


@pytest.fixture(scope="module")
def down_service() -> Iterator[LiveService]:
    """Pointed at a loopback port where no broker listens, with a 1 s acknowledgement bound."""
    with running_service(f"127.0.0.1:{free_port()}", "unsub-nowhere", ack_timeout_s=1.0,
                         retry_after_s=7) as service:
        yield service


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # follow_redirects=False: RFC 8058 forbids redirects, a 3xx must show as a failure.
    with httpx.Client(timeout=30.0, follow_redirects=False) as client:
        yield client
