"""The one adapter between bouncewire and confluent-kafka, plus the settings it is built from.

Public API::

    KafkaSettings, Secret, TopicNames     -- frozen settings, loaded once by the CLI
    KafkaProducer, KafkaConsumer          -- thin, lazy wrappers over confluent-kafka
    PerTopicConsumer                      -- group consumer: one KafkaConsumer per topic
    GROUP_PROTOCOLS                       -- "classic", "consumer" (KIP-848)
    Partition, record_timestamp_ms        -- (topic, partition) key; a record's timestamp
    PartitionLag                          -- committed lag and read-ahead of one partition
    create_topics, wait_for_broker        -- admin helpers
    exceptions                            -- the error tree (see kafka_client.exceptions)
"""

from bouncewire.kafka_client._admin import create_topics, wait_for_broker
from bouncewire.kafka_client._consumer import (
    GROUP_PROTOCOLS,
    KafkaConsumer,
    Partition,
    RebalanceListener,
    record_timestamp_ms,
)
from bouncewire.kafka_client._lag import PartitionLag
from bouncewire.kafka_client._producer import DeliveryReport, KafkaProducer
from bouncewire.kafka_client._settings import KafkaSettings, Secret, TopicNames
from bouncewire.kafka_client._topic_consumers import PerTopicConsumer
from bouncewire.kafka_client.exceptions import (
    BrokerUnavailableError,
    ConsumeError,
    DeliveryError,
    KafkaClientError,
    TopicAdminError,
)

__all__ = [
    "BrokerUnavailableError",
    "ConsumeError",
    "DeliveryError",
    "DeliveryReport",
    "GROUP_PROTOCOLS",
    "KafkaClientError",
    "KafkaConsumer",
    "KafkaProducer",
    "KafkaSettings",
    "Partition",
    "PartitionLag",
    "PerTopicConsumer",
    "RebalanceListener",
    "Secret",
    "TopicAdminError",
    "TopicNames",
    "create_topics",
    "record_timestamp_ms",
    "wait_for_broker",
]
