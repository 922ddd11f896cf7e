"""Every released version of every event schema, parsed once and indexed by fingerprint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fastavro
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.types import Schema

from bouncewire.schemas.exceptions import SchemaLoadError, UnknownKindError

KINDS: Final[tuple[str, ...]] = ("send_result", "unsubscribe")
DEFAULT_DIRECTORY: Final[Path] = Path(__file__).resolve().parent / "avsc"
SINGLE_OBJECT_MARKER: Final[bytes] = b"\xc3\x01"

_VERSION_FILE: Final = re.compile(r"v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One released schema version: ``schemas/avsc/<kind>/v<version>.avsc``.

    ``plain`` is the parsed schema with logical-type annotations removed. The binary encoding
    is the same, but fastavro then hands back ``event_time`` as int epoch milliseconds and
    ``event_id`` as str instead of datetime/UUID objects: the codec reads and writes with it.
    """

    kind: str
    version: int
    full_name: str
    source: str
    declaration: dict[str, Any]
    parsed: dict[str, Any]
    plain: dict[str, Any]
    canonical_form: str
    fingerprint: int
    single_object_header: bytes

    def __repr__(self) -> str:
        return (
            f"SchemaVersion({self.kind!r}, v{self.version}, fingerprint={self.fingerprint:#018x})"
        )


class SchemaStore:
    """All schema versions of all ``KINDS``; look them up by kind or by fingerprint."""

    def __init__(self, versions: list[SchemaVersion]) -> None:
        by_kind: dict[str, list[SchemaVersion]] = {kind: [] for kind in KINDS}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for version in sorted(versions, key=lambda v: (v.kind, v.version)):
            by_kind[version.kind].append(version)
            self._index_fingerprint(version)
        self._by_kind = {kind: tuple(found) for kind, found in by_kind.items()}
        for kind, found in self._by_kind.items():
            _check_kind_versions(kind, found)

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaStore:
        """Parse every ``<kind>/v<N>.avsc`` under ``directory`` (default: the packaged ones)."""
        root = DEFAULT_DIRECTORY if directory is None else Path(directory)
        return cls(
            [_load_version(kind, n, path) for kind in KINDS for n, path in _files(root, kind)]
        )

    def latest(self, kind: str) -> SchemaVersion:
        """The newest version of ``kind``: what the codec writes with and reads into."""
        return self.versions(kind)[-1]

    def versions(self, kind: str) -> tuple[SchemaVersion, ...]:
        """Every version of ``kind``, oldest first."""
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownKindError(kind) from None

    def by_fingerprint(self, fingerprint: int | bytes) -> SchemaVersion | None:
        """The version whose CRC-64-AVRO fingerprint is ``fingerprint``, or None.

        ``fingerprint`` is the unsigned 64-bit value or its 8 little-endian bytes (the form
        found in a single-object header).
        """
        if isinstance(fingerprint, int):
            if not 0 <= fingerprint < 1 << 64:
                return None
            fingerprint = fingerprint.to_bytes(8, "little")
        return self._by_fingerprint.get(bytes(fingerprint))

    def __iter__(self) -> Iterator[SchemaVersion]:
        for kind in KINDS:
            yield from self._by_kind[kind]

    def _index_fingerprint(self, version: SchemaVersion) -> None:
        key = version.single_object_header[len(SINGLE_OBJECT_MARKER) :]
        clash = self._by_fingerprint.get(key)
        if clash is not None:
            # Same canonical form twice: a doc-only edit is not a new version.
            raise SchemaLoadError(f"{version!r} has the same fingerprint as {clash!r}")
        self._by_fingerprint[key] = version


def crc64_avro_fingerprint(schema: Schema) -> int:
    """CRC-64-AVRO fingerprint of a schema's Parsing Canonical Form, as an unsigned int."""
    canonical = to_parsing_canonical_form(schema)
    # fastavro renders the 64-bit value as hex of its little-endian bytes.
    return int.from_bytes(bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO")), "little")


def _files(root: Path, kind: str) -> list[tuple[int, Path]]:
    folder = root / kind
    if not folder.is_dir():
        raise SchemaLoadError(f"schema folder {kind!r} is missing under {root}")
    found = []
    for path in folder.glob("*.avsc"):
        match = _VERSION_FILE.fullmatch(path.name)
        if match is None:
            raise SchemaLoadError(f"{kind}/{path.name} is not named v<N>.avsc")
        found.append((int(match.group(1)), path))
    if not found:
        raise SchemaLoadError(f"schema folder {kind!r} has no v<N>.avsc file")
    return sorted(found)


def _load_version(kind: str, number: int, path: Path) -> SchemaVersion:
    source = path.read_text(encoding="utf-8")
    try:
        declaration = json.loads(source)
        parsed = fastavro.parse_schema(declaration)
        plain = fastavro.parse_schema(strip_logical_types(declaration))
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaLoadError(f"{kind}/{path.name} is not a valid Avro schema: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(plain, dict) or parsed["type"] != "record":
        raise SchemaLoadError(f"{kind}/{path.name} is not an Avro record schema")
    fingerprint = crc64_avro_fingerprint(parsed)
    return SchemaVersion(
        kind=kind,
        version=number,
        full_name=parsed["name"],
        source=source,
        declaration=declaration,
        parsed=parsed,
        plain=plain,
        canonical_form=to_parsing_canonical_form(parsed),
        fingerprint=fingerprint,
        single_object_header=SINGLE_OBJECT_MARKER + fingerprint.to_bytes(8, "little"),
    )


def _check_kind_versions(kind: str, versions: tuple[SchemaVersion, ...]) -> None:
    if not versions:
        raise SchemaLoadError(f"no schema version of {kind!r}")
    names = {version.full_name for version in versions}
    if len(names) != 1:
        # Readers resolve old data by record name, and the registry subject is the name.
        raise SchemaLoadError(f"versions of {kind!r} disagree on the record name: {sorted(names)}")


def strip_logical_types(node: Any) -> Any:
    """A copy of a schema declaration without ``logicalType`` annotations.

    Only schema positions are walked (types, fields, items, values, union branches), so
    default values are never altered.
    """
    if isinstance(node, list):
        return [strip_logical_types(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    stripped = {key: value for key, value in node.items() if key != "logicalType"}
    for key in ("type", "items", "values"):
        if key in stripped:
            stripped[key] = strip_logical_types(stripped[key])
    if isinstance(stripped.get("fields"), list):
        stripped["fields"] = [strip_logical_types(field) for field in stripped["fields"]]
    return stripped
