"""A real `mail serve` (aiosmtpd handler, real parser, acknowledged publisher) on loopback,
publishing to the session broker; what it published is read back exactly (it answers 250 only
after the acknowledgement, so end offsets taken after the reply include its records)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bouncewire._mail import parse_received
from bouncewire.kafka_client import KafkaProducer, KafkaSettings, TopicNames, create_topics
from bouncewire.producers.acks import AcknowledgedPublisher, topics_by_kind
from bouncewire.producers.mail.metrics import MailMetrics
from bouncewire.producers.mail.server import Listener, MailHandler, ServeConfig, running_server
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring
from bouncewire.schemas import Codec, SchemaStore
from reliability.harness import wait_for_leaders
from tests.producers.unsubscribe.unsubscribe_harness import PARTITIONS, LiveService, free_port

DOMAIN = "bounces.test"
RING = Keyring([("m2", b"mail-serve-secret-" + b"s" * 16)])
FORGER = Keyring([("m2", b"not-the-real-key-" + b"f" * 16)])
MAX_MESSAGE_BYTES = 256 * 1024


def verp_address(email: str, campaign: str = "camp-7", meta: str = "meta-7") -> str:
    return signed_address(RING, Claims(email, campaign, meta), DOMAIN, "bounce")


@dataclass
class LiveMail:
    port: int
    topics: TopicNames
    readers: dict[str, LiveService]
    registry: CollectorRegistry
    quarantine: Path

    def offsets(self) -> dict[str, list[int]]:
        return {kind: reader.end_offsets() for kind, reader in self.readers.items()}

    def published_since(self, start: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
        return {kind: [reader.decode(m) for m in reader.published_since(start[kind])]
                for kind, reader in self.readers.items()}

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def make_topics(bootstrap: str) -> TopicNames:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(f"mail-sr-{suffix}", f"mail-un-{suffix}", f"mail-dlq-{suffix}")
    create_topics(KafkaSettings(bootstrap_servers=bootstrap),
                  [topics.send_results, topics.unsubscribes], partitions=PARTITIONS)
    wait_for_leaders(bootstrap, [topics.send_results, topics.unsubscribes])
    return topics


@contextmanager
def serving(bootstrap: str, topics: TopicNames, quarantine: Path, *,
            ack_timeout_s: float = 10.0) -> Iterator[LiveMail]:
    codec = Codec(SchemaStore.load())
    ack_ms = max(1000, int(ack_timeout_s * 1000))
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap), {
        "linger.ms": 5, "message.timeout.ms": ack_ms,
        "socket.connection.setup.timeout.ms": ack_ms, "reconnect.backoff.max.ms": 500})
    publisher = AcknowledgedPublisher(producer, codec, topics_by_kind(topics), prechecked=True)
    registry = CollectorRegistry()
    config = ServeConfig(frozenset({DOMAIN}), RING, ack_timeout_s=ack_timeout_s,
                         quarantine=quarantine)
    handler = MailHandler(config, parse_received, publisher, MailMetrics.create(registry))
    port = free_port()
    readers = {kind: LiveService("", topic, bootstrap, codec) for kind, topic in
               (("send_result", topics.send_results), ("unsubscribe", topics.unsubscribes))}
    with running_server(handler, Listener("127.0.0.1", port, MAX_MESSAGE_BYTES)):
        try:
            yield LiveMail(port, topics, readers, registry, quarantine)
        finally:
            publisher.close(2.0)


@pytest.fixture(scope="module")
def live_mail(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LiveMail]:
    with serving(kafka_bootstrap, make_topics(kafka_bootstrap),
                 tmp_path_factory.mktemp("quarantine")) as live:
        yield live
