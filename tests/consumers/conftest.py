"""Fixtures shared by the consumer's integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver
from tests.consumers.pipeline_harness import topics_for


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A stand-in CleverTap on a free loopback port."""
    with CallbackReceiver() as r:
        yield r


@pytest.fixture
def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    """Fresh send-results, unsubscribes and dead-letter topics (3 partitions) for one test."""
    return topics_for(kafka_bootstrap, unique_name)
