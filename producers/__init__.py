"""Publishing SMTP send results and unsubscribe clicks to Kafka as Avro.

Public API::

    EventPublisher          -- validate → encode → produce; failures surface from flush()
    parse_send_result, parse_unsubscribe, parse_lines, BadLine
    TrafficGenerator, paced -- synthetic traffic for demos and benchmarks
    CapturingSender, RelayConfig, SendOutcome -- send through an SMTP relay, publish the results
    exceptions              -- InvalidEventError, PublishError
"""

from producers.events import parse_send_result, parse_unsubscribe
from producers.exceptions import InvalidEventError, ProducerError, PublishError
from producers.jsonlines import BadLine, parse_lines
from producers.publisher import EventPublisher, record_key
from producers.simulate import SimulatedEvent, TrafficGenerator, paced
from producers.smtp_capture import CapturingSender, RelayConfig, SendOutcome

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
