"""AcknowledgedPublisher: each caller hears about its own records only. The real broker paths
are in the unsubscribe, gateway and mail integration tests; here a scripted producer decides
each record's outcome so that concurrent failures can be arranged exactly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from bouncewire.kafka_client import KafkaProducer, KafkaSettings
from bouncewire.producers.acks import AcknowledgedPublisher, OutgoingRecord
from bouncewire.producers.exceptions import PublishError
from bouncewire.schemas import Codec, SchemaStore

CODEC = Codec(SchemaStore.load())
TOPICS = {"send_result": "results", "unsubscribe": "unsubscribes"}


class _Refusal:
    def name(self) -> str:
        return "MSG_SIZE_TOO_LARGE"

    def str(self) -> str:
        return "refused (scripted)"


class ScriptedProducer:
    """Answers each record at the next poll: refused if its email is in `refuse`, never if in
    `silent`, else acknowledged."""

    def __init__(self, refuse: set[str] = frozenset(), silent: set[str] = frozenset()) -> None:
        self.refuse, self.silent = refuse, silent
        self.pending: list[tuple[str, Any]] = []
        self.topics: list[str] = []
        self.lock = threading.Lock()
        self.client = self  # the real adapter's lazily made librdkafka client

    def produce(self, topic: str, value: bytes, *, key: bytes, timestamp_ms: int,
                on_delivery: Any) -> None:
        email = CODEC.decode(value).record["email"]
        with self.lock:
            self.topics.append(topic)
            if email not in self.silent:
                self.pending.append((email, on_delivery))

    def poll(self, timeout: float) -> int:
        with self.lock:
            answered, self.pending = self.pending, []
        for email, callback in answered:
            callback(_Refusal() if email in self.refuse else None, None)
        threading.Event().wait(min(timeout, 0.01))
        return len(answered)

    def flush(self, timeout: float) -> int:
        return len(self.pending)


def unsubscribe(email: str) -> OutgoingRecord:
    record = {"event_id": "6f1c0b1e-5d4a-5b7e-9c3f-2a1b0c9d8e7f", "email": email,
              "event_time": 1_700_000_000_000, "source": "one_click", "campaign_id": None,
              "meta": None}
    return OutgoingRecord("unsubscribe", record)


def publisher_on(producer: ScriptedProducer) -> AcknowledgedPublisher:
    return AcknowledgedPublisher(cast(KafkaProducer, producer), CODEC, TOPICS)


def test_one_caller_is_never_told_about_anothers_failure() -> None:
    producer = ScriptedProducer(refuse={"bad@example.com"})
    publisher = publisher_on(producer)
    emails = ["bad@example.com" if i % 4 == 0 else f"ok{i}@example.com" for i in range(40)]

    def outcome(email: str) -> str:
        try:
            publisher.publish_all([unsubscribe(email)], timeout=5)
        except PublishError as exc:
            return str(exc)
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = dict(zip(emails, pool.map(outcome, emails), strict=True))
    publisher.close(1)
    assert {e: o for e, o in outcomes.items() if o != "ok"}.keys() == {"bad@example.com"}
    assert "MSG_SIZE_TOO_LARGE" in outcomes["bad@example.com"]


def test_all_of_a_callers_records_must_be_acknowledged() -> None:
    publisher = publisher_on(ScriptedProducer(refuse={"b@example.com"}))
    with pytest.raises(PublishError, match="refused"):
        publisher.publish_all([unsubscribe("a@example.com"), unsubscribe("b@example.com")], 5)
    publisher.close(1)


def test_an_unanswered_record_times_out_at_the_deadline() -> None:
    publisher = publisher_on(ScriptedProducer(silent={"lost@example.com"}))
    with pytest.raises(PublishError, match="no acknowledgement within 0.2s"):
        publisher.publish_one("unsubscribe", unsubscribe("lost@example.com").record, 0.2)
    publisher.close(1)


def test_each_kind_goes_to_its_topic() -> None:
    producer = ScriptedProducer()
    publisher = publisher_on(producer)
    publisher.publish_one("unsubscribe", unsubscribe("a@example.com").record, 5)
    publisher.close(1)
    assert producer.topics == ["unsubscribes"]


class CountingProducer(KafkaProducer):
    polls = 0

    def poll(self, timeout: float = 0.0) -> int:
        self.polls += 1
        return super().poll(timeout)


def test_the_poller_waits_in_poll_from_the_start() -> None:
    """KafkaProducer makes its client on first use and poll() returns at once without one: the
    poller would spin (starving the server's threads) until the first produce."""
    # No broker there, and none needed: nothing is produced (log_level 0: no connect noise).
    producer = CountingProducer(KafkaSettings(bootstrap_servers="127.0.0.1:9"), {"log_level": 0})
    publisher = AcknowledgedPublisher(producer, CODEC, TOPICS)
    time.sleep(0.5)
    publisher.close(0.5)
    # About ten 50 ms waits, a few more if connection errors end some early; spinning: thousands.
    assert producer.polls < 100
