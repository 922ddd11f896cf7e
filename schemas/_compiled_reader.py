"""Schema-compiled Avro record readers: straight-line Python generated once per schema.

``fastavro.schemaless_reader`` walks the schema for every message (~7.3 µs for a send_result
v2 record, ~1 µs of it fixed per call). Flat records of primitives, enums, fixed and unions of
those can instead be read by one generated function that indexes the bytes directly, keeps
each field in a local and builds the dict once: about half the cost, same dicts.

Output equals fastavro's for the same parsed schema (booleans: any non-zero byte is True;
longs keep their low 64 bits, as fastavro's C reader does; a negative length raises EOFError,
as in fastavro). Stricter than fastavro: a varint longer than 10 bytes and a negative union or
enum index raise MalformedAvroError (fastavro reads garbage, or uses Python's negative
indexing, there).

Generated source contains only fixed names (``f0``, ``f1``, ... for the fields), integers
computed here and ``repr()`` of strings checked to be exact ``str``: a schema cannot inject
code. Schemas with anything else (logical types, nested records, arrays, maps, named-type
references) get no compiled reader.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

RecordReader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_MASK64: Final[int] = (1 << 64) - 1
_MAX_VARINT_BYTES: Final[int] = 10
_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "string", "bytes"}
)
_NAMED: Final = frozenset({"enum", "fixed"})
# Keys of a type object that do not change how the writer's bytes decode.
_INERT_KEYS: Final = frozenset(
    {"type", "name", "namespace", "doc", "aliases", "default", "symbols", "size"}
)
_FASTAVRO_KEYS: Final = frozenset({"__fastavro_parsed", "__named_schemas"})


class MalformedAvroError(ValueError):
    """Bytes no Avro writer produces: an over-long varint, an index out of range."""


class _Unsupported(Exception):
    """The schema uses something this module does not compile."""


def compile_record_reader(schema: Mapping[str, Any]) -> RecordReader | None:
    """A reader for bodies written with record ``schema``, or None if it is not supported.

    The reader takes ``(data, pos)`` and returns the record and the position after it. It
    raises IndexError or EOFError when ``data`` ends early or a length is negative, ValueError
    (MalformedAvroError, UnicodeDecodeError) when the bytes are otherwise not valid for it.
    """
    try:
        source, constants = _record_source(schema)
    except _Unsupported:
        return None
    namespace: dict[str, Any] = dict(_HELPERS, **constants)
    exec(compile(source, "<compiled avro reader>", "exec"), namespace)  # noqa: S102
    reader: RecordReader = namespace["read_record"]
    return reader


def _record_source(schema: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise _Unsupported
    fields = schema.get("fields")
    if not isinstance(fields, list):
        raise _Unsupported
    constants: dict[str, Any] = {}
    lines = ["def read_record(data, pos):", "    lim = len(data)"]
    keys = []
    for index, field in enumerate(fields):
        if not isinstance(field, Mapping) or type(field.get("name")) is not str:
            raise _Unsupported
        lines += _value_lines(field.get("type"), f"f{index}", "    ", constants)
        keys.append(f"{field['name']!r}: f{index}")
    lines.append("    return {" + ", ".join(keys) + "}, pos")
    return "\n".join(lines) + "\n", constants


def _value_lines(schema: Any, target: str, pad: str, constants: dict[str, Any]) -> list[str]:
    """Statements that read one value of ``schema`` into local ``target``."""
    if isinstance(schema, list):
        return _union_lines(schema, target, pad, constants)
    type_name = _type_name(schema)
    if type_name in _NAMED:
        return _named_lines(schema, type_name, target, pad, constants)
    return [pad + line for line in _PRIMITIVE_LINES[type_name](target)]


def _type_name(schema: Any) -> str:
    """The primitive or named-type kind of a non-union schema; _Unsupported otherwise."""
    if isinstance(schema, str):
        if schema not in _PRIMITIVES:
            raise _Unsupported  # a named-type reference, or not a type at all
        return schema
    if not isinstance(schema, Mapping) or not schema.keys() <= _INERT_KEYS | _FASTAVRO_KEYS:
        raise _Unsupported  # logicalType, items, values, fields, ...
    type_name = schema.get("type")
    if type(type_name) is not str or type_name not in _PRIMITIVES | _NAMED:
        raise _Unsupported
    return type_name


def _named_lines(
    schema: Mapping[str, Any], type_name: str, target: str, pad: str, constants: dict[str, Any]
) -> list[str]:
    if type_name == "fixed":
        size = schema.get("size")
        if type(size) is not int or size < 0:
            raise _Unsupported
        lines = [f"end = pos + {size}", "if end > lim: _ended()"]
        lines += [f"{target} = data[pos:end]", "pos = end"]
        return [pad + line for line in lines]
    symbols = schema.get("symbols")
    if not isinstance(symbols, list) or any(type(symbol) is not str for symbol in symbols):
        raise _Unsupported
    name = f"_SYMBOLS{len(constants)}"
    constants[name] = tuple(symbols)
    lines = _index_lines()
    lines += [f"if b & 1 or b >= {2 * len(symbols)}: _bad_index(b)", f"{target} = {name}[b >> 1]"]
    return [pad + line for line in lines]


def _union_lines(
    branches: list[Any], target: str, pad: str, constants: dict[str, Any]
) -> list[str]:
    """Dispatch on the raw (zigzag) index varint: branch i is written as 2*i."""
    lines = [pad + line for line in _index_lines()]
    for index, branch in enumerate(branches):
        if isinstance(branch, list):
            raise _Unsupported  # a union directly inside a union is not Avro
        keyword = "if" if index == 0 else "elif"
        lines.append(f"{pad}{keyword} b == {2 * index}:")
        lines += _value_lines(branch, target, pad + "    ", constants)
    lines.append(f"{pad}{'else' if branches else 'if True'}:")
    lines.append(f"{pad}    _bad_index(b)")
    return lines


def _index_lines() -> list[str]:
    """Read a union/enum index into ``b`` as the raw unsigned varint (2*i for index i)."""
    return ["b = data[pos]", "pos += 1", "if b > 127: b, pos = _varint_tail(data, pos, b)"]


def _long_lines(target: str) -> list[str]:
    # The varint loop is inlined: timestamps take 6 bytes, and two helper calls per value
    # cost ~0.25 µs of a ~4 µs record.
    return [
        "b = data[pos]",
        "pos += 1",
        "if b < 128:",
        f"    {target} = (b >> 1) ^ -(b & 1)",
        "else:",
        "    n = b & 127",
        "    shift = 7",
        "    while True:",
        "        b = data[pos]",
        "        pos += 1",
        "        n |= (b & 127) << shift",
        "        if b < 128: break",
        "        shift += 7",
        f"        if shift >= {7 * _MAX_VARINT_BYTES}: _too_long()",
        f"    n &= {_MASK64}",
        f"    {target} = (n >> 1) ^ -(n & 1)",
    ]


def _blob_lines(decode: str) -> Callable[[str], list[str]]:
    """A length-prefixed value; odd (negative) or multi-byte lengths take the slow path."""

    def lines(target: str) -> list[str]:
        # Lengths of 64..8191 (two varint bytes: most SMTP replies) stay inline too.
        return [
            "b = data[pos]",
            "if not b & 0x81:",
            "    pos += 1",
            "    end = pos + (b >> 1)",
            "elif b & 0x80 and not b & 1 and data[pos + 1] < 128:",
            "    end = pos + 2 + (((b & 127) | (data[pos + 1] << 7)) >> 1)",
            "    pos += 2",
            "else:",
            "    pos, end = _blob_span(data, pos)",
            "if end > lim: _ended()",
            f"{target} = data[pos:end]{decode}",
            "pos = end",
        ]

    return lines


def _fixed_width_lines(width: int, unpack: str) -> Callable[[str], list[str]]:
    def lines(target: str) -> list[str]:
        return [
            f"if pos + {width} > lim: _ended()",
            f"{target} = {unpack}(data, pos)[0]",
            f"pos += {width}",
        ]

    return lines


_PRIMITIVE_LINES: Final[dict[str, Callable[[str], list[str]]]] = {
    "null": lambda target: [f"{target} = None"],
    "boolean": lambda target: [f"{target} = data[pos] != 0", "pos += 1"],
    "int": _long_lines,
    "long": _long_lines,
    "float": _fixed_width_lines(4, "_unpack_float"),
    "double": _fixed_width_lines(8, "_unpack_double"),
    "string": _blob_lines(".decode()"),
    "bytes": _blob_lines(""),
}


# --- helpers the generated code calls on its slow paths ---------------------------------------
def _varint_tail(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """The unsigned value of a varint whose first byte (>= 0x80) was already read."""
    value = first & 0x7F
    shift = 7
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 128:
            return value & _MASK64, pos
        shift += 7
        if shift >= 7 * _MAX_VARINT_BYTES:
            _too_long()


def _blob_span(data: bytes, pos: int) -> tuple[int, int]:
    """Where a length-prefixed value starts and ends (the generated code slices and checks)."""
    first = data[pos]
    pos += 1
    raw, pos = (first, pos) if first < 128 else _varint_tail(data, pos, first)
    if raw & 1:
        # fastavro raises EOFError here too ("Expected -1 bytes"): the codec calls it truncated.
        raise EOFError("negative length")
    return pos, pos + (raw >> 1)


def _too_long() -> NoReturn:
    raise MalformedAvroError("varint longer than 10 bytes")


def _ended() -> NoReturn:
    raise EOFError("the data ends inside a value")


def _bad_index(raw: int) -> NoReturn:
    index = (raw >> 1) ^ -(raw & 1)
    raise MalformedAvroError(f"union or enum index {index} is out of range")


_HELPERS: Final[dict[str, Any]] = {
    "__builtins__": {},  # the generated code needs none but len
    "len": len,
    "_varint_tail": _varint_tail,
    "_blob_span": _blob_span,
    "_ended": _ended,
    "_too_long": _too_long,
    "_bad_index": _bad_index,
    "_unpack_float": struct.Struct("<f").unpack_from,
    "_unpack_double": struct.Struct("<d").unpack_from,
}
