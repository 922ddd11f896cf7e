"""Encode and decode events: Avro single-object encoding, or Confluent framing with a registry.

Hot path: every schema is parsed when the codec is built; ``encode`` is a few dict checks plus
one ``fastavro.schemaless_writer`` call, ``decode`` a dict lookup on the header plus one call of
a reader compiled from the writer's schema (``schemas._compiled_reader``: about half the CPU of
``fastavro.schemaless_reader``, which walks the schema per message and was most of the
consumer's decode cost). fastavro stays the reader for schemas that module does not compile
and for versions that need schema resolution, planned once per version (see ``_ReadPlan``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final, NamedTuple, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from bouncewire.schemas._compiled_reader import RecordReader, compile_record_reader
from bouncewire.schemas._registry import (
    CONFLUENT_HEADER_SIZE,
    CONFLUENT_MAGIC,
    RegistryClient,
    RegistryFraming,
)
from bouncewire.schemas._store import KINDS, SINGLE_OBJECT_MARKER, SchemaStore, SchemaVersion
from bouncewire.schemas.exceptions import DecodeError, EncodeError, UnknownKindError

SINGLE_OBJECT_HEADER_SIZE: Final[int] = len(SINGLE_OBJECT_MARKER) + 8
_SINGLE_OBJECT_FIRST_BYTE: Final[int] = SINGLE_OBJECT_MARKER[0]
_INTEGER_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
# Kafka rejects negative record timestamps and generic Avro readers turn timestamp-millis
# into datetime, which ends with year 9999: an event time outside this range is unusable.
TIMESTAMP_MILLIS_BOUNDS: Final[tuple[int, int]] = (0, 253_402_300_799_999)
_UUID_TEXT: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Default values that decode to themselves, per (first union branch) type name.
_SELF_DECODING_TYPES: Final = frozenset({"null", "boolean", "int", "long", "string", "enum"})
_FLOAT_TYPES: Final = frozenset({"float", "double"})
_MISSING: Final = object()
# NamedTuple construction runs a Python-level __new__ (~0.4 µs); tuple.__new__ is C (~0.08 µs).
_new_decoded = tuple.__new__


class DecodedEvent(NamedTuple):
    """One decoded event.

    ``record`` has the shape of the latest schema version of ``kind`` (fields added since the
    writer's version hold their defaults); ``version`` is the writer's schema version.
    ``event_time`` is int epoch milliseconds and ``event_id`` a str.
    """

    kind: str
    record: dict[str, Any]
    version: int


class Codec:
    """Turns event records into framed Avro bytes and back.

    Without a registry, ``encode`` writes Avro single-object encoding (0xC3 0x01, the 8-byte
    little-endian CRC-64-AVRO fingerprint, the body). With one, the Confluent wire format
    (0x00, 4-byte big-endian schema id, the body). ``decode`` reads both, by the first byte.
    """

    def __init__(self, store: SchemaStore, registry: RegistryClient | None = None) -> None:
        self._store = store
        self._writers = {kind: _WritePlan.of(store.latest(kind)) for kind in KINDS}
        self._readers = {
            version.single_object_header[len(SINGLE_OBJECT_MARKER) :]: _ReadPlan.of(
                version, store.latest(version.kind)
            )
            for version in store
        }
        self._registry = None if registry is None else RegistryFraming(registry, store)

    @property
    def store(self) -> SchemaStore:
        return self._store

    def encode(self, kind: str, record: Mapping[str, Any], *, prechecked: bool = False) -> bytes:
        """Frame ``record`` with the latest schema version of ``kind``.

        ``event_time`` is int epoch milliseconds, ``event_id`` a UUID string. Raises
        EncodeError naming the field that does not fit, RegistryError if registering fails.
        ``prechecked``: the caller guarantees what the pre-check enforces (schema fields only,
        non-union integers in range, UUID text), as the parsers of ``producers.events`` do;
        skipping it saves ~0.8 µs of ~10 µs per record. fastavro still rejects wrong types.
        """
        plan = self._writers.get(kind)
        if plan is None:
            raise UnknownKindError(kind)
        if not prechecked:
            plan.check(record)
        if type(record) is not dict:
            record = dict(record)  # fastavro's compiled writer wants a real dict
        version = plan.version
        header = (
            version.single_object_header
            if self._registry is None
            else self._registry.header(version)
        )
        buffer = BytesIO()
        buffer.write(header)
        try:
            schemaless_writer(buffer, version.plain, record)
        except Exception as exc:  # fastavro raises TypeError/ValueError/OverflowError/...
            raise plan.explain(record, exc) from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> DecodedEvent:
        """Read one framed event. Any malformed input raises DecodeError and nothing else
        (RegistryError only when the registry itself fails)."""
        if type(data) is bytes and data[:2] == SINGLE_OBJECT_MARKER:  # the hot path: one lookup
            plan = self._readers.get(data[2:SINGLE_OBJECT_HEADER_SIZE])
            if plan is not None:
                return plan.read(data, SINGLE_OBJECT_HEADER_SIZE)
        if not data:
            raise DecodeError("empty", "the message has no bytes")
        first = data[0]
        if first == _SINGLE_OBJECT_FIRST_BYTE:
            plan = self._single_object_plan(data)
            return plan.read(data, SINGLE_OBJECT_HEADER_SIZE)
        if first == CONFLUENT_MAGIC:
            plan = self._registry_plan(data)
            return plan.read(data, CONFLUENT_HEADER_SIZE)
        raise DecodeError(
            "unknown_framing",
            f"first byte {first:#04x} is neither Avro single-object (0xc3) nor Confluent (0x00)",
        )

    def _single_object_plan(self, data: bytes) -> _ReadPlan:
        if len(data) >= 2 and data[1] != SINGLE_OBJECT_MARKER[1]:
            raise DecodeError("unknown_framing", f"second byte {data[1]:#04x} is not 0x01")
        if len(data) < SINGLE_OBJECT_HEADER_SIZE:
            raise DecodeError("truncated", "the single-object header is shorter than 10 bytes")
        fingerprint = bytes(data[len(SINGLE_OBJECT_MARKER) : SINGLE_OBJECT_HEADER_SIZE])
        plan = self._readers.get(fingerprint)
        if plan is None:
            number = int.from_bytes(fingerprint, "little")
            raise DecodeError(
                "unknown_fingerprint", f"no schema version kept has fingerprint {number:#018x}"
            )
        return plan

    def _registry_plan(self, data: bytes) -> _ReadPlan:
        if self._registry is None:
            raise DecodeError("no_registry", "Confluent-framed message but no schema registry")
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise DecodeError("truncated", "the Confluent header is shorter than 5 bytes")
        version = self._registry.version(int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big"))
        return self._readers[version.single_object_header[len(SINGLE_OBJECT_MARKER) :]]


@dataclass(frozen=True, slots=True)
class _WritePlan:
    """What ``encode`` checks before fastavro writes a record of one schema version.

    fastavro rejects wrong types everywhere except in non-union int/long fields (it writes
    1.5 as 1 and True as 1) and does not look at unknown keys or UUID syntax: those are
    checked here, cheaply.
    """

    version: SchemaVersion
    field_names: frozenset[str]
    integers: tuple[tuple[str, int, int, bool], ...]
    uuids: tuple[str, ...]

    @classmethod
    def of(cls, version: SchemaVersion) -> _WritePlan:
        fields = version.declaration["fields"]
        integers = tuple(
            (field["name"], *_integer_bounds(field["type"]), "default" not in field)
            for field in fields
            if _base_type(field["type"]) in _INTEGER_BOUNDS
        )
        uuids = tuple(field["name"] for field in fields if _logical_type(field["type"]) == "uuid")
        names = frozenset(field["name"] for field in fields)
        return cls(version, names, integers, uuids)

    def check(self, record: Mapping[str, Any]) -> None:
        kind = self.version.kind
        # Records are dicts: the ABC isinstance (0.15 µs) only for other types.
        if type(record) is not dict and not isinstance(record, Mapping):
            raise EncodeError(kind, None, f"expected a mapping, got {type(record).__name__}")
        if not self.field_names.issuperset(record):  # hashes the keys: 0.27 -> 0.21 µs
            unknown = sorted(set(record.keys()) - self.field_names, key=str)[0]
            raise EncodeError(kind, str(unknown)[:64], "not a field of the schema")
        for name, low, high, required in self.integers:
            value = record.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise EncodeError(kind, name, "missing")
            elif type(value) is not int or not low <= value <= high:
                raise EncodeError(kind, name, f"expected an integer in [{low}, {high}]")
        for name in self.uuids:
            value = record.get(name, _MISSING)
            if value is _MISSING:
                raise EncodeError(kind, name, "missing")
            if type(value) is not str or _UUID_TEXT.fullmatch(value) is None:
                raise EncodeError(kind, name, "expected a UUID string (8-4-4-4-12 hex digits)")

    def explain(self, record: Mapping[str, Any], exc: Exception) -> EncodeError:
        """Name the field fastavro choked on, without quoting its value."""
        kind = self.version.kind
        fields = self.version.declaration["fields"]
        for field in fields:
            if field["name"] not in record and "default" not in field:
                return EncodeError(kind, field["name"], "missing")
        declared = {field["name"]: field["type"] for field in fields}
        try:
            validate(dict(record), self.version.plain, raise_errors=True)
        except ValidationError as invalid:
            name = _field_name(invalid.errors[0].field, self.version.full_name)
            got = type(record.get(name)).__name__
            return EncodeError(kind, name, f"expected {_describe(declared.get(name))}, got {got}")
        for name, value in record.items():
            if isinstance(value, str) and not _utf8_encodable(value):
                return EncodeError(kind, name, "text is not encodable as UTF-8")
        return EncodeError(kind, None, f"does not fit the schema ({type(exc).__name__})")


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    """How to read bodies written with one schema version into the latest version's shape.

    Same version: read with the writer schema alone. A latest version that only appended
    fields with plain defaults (the usual evolution step): read with the writer schema and
    fill the defaults in, skipping fastavro's per-message schema resolution. Anything else:
    fastavro resolves writer against reader. Reading with the writer schema alone uses
    ``compiled`` (the same dicts as fastavro, in about half the time) when the schema compiles.
    """

    kind: str
    version: int
    writer: dict[str, Any]
    reader: dict[str, Any] | None
    appended: tuple[tuple[str, Any], ...]
    compiled: RecordReader | None = None

    @classmethod
    def of(cls, version: SchemaVersion, latest: SchemaVersion) -> _ReadPlan:
        appended = () if version is latest else _appended_defaults(version, latest)
        if appended is None:
            return cls(version.kind, version.version, version.plain, latest.plain, ())
        compiled = compile_record_reader(version.plain)
        return cls(version.kind, version.version, version.plain, None, appended, compiled)

    def read(self, data: bytes, offset: int) -> DecodedEvent:
        compiled = self.compiled
        if compiled is None:
            return self._read_fastavro(data, offset)
        # The compiled path, inline: it runs once per consumed record.
        if type(data) is not bytes:
            data = bytes(data)  # the compiled reader slices and decodes: memoryview cannot
        try:
            record, end = compiled(data, offset)
        except Exception as exc:  # IndexError/EOFError when short, ValueError when malformed
            raise self._body_error(exc, exhausted=True) from exc
        if end != len(data):
            trailing = len(data) - end
            raise DecodeError("invalid_body", f"{self._what()} body has {trailing} trailing bytes")
        if self.appended:
            for name, default in self.appended:
                record[name] = default
        return _new_decoded(DecodedEvent, (self.kind, record, self.version))

    def _read_fastavro(self, data: bytes, offset: int) -> DecodedEvent:
        stream = BytesIO(data)
        stream.seek(offset)
        try:
            record = cast(dict[str, Any], schemaless_reader(stream, self.writer, self.reader))
        except Exception as exc:  # fastavro: EOFError, IndexError, UnicodeDecodeError, ...
            raise self._body_error(exc, exhausted=stream.tell() >= len(data)) from exc
        trailing = len(data) - stream.tell()
        if trailing:
            raise DecodeError("invalid_body", f"{self._what()} body has {trailing} trailing bytes")
        for name, default in self.appended:
            record[name] = default
        return DecodedEvent(self.kind, record, self.version)

    def _body_error(self, exc: Exception, *, exhausted: bool) -> DecodeError:
        # fastavro raises EOFError for a short string or a missing value, but IndexError for
        # a varint cut inside its continuation bytes: with no byte left, that is truncation.
        # The compiled reader raises IndexError only by reading past the end.
        if isinstance(exc, EOFError) or (isinstance(exc, IndexError) and exhausted):
            return DecodeError("truncated", f"{self._what()} body ends early")
        return DecodeError(
            "invalid_body", f"{self._what()} body is not valid Avro ({type(exc).__name__})"
        )

    def _what(self) -> str:
        return f"{self.kind} v{self.version}"


def _appended_defaults(
    writer: SchemaVersion, reader: SchemaVersion
) -> tuple[tuple[str, Any], ...] | None:
    """Defaults of the fields ``reader`` appended to ``writer``'s, or None if it did more."""
    writer_fields = writer.declaration["fields"]
    reader_fields = reader.declaration["fields"]
    if len(reader_fields) < len(writer_fields):
        return None
    kept = [_unwidened(w, r) for w, r in zip(writer_fields, reader_fields, strict=False)]
    prefix = dict(reader.declaration, fields=kept)
    if to_parsing_canonical_form(parse_schema(prefix)) != writer.canonical_form:
        return None
    defaults = []
    for field in reader_fields[len(writer_fields) :]:
        default = _self_decoding_default(field)
        if default is _MISSING:
            return None
        defaults.append((field["name"], default))
    return tuple(defaults)


def _unwidened(writer_field: dict[str, Any], reader_field: dict[str, Any]) -> dict[str, Any]:
    """`reader_field` with an enum the reader widened by appending symbols (unsubscribe v2's
    `complaint`) cut back to the writer's symbols: the writer's bytes then read the same with
    the writer schema alone, since symbols resolve by name and the old ones keep their index."""
    written, read = writer_field.get("type"), reader_field.get("type")
    if not (isinstance(written, dict) and isinstance(read, dict)):
        return reader_field
    if written.get("type") != "enum" or read.get("type") != "enum":
        return reader_field
    symbols = written.get("symbols", [])
    if read.get("symbols", [])[: len(symbols)] != symbols:
        return reader_field
    return dict(reader_field, type=dict(read, symbols=symbols))


def _self_decoding_default(field: dict[str, Any]) -> Any:
    """The Python value a field's JSON default decodes to, when that is trivial."""
    if "default" not in field:
        return _MISSING
    field_type = field["type"][0] if isinstance(field["type"], list) else field["type"]
    type_name = _base_type(field_type)
    if type_name in _FLOAT_TYPES:
        return float(field["default"])
    return field["default"] if type_name in _SELF_DECODING_TYPES else _MISSING


def _base_type(schema: Any) -> str:
    if isinstance(schema, dict):
        return _base_type(schema.get("type"))
    return schema if isinstance(schema, str) else "union"


def _integer_bounds(schema: Any) -> tuple[int, int]:
    if _logical_type(schema) == "timestamp-millis":
        return TIMESTAMP_MILLIS_BOUNDS
    return _INTEGER_BOUNDS[_base_type(schema)]


def _logical_type(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _field_name(path: str, full_name: str) -> str:
    return path[len(full_name) + 1 :] if path.startswith(full_name + ".") else path


def _describe(schema: Any) -> str:
    if isinstance(schema, list):
        return " or ".join(_describe(branch) for branch in schema)
    if isinstance(schema, dict):
        if schema.get("type") == "enum":
            return "one of " + ", ".join(schema["symbols"])
        if "logicalType" in schema:
            return f"{schema['type']} ({schema['logicalType']})"
        return _describe(schema.get("type"))
    return str(schema)


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
