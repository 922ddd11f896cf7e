"""KafkaProducer's produce loop (poll cadence, full local queue) against a fake client, and
delivery reports that count failures only, against librdkafka itself and the real broker."""

from __future__ import annotations

import os
from typing import Any

import pytest

import bouncewire.kafka_client._producer as producer_module
from bouncewire.kafka_client import DeliveryError, DeliveryReport, KafkaProducer, KafkaSettings
from tests.kafka_cluster import MakeTopics

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1")


class FakeClient:
    """Records produce/poll calls; raises BufferError for the first `full_for` produces."""

    def __init__(self, full_for: int = 0) -> None:
        self.full_for = full_for
        self.calls: list[tuple[Any, ...]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, **kwargs: Any) -> None:
        if self.full_for > 0:
            self.full_for -= 1
            raise BufferError("Local: Queue full")
        self.calls.append(("produce", topic, value, key, kwargs))

    def poll(self, timeout: float) -> int:
        self.calls.append(("poll", timeout))
        return 0

    def __len__(self) -> int:
        return 7


def adapter(client: FakeClient, **options: Any) -> KafkaProducer:
    producer = KafkaProducer(SETTINGS, **options)
    producer._client = client  # type: ignore[assignment]  # the fake stands in for librdkafka
    return producer


def produce_calls(producer: KafkaProducer, count: int) -> None:
    for i in range(count):
        producer.produce("t", b"v%d" % i, key=b"k")


@pytest.mark.parametrize(
    ("poll_every", "produced", "polls_after"),
    [(1, 3, [1, 2, 3]), (3, 7, [3, 6]), (100, 99, []), (100, 200, [100, 200])],
)
def test_poll_runs_after_every_nth_produce(
    poll_every: int, produced: int, polls_after: list[int]
) -> None:
    client = FakeClient()
    produce_calls(adapter(client, poll_every=poll_every), produced)
    seen, polls = 0, []
    for call in client.calls:
        if call[0] == "produce":
            seen += 1
        else:
            assert call == ("poll", 0)
            polls.append(seen)
    assert polls == polls_after


def test_full_queue_is_served_by_polling_then_the_record_produced() -> None:
    client = FakeClient(full_for=2)
    producer = adapter(client, poll_every=3)
    produce_calls(producer, 4)
    kinds = [call[0] if call[0] == "produce" else call for call in client.calls]
    # Two waits for room, then the first record; the waits count as polls, so the cadence
    # restarts: the 3rd record after them triggers the next poll(0).
    assert kinds == [("poll", 0.05), ("poll", 0.05), "produce", "produce", "produce",
                     ("poll", 0), "produce"]
    assert [call[2] for call in client.calls if call[0] == "produce"] == [
        b"v0", b"v1", b"v2", b"v3"]


def test_queue_that_stays_full_raises_a_retriable_delivery_error() -> None:
    producer = adapter(FakeClient(full_for=10**6), buffer_wait_s=0.0)
    with pytest.raises(DeliveryError) as info:
        producer.produce("t", b"v")
    assert info.value.retriable


def test_unused_keywords_reach_the_client_at_their_defaults() -> None:
    client = FakeClient()
    producer = adapter(client)
    producer.produce("t", b"v")
    producer.produce("t", b"w", key=b"k", timestamp_ms=5, headers=[("h", b"1")],
                     on_delivery=print)
    sent = [call[3:] for call in client.calls if call[0] == "produce"]
    assert sent == [
        (None, {"on_delivery": None, "timestamp": 0, "headers": None}),
        (b"k", {"on_delivery": print, "timestamp": 5, "headers": [("h", b"1")]}),
    ]
    assert producer.outstanding == 7


def test_poll_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="poll_every"):
        KafkaProducer(SETTINGS, poll_every=0)


@pytest.mark.parametrize("failures_only", [False, True])
def test_report_failures_only_is_the_librdkafka_setting(
    failures_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    confs: list[dict[str, Any]] = []
    monkeypatch.setattr(producer_module.confluent_kafka, "Producer", confs.append)
    _ = KafkaProducer(SETTINGS, {"client.id": "x"}, report_failures_only=failures_only).client
    assert confs[0].get("delivery.report.only.error", False) is failures_only
    assert confs[0]["client.id"] == "x"


class FakeError:
    def name(self) -> str:
        return "_MSG_TIMED_OUT"

    def str(self) -> str:
        return "Local: Message timed out"


class FakeMessage:
    def topic(self) -> str:
        return "events"


@pytest.mark.parametrize(
    ("outcomes", "failed", "errors"),
    [([None, None], 0, 0), ([FakeError(), None], 1, 1), ([FakeError()] * 7, 7, 5)],
)
def test_delivery_report_counts_failures_and_keeps_five_errors(
    outcomes: list[Any], failed: int, errors: int
) -> None:
    report = DeliveryReport(sent=10)
    for err in outcomes:
        report(err, FakeMessage())
    assert (report.failed, len(report.errors)) == (failed, errors)
    assert report.acked(outstanding=2) == 10 - failed - 2
    assert all(e == "events: _MSG_TIMED_OUT (Local: Message timed out)" for e in report.errors)


def test_failures_only_still_reports_every_failure_from_librdkafka() -> None:
    """No broker at all: every record times out and each failure reaches the report."""
    report = DeliveryReport()
    producer = KafkaProducer(SETTINGS, {"message.timeout.ms": 300}, poll_every=100,
                             report_failures_only=True)
    for i in range(3):
        producer.produce("nowhere", b"v%d" % i, on_delivery=report)
        report.sent += 1
    assert producer.flush(15) == 0
    assert report.failed == 3 and report.acked(producer.outstanding) == 0
    assert report.errors[0].startswith("nowhere: _MSG_TIMED_OUT")


@pytest.mark.integration
def test_failures_only_on_the_broker_counts_acks_by_subtraction(
    kafka_bootstrap: str, make_topics: MakeTopics, unique_name: Any
) -> None:
    """Records the broker refuses (over the topic's size limit) are the only ones reported."""
    [topic] = make_topics(unique_name("small"), partitions=1,
                          config={"max.message.bytes": "2000"})
    report = DeliveryReport()
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=kafka_bootstrap), poll_every=100,
                             report_failures_only=True)
    for i in range(20):
        producer.produce(topic, b"small %d" % i, on_delivery=report)
    assert producer.flush(30) == 0
    for _ in range(2):  # random bytes: lz4 cannot shrink them under the limit
        producer.produce(topic, os.urandom(5000), on_delivery=report)
    assert producer.flush(30) == 0
    report.sent = 22
    assert (report.failed, report.acked(producer.outstanding)) == (2, 20)
    assert "MSG_SIZE_TOO_LARGE" in report.errors[0]
