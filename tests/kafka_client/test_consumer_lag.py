"""KafkaConsumer.lag on the real broker: the committed lag (what kafka-consumer-groups.sh shows)
keeps rising while a partition is paused, and the read-ahead is what was read beyond it. lag()
answers {} when the cluster is slow, so the tests ask until the expected answer comes (or not,
within a bound)."""

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


Lags = dict[tuple[str, int], PartitionLag]


def answer(consumer: KafkaConsumer, expected: Lags) -> Lags:
    """The first answer equal to `expected` within 10 s, else the last one."""
    seen: list[Lags] = [{}]

    def answered() -> bool:
        lags = consumer.lag()
        seen[0] = lags or seen[0]  # {} = not answered yet
        return seen[0] == expected

    wait_until(answered, 10, interval=0.05)
    return seen[0]


def test_lag_is_not_held_up_by_fetch_long_polls(
    kafka_bootstrap: str, make_topics: MakeTopics
) -> None:
    """The consumer's own connections are busy with fetch long-polls (2 s here): a query
    queued behind one would stall the loop for as long."""
    (topic,) = make_topics(f"lag-{uuid.uuid4().hex[:8]}", partitions=6)
    consumer = KafkaConsumer(KafkaSettings(bootstrap_servers=kafka_bootstrap),
                             f"g-{uuid.uuid4().hex[:8]}", {"fetch.wait.max.ms": 2000})
    try:
        consumer.subscribe([topic], Listener())
        assert wait_until(lambda: len(consumer.consume(1, 0.2)) >= 0
                          and len(consumer.lag()) == 6, 20)
        took = []
        for _ in range(20):
            started = time.perf_counter()
            consumer.lag()
            took.append(time.perf_counter() - started)
            consumer.consume(10, 0.05)
        assert max(took) < 0.5, took
    finally:
        consumer.close()


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
        expected = {(topic, 0): PartitionLag(committed=100, read_ahead=40)}
        assert answer(consumer, expected) == expected
        consumer.store({(topic, 0): 10})
        expected = {(topic, 0): PartitionLag(committed=90, read_ahead=30)}
        assert answer(consumer, expected) == expected
        consumer.pause([(topic, 0)])
        time.sleep(0.5)  # no fetch in flight: the cached high watermark stops moving
        produce(settings, topic, 200)
        expected = {(topic, 0): PartitionLag(committed=290, read_ahead=30)}
        assert answer(consumer, expected) == expected
        consumer.resume([(topic, 0)])
        read(consumer, 260)
        consumer.store({(topic, 0): 300})
        expected = {(topic, 0): PartitionLag(0, 0)}
        assert answer(consumer, expected) == expected
    finally:
        consumer.close()
