"""The consumer's librdkafka configuration under each group protocol (no broker: librdkafka
checks a configuration when the client is made, before it connects)."""

from __future__ import annotations

import confluent_kafka
import pytest

from bouncewire.kafka_client import GROUP_PROTOCOLS, KafkaConsumer, KafkaSettings
from bouncewire.kafka_client._consumer import (
    CLASSIC_ONLY_KEYS,
    CONSUMER_DEFAULTS,
    consumer_defaults,
)

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1")


def test_the_classic_protocol_keeps_every_default() -> None:
    assert consumer_defaults("classic") == dict(CONSUMER_DEFAULTS)
    assert consumer_defaults(None) == dict(CONSUMER_DEFAULTS)


def test_kip848_leaves_the_broker_side_settings_to_the_broker() -> None:
    defaults = consumer_defaults("consumer")
    assert CLASSIC_ONLY_KEYS.isdisjoint(defaults)
    assert defaults["enable.auto.offset.store"] is False  # what makes commits follow the work


def test_librdkafka_refuses_classic_settings_under_kip848() -> None:
    """Why consumer_defaults drops them: librdkafka will not make such a client."""
    with pytest.raises(confluent_kafka.KafkaException, match="session.timeout.ms"):
        confluent_kafka.Consumer(
            {
                "bootstrap.servers": "127.0.0.1:1",
                "group.id": "g",
                "group.protocol": "consumer",
                "session.timeout.ms": 30_000,
            }  # fmt: skip
        )


@pytest.mark.parametrize("protocol", GROUP_PROTOCOLS)
def test_a_consumer_is_made_under_each_protocol(protocol: str) -> None:
    consumer = KafkaConsumer(SETTINGS, "g", {"group.protocol": protocol})
    try:
        assert consumer.client is not None
    finally:
        consumer.close()


def test_the_protocol_may_come_from_the_settings_extra_keys() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", extra={"group.protocol": "consumer"})
    consumer = KafkaConsumer(settings, "g")
    try:
        assert consumer.client is not None
    finally:
        consumer.close()
