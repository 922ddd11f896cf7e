"""The bouncewire event contract: Avro schemas for email events, versioned, and their codec.

Every released schema version lives in ``schemas/avsc/<kind>/v<N>.avsc``::

    store = SchemaStore.load()
    codec = Codec(store)                      # Avro single-object encoding
    data = codec.encode("send_result", record)
    event = codec.decode(data)                # DecodedEvent(kind, record, version)

Pass a ``confluent_kafka.schema_registry.SchemaRegistryClient`` as ``Codec(store, registry)``
to write the Confluent wire format instead; decode reads both framings either way.
"""

from bouncewire.schemas._codec import (
    SINGLE_OBJECT_HEADER_SIZE,
    TIMESTAMP_MILLIS_BOUNDS,
    Codec,
    DecodedEvent,
)
from bouncewire.schemas._registry import CONFLUENT_HEADER_SIZE, RegistryClient, registry_client
from bouncewire.schemas._store import (
    DEFAULT_DIRECTORY,
    KINDS,
    SINGLE_OBJECT_MARKER,
    SchemaStore,
    SchemaVersion,
    crc64_avro_fingerprint,
)
from bouncewire.schemas.exceptions import (
    DECODE_REASONS,
    DecodeError,
    DecodeReason,
    EncodeError,
    RegistryError,
    SchemaError,
    SchemaLoadError,
    UnknownKindError,
)

__all__ = [
    "CONFLUENT_HEADER_SIZE",
    "Codec",
    "DECODE_REASONS",
    "DEFAULT_DIRECTORY",
    "DecodeError",
    "DecodeReason",
    "DecodedEvent",
    "EncodeError",
    "KINDS",
    "RegistryClient",
    "RegistryError",
    "SINGLE_OBJECT_HEADER_SIZE",
    "SINGLE_OBJECT_MARKER",
    "SchemaError",
    "SchemaLoadError",
    "SchemaStore",
    "SchemaVersion",
    "TIMESTAMP_MILLIS_BOUNDS",
    "UnknownKindError",
    "crc64_avro_fingerprint",
    "registry_client",
]
