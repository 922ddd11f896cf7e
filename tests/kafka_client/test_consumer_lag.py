"""KafkaConsumer.lag on the real broker: the committed lag (what kafka-consumer-groups.sh shows)
keeps rising while a partition is paused, and the read-ahead is what was read beyond it."""

from __future__ import annotations

import time
import uuid

import pytest

from bouncewire.kafka_client import KafkaConsumer, KafkaProducer, KafkaSettings, PartitionLag
from reliability.support import wait_until
from tests.kafka_cluster import MakeTopics

pytestmark = pytest.mark.integration


class Listener:
    def __init__(self) -> None:
        self.assigned: list[tuple[str, int]] = []

    def on_assigned(self, partitions: list[tuple[str, int]]) -> None:
        self.assigned += partitions

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None: ...
    def on_lost(self, partitions: list[tuple[str, int]]) -> None: ...


def produce(settings: KafkaSettings, topic: str, count: int) -> None:
    with KafkaProducer(settings) as producer:
        for i in range(count):
            producer.produce(topic, b"x", key=str(i).encode())
        assert producer.flush(10) == 0


def read(consumer: KafkaConsumer, count: int) -> None:
    got = 0
    deadline = time.monotonic() + 20
    while got < count and time.monotonic() < deadline:
        got += len(consumer.consume(count - got, 0.5))
    assert got == count


def test_committed_lag_rises_while_paused_and_read_ahead_is_what_was_read_beyond_it(
    kafka_bootstrap: str, make_topics: MakeTopics
) -> None:
    (topic,) = make_topics(f"lag-{uuid.uuid4().hex[:8]}", partitions=1)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    consumer = KafkaConsumer(settings, f"g-{uuid.uuid4().hex[:8]}",
                             {"fetch.wait.max.ms": 100})
    listener = Listener()
    try:
        consumer.subscribe([topic], listener)
        produce(settings, topic, 100)
        read(consumer, 40)
        # Never committed: the distance from the log's start.
        assert consumer.lag() == {(topic, 0): PartitionLag(committed=100, read_ahead=40)}
        consumer.store({(topic, 0): 10})
        assert wait_until(lambda: consumer.lag()[(topic, 0)].committed == 90, 10)
        consumer.pause([(topic, 0)])
        time.sleep(0.5)  # no fetch in flight: the cached high watermark stops moving
        produce(settings, topic, 200)
        assert consumer.lag() == {(topic, 0): PartitionLag(committed=290, read_ahead=30)}
        consumer.resume([(topic, 0)])
        read(consumer, 260)
        consumer.store({(topic, 0): 300})
        assert wait_until(lambda: consumer.lag() == {(topic, 0): PartitionLag(0, 0)}, 10)
    finally:
        consumer.close()
