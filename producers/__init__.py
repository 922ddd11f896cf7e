"""Publishing SMTP send results and unsubscribe clicks to Kafka as Avro.

Public API (what a service imports to publish from Python; README "Install as a package")::

    EventPublisher          -- connect(settings, topics), publish_send_result / _unsubscribe;
                               failures surface from flush() (or leaving its `with` block)
    KafkaSettings, TopicNames, Secret -- what connect() takes (re-exported from kafka_client)
    BrokerUnavailableError  -- connect() found no broker
    parse_send_result, parse_unsubscribe, parse_lines, BadLine
    TrafficGenerator, paced -- synthetic traffic for demos and benchmarks
    CapturingSender, RelayConfig, SendOutcome -- send through an SMTP relay, publish the results
    exceptions              -- InvalidEventError, PublishError
"""

from bouncewire.kafka_client import BrokerUnavailableError, KafkaSettings, Secret, TopicNames
from bouncewire.producers.events import parse_send_result, parse_unsubscribe
from bouncewire.producers.exceptions import InvalidEventError, ProducerError, PublishError
from bouncewire.producers.jsonlines import BadLine, parse_lines
from bouncewire.producers.publisher import EventPublisher, record_key
from bouncewire.producers.simulate import SimulatedEvent, TrafficGenerator, paced
from bouncewire.producers.smtp_capture import CapturingSender, RelayConfig, SendOutcome

__all__ = [
    "BadLine",
    "BrokerUnavailableError",
    "CapturingSender",
    "EventPublisher",
    "InvalidEventError",
    "KafkaSettings",
    "ProducerError",
    "PublishError",
    "RelayConfig",
    "Secret",
    "SendOutcome",
    "SimulatedEvent",
    "TopicNames",
    "TrafficGenerator",
    "paced",
    "parse_lines",
    "parse_send_result",
    "parse_unsubscribe",
    "record_key",
]
