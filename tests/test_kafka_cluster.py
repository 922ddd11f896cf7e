"""The session broker carries real records, and deploy/kafka/kafka.sh manages a broker's life.

No mocks: the integration tests talk to a real Kafka (see tests/kafka_cluster.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from hypothesis import given
from hypothesis import strategies as st

from tests.kafka_cluster import (
    REPO_ROOT,
    MakeTopics,
    free_port_pair,
    port_pair_is_free,
    run_kafka_sh,
    topic_safe,
)

KAFKA_TOPIC_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
CONSUME_DEADLINE_S = 60
SCRIPT_STEP_TIMEOUT_S = 300


# ------------------------------------------------------------------ names (no broker)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("test_roundtrip", "test_roundtrip"),
        ("test_case[3-hard bounce]", "test_case-3-hard-bounce"),
        ("a/b\\c:d", "a-b-c-d"),
        ("émoji✓name", "moji-name"),
        ("---x---", "x"),
    ],
)
def test_topic_safe_replaces_illegal_characters(raw: str, expected: str) -> None:
    assert topic_safe(raw) == expected


@given(st.text())
def test_topic_safe_output_is_always_a_legal_topic_fragment(raw: str) -> None:
    assert set(topic_safe(raw)) <= KAFKA_TOPIC_CHARS


def test_unique_name_is_unique_legal_and_names_the_test(unique_name: Callable[[str], str]) -> None:
    names = {unique_name("send results") for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.startswith("send-results-test_unique_name_is_unique_legal_and_names_the_test-")
        assert set(name) <= KAFKA_TOPIC_CHARS and len(name) <= 249


def test_free_port_pair_gives_two_free_adjacent_ports() -> None:
    port = free_port_pair()
    assert port_pair_is_free(port)


# ------------------------------------------------------------------ the session broker


def consume(bootstrap: str, topic: str, group: str, count: int) -> list[Message]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    received: list[Message] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received.append(message)
    finally:
        consumer.close()
    return received


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[KafkaError] = []

    def record_failure(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for key, value in records:
        producer.produce(topic, value, key, on_delivery=record_failure)
    assert producer.flush(30) == 0
    assert failures == []


@pytest.mark.integration
def test_records_round_trip_through_the_session_broker(
    kafka_bootstrap: str, unique_name: Callable[[str], str], make_topics: MakeTopics
) -> None:
    (topic,) = make_topics(unique_name("roundtrip"), partitions=3)
    records = [(f"user{i % 3}@example.test".encode(), f"event-{i}".encode()) for i in range(9)]
    produce(kafka_bootstrap, topic, records)

    received = consume(kafka_bootstrap, topic, unique_name("group"), len(records))

    assert sorted((m.key(), m.value()) for m in received) == sorted(records)
    partitions_by_key: dict[bytes | None, set[int | None]] = {}
    for message in received:
        partitions_by_key.setdefault(message.key(), set()).add(message.partition())
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())


# ------------------------------------------------------------------ kafka.sh life cycle


def broker_pid(port: int) -> int:
    return int((REPO_ROOT / ".kafka" / str(port) / "kafka.pid").read_text())


def is_running_kafka(pid: int) -> bool:
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def topic_names(bootstrap: str) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return set(admin.list_topics(timeout=20).topics)


@pytest.fixture
def script_port() -> Iterator[int]:
    """A broker of its own for the script test, wiped afterwards whatever happened."""
    port = free_port_pair()
    try:
        yield port
    finally:
        run_kafka_sh("reset", port, SCRIPT_STEP_TIMEOUT_S)


@pytest.mark.integration
def test_kafka_sh_up_is_idempotent_and_down_keeps_data(
    script_port: int, unique_name: Callable[[str], str]
) -> None:
    bootstrap = run_kafka_sh("up", script_port, SCRIPT_STEP_TIMEOUT_S).splitlines()[-1]
    assert bootstrap == f"127.0.0.1:{script_port}"
    first_pid = broker_pid(script_port)
    assert run_kafka_sh("up", script_port, SCRIPT_STEP_TIMEOUT_S).splitlines()[-1] == bootstrap
    assert broker_pid(script_port) == first_pid

    topic = unique_name("kept")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    produce(bootstrap, topic, [(b"k", b"survives a restart")])

    run_kafka_sh("down", script_port, SCRIPT_STEP_TIMEOUT_S)
    assert not is_running_kafka(first_pid)
    with pytest.raises(RuntimeError):
        run_kafka_sh("status", script_port, SCRIPT_STEP_TIMEOUT_S)

    run_kafka_sh("up", script_port, SCRIPT_STEP_TIMEOUT_S)
    restarted_pid = broker_pid(script_port)
    assert restarted_pid != first_pid
    assert topic in topic_names(bootstrap)
    (message,) = consume(bootstrap, topic, unique_name("group"), 1)
    assert message.value() == b"survives a restart"

    run_kafka_sh("reset", script_port, SCRIPT_STEP_TIMEOUT_S)
    assert not is_running_kafka(restarted_pid)
    assert not (REPO_ROOT / ".kafka" / str(script_port)).exists()
