"""Exceptions raised by the ``schemas`` package.

Every error the package raises derives from :class:`SchemaError`; errors from
fastavro and confluent_kafka are translated where they are caught (``raise ... from exc``)
so callers never need to import a vendor's exception types::

    SchemaError
    ├── SchemaLoadError      an .avsc file or the schema directory is unusable (deploy bug)
    ├── UnknownKindError     an event kind outside KINDS was asked for (programming error)
    ├── EncodeError          a record does not fit the writer schema; .field names the field
    ├── DecodeError          bytes are not a readable event; .reason says why (permanent:
    │                        the message belongs in the dead-letter topic)
    └── RegistryError        the schema registry failed or refused a call (usually retriable)

No message contains payload bytes, field values or addresses: they may be personal data.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "DECODE_REASONS",
    "DecodeError",
    "DecodeReason",
    "EncodeError",
    "RegistryError",
    "SchemaError",
    "SchemaLoadError",
    "UnknownKindError",
]

DecodeReason = Literal[
    "empty",
    "unknown_framing",
    "unknown_fingerprint",
    "truncated",
    "invalid_body",
    "unknown_schema_id",
    "no_registry",
]

DECODE_REASONS: Final[tuple[DecodeReason, ...]] = (
    "empty",
    "unknown_framing",
    "unknown_fingerprint",
    "truncated",
    "invalid_body",
    "unknown_schema_id",
    "no_registry",
)


class SchemaError(Exception):
    """Root of every error raised by the ``schemas`` package."""


class SchemaLoadError(SchemaError):
    """The schema directory or one of its .avsc files cannot be used."""


class UnknownKindError(SchemaError, LookupError):
    """An event kind that is not one of ``schemas.KINDS``."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown event kind {kind!r}")
        self.kind = kind


class EncodeError(SchemaError):
    """A record does not fit the writer schema of its kind.

    ``field`` is the name of the offending field, or None when the record as a whole is wrong
    (for example not a dict).
    """

    def __init__(self, kind: str, field: str | None, problem: str) -> None:
        where = f"field {field!r}" if field is not None else "record"
        super().__init__(f"{kind}: {where}: {problem}")
        self.kind = kind
        self.field = field
        self.problem = problem


class DecodeError(SchemaError):
    """Bytes that are not a readable event; ``reason`` is one of ``DECODE_REASONS``."""

    def __init__(self, reason: DecodeReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: DecodeReason = reason


class RegistryError(SchemaError):
    """The schema registry failed or refused a call (network, auth, server error)."""
