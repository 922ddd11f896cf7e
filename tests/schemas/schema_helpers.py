"""Test helpers for tests/schemas: an independent CRC-64-AVRO, a spec-only single-object reader,
hypothesis strategies that draw valid records from any of our .avsc declarations, and a
mock schema registry."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from hypothesis import strategies as st

from bouncewire.schemas import DEFAULT_DIRECTORY, TIMESTAMP_MILLIS_BOUNDS, SchemaVersion
from bouncewire.schemas._registry import schema_registry_module

AVSC_FILES = sorted(DEFAULT_DIRECTORY.glob("*/v*.avsc"))

# --- CRC-64-AVRO exactly as the Avro specification's "Schema Fingerprints" section gives it ----
_EMPTY = 0xC15D213AA4D7A795
_MASK64 = (1 << 64) - 1


def _fingerprint_table() -> list[int]:
    table = []
    for index in range(256):
        fp = index
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1) & _MASK64)
        table.append(fp)
    return table


_TABLE = _fingerprint_table()


def spec_crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def spec_read_single_object(data: bytes, avsc_files: list[Path] = AVSC_FILES) -> dict[str, Any]:
    """Read a single-object-encoded message knowing only the spec, fastavro and the .avsc files."""
    assert data[:2] == b"\xc3\x01", "single-object marker"
    wanted = int.from_bytes(data[2:10], "little")
    for path in avsc_files:
        schema = parse_schema(json.loads(path.read_text(encoding="utf-8")))
        canonical = to_parsing_canonical_form(schema).encode("utf-8")
        if spec_crc64_avro(canonical) == wanted:
            stream = io.BytesIO(data[10:])
            record = schemaless_reader(stream, schema, None)
            assert stream.read() == b"", "no trailing bytes"
            assert isinstance(record, dict)
            return record
    raise AssertionError(f"no .avsc file has fingerprint {wanted:#018x}")


def write_body(version: SchemaVersion, record: dict[str, Any]) -> bytes:
    """The Avro binary body of ``record`` written with exactly ``version`` (no codec)."""
    stream = io.BytesIO()
    schemaless_writer(stream, version.plain, record)
    return stream.getvalue()


# --- records drawn from a schema declaration ------------------------------------------------
_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=40),
    "bytes": st.binary(max_size=40),
}


def records(declaration: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of a record declaration (primitives, enums, unions, uuid, timestamps)."""
    named: dict[str, dict[str, Any]] = {}
    fields = {
        field["name"]: _values(field["type"], named, declaration.get("namespace"))
        for field in declaration["fields"]
    }
    return st.fixed_dictionaries(fields)


def _values(
    schema: Any, named: dict[str, dict[str, Any]], namespace: str | None
) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([_values(branch, named, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return _values(
            named[schema if "." in schema else f"{namespace}.{schema}"], named, namespace
        )
    if schema.get("logicalType") == "uuid":
        return st.uuids().map(str)
    if schema.get("logicalType") == "timestamp-millis":
        return st.integers(*TIMESTAMP_MILLIS_BOUNDS)
    if schema["type"] == "enum":
        named[f"{schema.get('namespace', namespace)}.{schema['name']}"] = schema
        return st.sampled_from(schema["symbols"])
    return _values(schema["type"], named, namespace)


# --- a mock registry, built the way confluent_kafka's own tests build it --------------------
def mock_registry() -> Any:
    return schema_registry_module().SchemaRegistryClient.new_client({"url": "mock://"})


def avro_schema(text: str) -> Any:
    """A confluent_kafka ``Schema`` for registering by hand."""
    return schema_registry_module().Schema(text, "AVRO")


def registry_error(status: int, code: int, message: str) -> Exception:
    error: Exception = schema_registry_module().SchemaRegistryError(status, code, message)
    return error


class CountingRegistry:
    """Wraps a registry client and counts the calls the codec makes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def register_schema(self, subject_name: str, schema: Any) -> int:
        self.calls.append(f"register {subject_name}")
        return int(self.inner.register_schema(subject_name, schema))

    def get_schema(self, schema_id: int) -> Any:
        self.calls.append(f"get {schema_id}")
        return self.inner.get_schema(schema_id)
