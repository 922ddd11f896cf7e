"""KafkaConsumer's manual-assignment API (bounded scans): plain (topic, partition) keys and
ints in, kafka_client errors out; checked on the real broker, plus the pure timestamp helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import confluent_kafka
import pytest

from bouncewire.kafka_client import (
    ConsumeError,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    record_timestamp_ms,
)
from tests.kafka_cluster import MakeTopics

T0_MS = 1_700_000_000_000
SCAN = {"enable.auto.commit": False, "enable.partition.eof": True}


class FakeRecord:
    def __init__(self, kind: int, value: int) -> None:
        self._stamp = (kind, value)

    def timestamp(self) -> tuple[int, int]:
        return self._stamp


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (confluent_kafka.TIMESTAMP_CREATE_TIME, T0_MS, T0_MS),
    (confluent_kafka.TIMESTAMP_LOG_APPEND_TIME, 0, 0),
    (confluent_kafka.TIMESTAMP_NOT_AVAILABLE, T0_MS, None),
    (confluent_kafka.TIMESTAMP_CREATE_TIME, -1, None),
])
def test_record_timestamp_ms(kind: int, value: int, expected: int | None) -> None:
    assert record_timestamp_ms(FakeRecord(kind, value)) == expected


def fill(bootstrap: str, topic: str, stamps_ms: list[int]) -> None:
    """One record per timestamp, all on partition 0."""
    with KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap)) as producer:
        for i, stamp in enumerate(stamps_ms):
            producer.produce(topic, b"v%d" % i, key=b"k", timestamp_ms=stamp)


def scan_all(consumer: KafkaConsumer, wanted: set[tuple[str, int]]) -> list[Any]:
    """Consume until every partition of `wanted` reported its end."""
    read: list[Any] = []
    ended: set[tuple[str, int]] = set()
    for _ in range(100):
        messages, reached_eof = consumer.consume_scan(100, 0.5)
        read.extend(messages)
        ended |= reached_eof
        if wanted <= ended:
            return read
    raise AssertionError(f"no end-of-partition for {wanted - ended}")


@pytest.fixture
def scanner(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Iterator[KafkaConsumer]:
    consumer = KafkaConsumer(KafkaSettings(bootstrap_servers=kafka_bootstrap),
                             unique_name("g"), SCAN)
    yield consumer
    consumer.close()


@pytest.mark.integration
def test_plan_and_scan_a_partition_range(
    kafka_bootstrap: str, make_topics: MakeTopics, unique_name: Callable[[str], str],
    scanner: KafkaConsumer
) -> None:
    (topic,) = make_topics(unique_name("t"), partitions=2)
    fill(kafka_bootstrap, topic, [T0_MS + i * 1000 for i in range(10)])
    parts = scanner.partitions_of([topic])
    assert parts == [(topic, 0), (topic, 1)]
    marks = scanner.watermarks(parts)
    filled = next(k for k, (_low, high) in marks.items() if high == 10)
    empty = next(k for k in parts if k != filled)
    assert marks == {filled: (0, 10), empty: (0, 0)}
    assert scanner.offsets_for_time(parts, T0_MS + 3500) == {filled: 4, empty: None}
    assert scanner.offsets_for_time([filled], T0_MS + 99_000) == {filled: None}

    scanner.assign_at({filled: 6, empty: 0})
    read = scan_all(scanner, {filled, empty})
    assert [m.offset() for m in read] == [6, 7, 8, 9]
    assert [record_timestamp_ms(m) for m in read] == [T0_MS + i * 1000 for i in range(6, 10)]


@pytest.mark.integration
def test_committed_offsets_round_trip(
    make_topics: MakeTopics, unique_name: Callable[[str], str], scanner: KafkaConsumer
) -> None:
    (topic,) = make_topics(unique_name("t"), partitions=2)
    parts = scanner.partitions_of([topic])
    assert scanner.committed_offsets(parts) == {(topic, 0): None, (topic, 1): None}
    scanner.commit_offsets({(topic, 1): 0}, asynchronous=False)
    assert scanner.committed_offsets(parts) == {(topic, 0): None, (topic, 1): 0}
    scanner.commit_offsets({}, asynchronous=False)  # nothing to commit is no error


@pytest.mark.integration
def test_a_missing_topic_is_a_consume_error(
    unique_name: Callable[[str], str], scanner: KafkaConsumer
) -> None:
    missing = unique_name("missing")
    with pytest.raises(ConsumeError, match="does not exist"):
        scanner.partitions_of([missing])
