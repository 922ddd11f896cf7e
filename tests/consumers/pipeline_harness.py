"""Helpers for the consumer's integration tests: topics, publishing, running the pipeline
in a thread or as a real `bouncewire consume` process, and reading topics back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from bouncewire.consumers.delivery import RetryPolicy, build_http_client
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.pipeline import CallbackPipeline, PipelineConfig
from bouncewire.kafka_client import (
    KafkaProducer,
    KafkaSettings,
    PerTopicConsumer,
    Secret,
    TopicNames,
)
from bouncewire.kafka_client import create_topics as admin_create_topics
from bouncewire.producers import EventPublisher, parse_send_result, parse_unsubscribe
from bouncewire.schemas import Codec, SchemaStore
from reliability.harness import committed_offsets as committed_offsets
from reliability.harness import committed_total as committed_total
from reliability.harness import end_offsets as end_offsets
from reliability.support import wait_until as wait_until

FAST_RETRY = RetryPolicy(request_timeout_s=2.0, connect_timeout_s=1.0, backoff_initial_s=0.05,
                         backoff_max_s=0.5, max_retry_after_s=5.0, max_retry_time_s=30.0)
NOW_S = int(time.time())


def topics_for(bootstrap: str, unique_name: Callable[[str], str], partitions: int = 3,
               ) -> TopicNames:
    topics = TopicNames(unique_name("sr"), unique_name("un"), unique_name("dlq"))
    admin_create_topics(KafkaSettings(bootstrap_servers=bootstrap),
                        [topics.send_results, topics.unsubscribes, topics.dlq],
                        partitions=partitions)
    return topics


def bounce(email: str, *, code: int = 550, enhanced: str | None = "5.1.1",
           ts: int = NOW_S, event_id: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"email": email, "smtp_code": code, "ts": ts}
    if enhanced:
        fields["enhanced_code"] = enhanced
    if event_id:
        fields["event_id"] = event_id
    return parse_send_result(fields, now_ms=ts * 1000)


def soft(email: str, ts: int = NOW_S) -> dict[str, Any]:
    return bounce(email, code=452, enhanced="4.2.2", ts=ts)


def delivered(email: str, ts: int = NOW_S) -> dict[str, Any]:
    return bounce(email, code=250, enhanced="2.0.0", ts=ts)


def unsubscribe(email: str, ts: int = NOW_S, source: str = "api") -> dict[str, Any]:
    return parse_unsubscribe({"email": email, "ts": ts, "source": source}, now_ms=ts * 1000)


def publish(bootstrap: str, topics: TopicNames, kind: str, records: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap))
    with EventPublisher(producer, Codec(SchemaStore.load()), topics) as publisher:
        for record in records:
            publisher.publish(kind, record)


def produce_raw(bootstrap: str, topic: str, values: list[bytes], key: bytes = b"k") -> None:
    with KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap)) as producer:
        for value in values:
            producer.produce(topic, value, key=key)


def config_for(topics: TopicNames, bounce_url: str, unsubscribe_url: str,
               **overrides: Any) -> PipelineConfig:
    base = PipelineConfig(bounce_url=Secret(bounce_url), unsubscribe_url=Secret(unsubscribe_url),
                          topics=topics, group_id=f"g-{uuid.uuid4().hex[:8]}", linger_s=0.2,
                          retry=FAST_RETRY, drain_timeout_s=10.0)
    return replace(base, **overrides)


class ThreadedPipeline:
    """CallbackPipeline running in a background thread, as `bouncewire consume` runs it."""

    def __init__(self, bootstrap: str, config: PipelineConfig,
                 consumer_config: dict[str, Any] | None = None) -> None:
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        self.registry = CollectorRegistry()
        self.pipeline = CallbackPipeline(
            config, PerTopicConsumer(settings, config.group_id, consumer_config),
            KafkaProducer(settings), Codec(SchemaStore.load()),
            build_http_client(config.retry), ConsumerMetrics.create(self.registry))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.pipeline.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def __enter__(self) -> ThreadedPipeline:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.pipeline.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "pipeline did not stop in time"
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc: object) -> None:
        self.stop()



def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Every record of `topic` from the beginning, waiting until at least `expected` arrived."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is None:
                    records.append(msg)
            if len(records) >= expected and expected > 0:
                # a little longer to catch records beyond what was expected
                records.extend(m for m in consumer.consume(500, 1.0) if m.error() is None)
                break
    finally:
        consumer.close()
    return records


@contextmanager
def consumer_process(bootstrap: str, topics: TopicNames, group: str, bounce_url: str,
                     unsubscribe_url: str, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `bouncewire consume` process; killed at exit if still running."""
    argv = [sys.executable, "-m", "bouncewire", "consume", "--bootstrap-servers", bootstrap,
            "--send-results-topic", topics.send_results, "--unsubscribes-topic",
            topics.unsubscribes, "--dlq-topic", topics.dlq, "--group-id", group,
            "--bounce-callback-url", bounce_url, "--unsubscribe-callback-url", unsubscribe_url,
            "--linger-ms", "200", "--request-timeout", "2", "--backoff-max", "0.5",
            "--backoff-initial", "0.05", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
