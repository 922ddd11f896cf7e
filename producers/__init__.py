"""Publishing SMTP send results and unsubscribe clicks to Kafka as Avro.

Public API::

    EventPublisher          -- validate → encode → produce; failures surface from flush()
    parse_send_result, parse_unsubscribe, parse_lines, BadLine
    TrafficGenerator, paced -- synthetic traffic for demos and benchmarks
    CapturingSender, RelayConfig, SendOutcome -- send through an SMTP relay, publish the results
    exceptions              -- InvalidEventError, PublishError
"""

from bouncewire.producers.events import parse_send_result, parse_unsubscribe
from bouncewire.producers.exceptions import InvalidEventError, ProducerError, PublishError
from bouncewire.producers.jsonlines import BadLine, parse_lines
from bouncewire.producers.publisher import EventPublisher, record_key
from bouncewire.producers.simulate import SimulatedEvent, TrafficGenerator, paced
from bouncewire.producers.smtp_capture import CapturingSender, RelayConfig, SendOutcome

__all__ = [
    "BadLine",
    "CapturingSender",
    "EventPublisher",
    "InvalidEventError",
    "ProducerError",
    "PublishError",
    "RelayConfig",
    "SendOutcome",
    "SimulatedEvent",
    "TrafficGenerator",
    "paced",
    "parse_lines",
    "parse_send_result",
    "parse_unsubscribe",
    "record_key",
]
