"""The schema-compiled reader against fastavro, its reference: same dicts, same positions,
no more lenient on bad bytes, nothing executed from a schema, and Codec.decode wired to it."""

from __future__ import annotations

import builtins
import dataclasses
import io
import math
import struct
from collections.abc import Callable
from typing import Any

import fastavro
import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.schemas import Codec, DecodeError, SchemaStore, SchemaVersion
from bouncewire.schemas._compiled_reader import (
    MalformedAvroError,
    RecordReader,
    compile_record_reader,
)
from tests.schemas.schema_helpers import records, write_body


def _parse(declaration: dict[str, Any]) -> dict[str, Any]:
    """A record schema parsed as SchemaVersion.plain is (fastavro types it loosely)."""
    parsed = fastavro.parse_schema(declaration)
    assert isinstance(parsed, dict)
    return parsed


STORE = SchemaStore.load()
VERSIONS = list(STORE)
LONGS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 63, -64, 64, -(2**63), 2**63 - 1])
)
SMALL_ENUM = {"type": "enum", "name": "Colour", "symbols": ["red", "green", "blue"]}
BIG_ENUM = {"type": "enum", "name": "Many", "symbols": [f"s{i}" for i in range(70)]}
FIXED = {"type": "fixed", "name": "Five", "size": 5}
# Every supported type, alone and in unions of any branch order (a 70-symbol enum and a
# 70-branch-like index need two-byte varints); parsed the way SchemaVersion.plain is.
SYNTHETIC = _parse(
    {
        "type": "record",
        "name": "Everything",
        "namespace": "test.compiled",
        "fields": [
            {"name": "n", "type": "null"},
            {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"},
            {"name": "l", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "s", "type": "string"},
            {"name": "by", "type": "bytes"},
            {"name": "e", "type": SMALL_ENUM},
            {"name": "many", "type": BIG_ENUM},
            {"name": "fx", "type": FIXED},
            {"name": "empty_fixed", "type": {"type": "fixed", "name": "Zero", "size": 0}},
            {"name": "dict_string", "type": {"type": "string"}},
            {"name": "string_first", "type": ["string", "null"]},
            {"name": "scalars", "type": ["long", "double", "boolean", "bytes", "null", "float"]},
            {
                "name": "named",
                "type": [
                    {"type": "fixed", "name": "Three", "size": 3},
                    {"type": "enum", "name": "Side", "symbols": ["left", "right"]},
                    "int",
                ],
            },
            {"name": "only_null", "type": ["null"]},
            {"name": "tail_fixed", "type": {"type": "fixed", "name": "Two", "size": 2}},
        ],
    }
)
SYNTHETIC_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "n": st.none(),
    "b": st.booleans(),
    "i": st.integers(-(2**31), 2**31 - 1),
    "l": LONGS,
    "f": st.floats(width=32),
    "d": st.floats(),
    "s": st.text(max_size=80),
    # Lengths of one, two (64+) and three (8192+) varint bytes.
    "by": st.one_of(st.binary(max_size=80), st.binary(min_size=8180, max_size=8200)),
    "e": st.sampled_from(SMALL_ENUM["symbols"]),
    "many": st.sampled_from(BIG_ENUM["symbols"]),
    "fx": st.binary(min_size=5, max_size=5),
    "empty_fixed": st.just(b""),
    "dict_string": st.text(max_size=5),
    "string_first": st.one_of(st.text(max_size=80), st.none()),
    "scalars": st.one_of(LONGS, st.floats(), st.booleans(), st.binary(max_size=3), st.none()),
    "named": st.one_of(
        st.binary(min_size=3, max_size=3), st.sampled_from(["left", "right"]), st.integers(-5, 5)
    ),
    "only_null": st.none(),
    "tail_fixed": st.binary(min_size=2, max_size=2),
}
SCHEMAS: dict[str, dict[str, Any]] = {repr(version): version.plain for version in VERSIONS}
SCHEMAS["synthetic"] = SYNTHETIC
READERS: dict[str, RecordReader] = {}
for _name, _schema in SCHEMAS.items():
    _reader = compile_record_reader(_schema)
    assert _reader is not None, _name
    READERS[_name] = _reader


def _record_strategy(name: str) -> st.SearchStrategy[dict[str, Any]]:
    if name == "synthetic":
        return st.fixed_dictionaries(SYNTHETIC_VALUES)
    return records(next(v for v in VERSIONS if repr(v) == name).declaration)


def schemas_and_records() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.sampled_from(sorted(SCHEMAS)).flatmap(
        lambda name: st.tuples(st.just(name), _record_strategy(name))
    )


def _write(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    stream = io.BytesIO()
    schemaless_writer(stream, schema, record)
    return stream.getvalue()


def _fastavro_read(schema: dict[str, Any], data: bytes, pos: int) -> tuple[Any, int]:
    stream = io.BytesIO(data)
    stream.seek(pos)
    return schemaless_reader(stream, schema, None), stream.tell()


def _comparable(value: Any) -> Any:
    """Floats as their bits (NaN != NaN), so records compare exactly."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    return value


def _outcome(read: Callable[[], tuple[Any, int]]) -> tuple[Any, int] | Exception:
    try:
        record, pos = read()
    except Exception as exc:  # the outcome under test
        return exc
    return _comparable(record), pos


# --- (a) valid records: identical dicts and positions ----------------------------------------
@given(
    named_record=schemas_and_records(), prefix=st.binary(max_size=3), suffix=st.binary(max_size=3)
)
def test_valid_bodies_read_as_fastavro_reads_them(
    named_record: tuple[str, dict[str, Any]], prefix: bytes, suffix: bytes
) -> None:
    name, record = named_record
    body = _write(SCHEMAS[name], record)
    data = prefix + body + suffix
    expected = _comparable(_fastavro_read(SCHEMAS[name], data, len(prefix))[0])
    got, end = READERS[name](data, len(prefix))
    assert (_comparable(got), end) == (expected, len(prefix) + len(body))
    assert list(got) == [field["name"] for field in SCHEMAS[name]["fields"]]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (2**63 - 1, b"\xfe" + b"\xff" * 8 + b"\x01"),
        (-(2**63), b"\xff" + b"\xff" * 8 + b"\x01"),
        (0, b"\x80\x00"),  # not minimal, still valid
        (2**63 - 1, b"\xfe" + b"\xff" * 8 + b"\x7f"),  # bits past 64 dropped, as fastavro does
    ],
)
def test_long_table(value: int, encoded: bytes) -> None:
    schema = _parse({"type": "record", "name": "L", "fields": [{"name": "l", "type": "long"}]})
    reader = _compiled(schema)
    assert reader(encoded, 0) == ({"l": value}, len(encoded))
    assert _fastavro_read(schema, encoded, 0) == ({"l": value}, len(encoded))


# --- (b) bad bytes: never more lenient than fastavro, Codec raises only DecodeError -----------
def _mutated(data: bytes) -> st.SearchStrategy[bytes]:
    edits = st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]), st.integers(0), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    )
    return st.one_of(
        edits.map(lambda chosen: _apply(data, chosen)),
        st.integers(0, max(len(data) - 1, 0)).map(lambda cut: data[:cut]),
        st.binary(max_size=len(data) + 8),
    )


def _apply(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buffer = bytearray(data)
    for operation, where, byte in edits:
        index = where % (len(buffer) + 1)
        if operation == "insert":
            buffer.insert(index, byte)
        elif index < len(buffer):
            if operation == "set":
                buffer[index] = byte
            else:
                del buffer[index]
    return bytes(buffer)


def _assert_no_more_lenient(name: str, data: bytes) -> None:
    reference = _outcome(lambda: _fastavro_read(SCHEMAS[name], data, 0))
    compiled = _outcome(lambda: READERS[name](data, 0))
    if not isinstance(compiled, Exception):
        assert compiled == reference
    elif not isinstance(reference, Exception):
        # Only the documented extra strictness: over-long varints, negative indexes.
        assert isinstance(compiled, MalformedAvroError), compiled
    else:
        assert isinstance(compiled, (IndexError, EOFError, ValueError)), compiled


@given(named_record=schemas_and_records(), data=st.data())
def test_mutated_bodies_fail_or_agree_with_fastavro(
    named_record: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    name, record = named_record
    mutated = data.draw(_mutated(_write(SCHEMAS[name], record)))
    _assert_no_more_lenient(name, mutated)


@given(name=st.sampled_from(sorted(SCHEMAS)), data=st.binary(max_size=400))
def test_random_bytes_fail_or_agree_with_fastavro(name: str, data: bytes) -> None:
    _assert_no_more_lenient(name, data)


def _fastavro_only(codec: Codec) -> Codec:
    """The same codec with every compiled reader switched off: the reference."""
    reference = Codec(codec.store)
    plans = reference._readers  # compare the two read paths
    for key, plan in plans.items():
        plans[key] = dataclasses.replace(plan, compiled=None)
    return reference


CODEC = Codec(STORE)
REFERENCE = _fastavro_only(CODEC)
DECODE_REASONS = {"truncated", "invalid_body", "unknown_fingerprint", "unknown_framing", "empty"}


def _decode(codec: Codec, message: bytes) -> Any:
    try:
        return codec.decode(message)
    except DecodeError as error:
        assert error.reason in DECODE_REASONS
        return error


@given(version=st.sampled_from(VERSIONS), data=st.data())
def test_codec_decode_fails_only_with_decode_error_and_agrees_with_fastavro(
    version: SchemaVersion, data: st.DataObject
) -> None:
    body = write_body(version, data.draw(records(version.declaration)))
    message = version.single_object_header + data.draw(_mutated(body))
    compiled = _decode(CODEC, message)
    reference = _decode(REFERENCE, message)
    if not isinstance(compiled, DecodeError):
        assert _comparable(compiled) == _comparable(reference)
    elif not isinstance(reference, DecodeError):
        assert isinstance(compiled.__cause__, MalformedAvroError)
        assert compiled.reason == "invalid_body"


@pytest.mark.parametrize(
    ("body", "fastavro_reads", "reason"),
    [
        # an 11-byte varint: fastavro shifts past 64 bits and returns garbage
        (b"\x80" * 10 + b"\x01\x02\x00", {"l": 32, "u": 0}, "invalid_body"),
        # union index -1: fastavro takes the last branch, Python-style
        (b"\x00\x01\x02", {"l": 0, "u": 1}, "invalid_body"),
        # union index 2 of a two-branch union
        (b"\x00\x04", None, "invalid_body"),
        # a string of length -1
        (b"\x00\x00\x01", None, "truncated"),
        # a string longer than the data
        (b"\x00\x00\x06ab", None, "truncated"),
        (b"\x00\x00\x02\xff", None, "invalid_body"),  # not UTF-8
        (b"\x00", None, "truncated"),
        (b"\x80", None, "truncated"),
    ],
)
def test_bad_bodies_table(body: bytes, fastavro_reads: dict[str, Any] | None, reason: str) -> None:
    schema = _parse(
        {
            "type": "record",
            "name": "Small",
            "fields": [{"name": "l", "type": "long"}, {"name": "u", "type": ["string", "long"]}],
        }
    )
    reference = _outcome(lambda: _fastavro_read(schema, body, 0))
    if fastavro_reads is None:
        assert isinstance(reference, Exception)
    else:
        assert reference == (fastavro_reads, len(body))
    with pytest.raises((IndexError, EOFError, ValueError)) as raised:
        _compiled(schema)(body, 0)
    truncated = isinstance(raised.value, (IndexError, EOFError))
    assert ("truncated" if truncated else "invalid_body") == reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x04\x02\x01ab", {"e": "blue", "u": -1, "fx": b"ab"}),
        (b"\x84\x00\x80\x00ab", {"e": "blue", "u": None, "fx": b"ab"}),  # indexes not minimal
        (b"\x01\x00ab", MalformedAvroError),  # enum index -1: fastavro reads "blue"
        (b"\x06\x00ab", MalformedAvroError),  # enum index 3
        (b"\x00\x03\x02ab", MalformedAvroError),  # union index -2: fastavro reads a long
        (b"\x00\x80", IndexError),
        (b"\x00\x00a", EOFError),  # the fixed is cut short
    ],
)
def test_index_and_fixed_table(body: bytes, expected: Any) -> None:
    schema = _parse(
        {
            "type": "record",
            "name": "Indexes",
            "fields": [
                {"name": "e", "type": SMALL_ENUM},
                {"name": "u", "type": ["null", "long"]},
                {"name": "fx", "type": {"type": "fixed", "name": "Two", "size": 2}},
            ],
        }
    )
    if isinstance(expected, dict):
        assert _compiled(schema)(body, 0) == (expected, len(body))
        assert _fastavro_read(schema, body, 0) == (expected, len(body))
    else:
        with pytest.raises(expected):
            _compiled(schema)(body, 0)


def test_booleans_other_than_0_and_1_read_as_fastavro_does() -> None:
    schema = _parse({"type": "record", "name": "B", "fields": [{"name": "b", "type": "boolean"}]})
    for byte in (0, 1, 2, 255):
        data = bytes([byte])
        assert _compiled(schema)(data, 0) == _fastavro_read(schema, data, 0)


@pytest.mark.parametrize("convert", [bytearray, memoryview])
def test_codec_decodes_buffers_other_than_bytes(convert: Callable[[bytes], Any]) -> None:
    version = STORE.latest("unsubscribe")
    record = {"event_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "event_time": 5}
    record |= {"email": "x", "source": "api", "campaign_id": None, "meta": "é"}
    message = CODEC.encode("unsubscribe", record)
    assert CODEC.decode(convert(message)) == (version.kind, record, version.version)


# --- (c) what does not compile --------------------------------------------------------------
def _record(*field_types: Any) -> dict[str, Any]:
    fields = [{"name": f"x{index}", "type": t} for index, t in enumerate(field_types)]
    return {"type": "record", "name": "R", "fields": fields}


@pytest.mark.parametrize(
    "schema",
    [
        _record({"type": "record", "name": "Inner", "fields": []}),
        _record({"type": "array", "items": "long"}),
        _record({"type": "map", "values": "long"}),
        _record(["null", {"type": "array", "items": "long"}]),
        _record(SMALL_ENUM, "Colour"),  # a named-type reference
        _record("NoSuchType"),
        _record({"type": "string", "logicalType": "uuid"}),
        _record({"type": "long", "logicalType": "timestamp-millis"}),
        _record(["null", {"type": "long", "logicalType": "timestamp-millis"}]),
        _record({"type": "bytes", "logicalType": "decimal", "precision": 4}),
        _record({"type": "string", "logicalType": "made-up"}),
        _record(["null", ["string"]]),
        _record({"type": "fixed", "name": "F", "size": -1}),
        _record({"type": "fixed", "name": "F", "size": True}),
        _record({"type": "fixed", "name": "F", "size": "4"}),
        _record({"type": "enum", "name": "E", "symbols": ["a", 1]}),
        _record({"type": "enum", "name": "E", "symbols": "ab"}),
        _record({"type": {"type": "string"}}),
        _record({"type": "error", "name": "Oops", "fields": []}),
        _record(None),
        {"type": "record", "name": "R", "fields": [{"name": 1, "type": "long"}]},
        {"type": "record", "name": "R", "fields": [{"type": "long"}]},
        {"type": "record", "name": "R", "fields": "x"},
        {"type": "record", "name": "R"},
        {"type": "enum", "name": "E", "symbols": ["a"]},
        {"type": "error", "name": "R", "fields": []},
    ],
    ids=repr,
)
def test_unsupported_schemas_get_no_compiled_reader(schema: dict[str, Any]) -> None:
    assert compile_record_reader(schema) is None


def test_logical_types_are_left_to_fastavro_but_plain_versions_compile() -> None:
    for version in VERSIONS:
        assert compile_record_reader(version.parsed) is None  # uuid, timestamp-millis
        assert compile_record_reader(version.declaration) is None
        assert compile_record_reader(version.plain) is not None


def test_the_codec_reads_every_kept_version_with_a_compiled_reader() -> None:
    plans = CODEC._readers.values()  # guards against a silent fallback
    assert plans and all(plan.compiled is not None for plan in plans)


# --- (d) a schema cannot inject code ---------------------------------------------------------
HOSTILE_NAMES = [
    "__import__('os').system('exit 3')",
    "'); __import__('os'); ('",
    '"""\nimport os\n"""',
    "x\ny",
    "a\\",
    "f0",  # a generated local's name
    "pos",
    "data",
    "",
    "ünï\u2028cöde",
]


def test_hostile_field_names_decode_and_execute_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    real_import = builtins.__import__

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    schema = _parse(
        {
            "type": "record",
            "name": "Hostile",
            "fields": [{"name": name, "type": ["null", "string"]} for name in HOSTILE_NAMES]
            + [{"name": "'", "type": {"type": "enum", "name": "E", "symbols": ["a_", "b_"]}}],
        }
    )
    record: dict[str, Any] = {name: f"value {index}" for index, name in enumerate(HOSTILE_NAMES)}
    record[HOSTILE_NAMES[1]] = None
    record["'"] = "b_"
    body = _write(schema, record)
    monkeypatch.setattr(builtins, "__import__", spy)
    reader = compile_record_reader(schema)
    assert reader is not None
    assert reader(body, 0) == (record, len(body))
    monkeypatch.undo()
    assert imported == []


def test_hostile_enum_symbols_stay_data() -> None:
    # fastavro's parser rejects such symbols; the compiled reader must still treat them as data.
    symbols = ["')\nraise SystemExit\n('", "\\", "ok"]
    schema = _record({"type": "enum", "name": "E", "symbols": symbols})
    reader = _compiled(schema)
    for index, symbol in enumerate(symbols):
        assert reader(bytes([2 * index]), 0) == ({"x0": symbol}, 1)


def _compiled(schema: dict[str, Any]) -> RecordReader:
    reader = compile_record_reader(schema)
    assert reader is not None
    return reader


def test_floats_keep_their_bits() -> None:
    schema = _parse({"type": "record", "name": "F", "fields": [{"name": "f", "type": "float"}]})
    for value in (0.0, -0.0, 1.5, math.inf, -math.inf, 3.4e38):
        data = _write(schema, {"f": value})
        assert _comparable(_compiled(schema)(data, 0)) == _comparable(
            _fastavro_read(schema, data, 0)
        )
