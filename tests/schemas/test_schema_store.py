"""The .avsc files and SchemaStore: every version parses, is documented and fingerprinted right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from bouncewire.schemas import (
    DEFAULT_DIRECTORY,
    KINDS,
    SchemaLoadError,
    SchemaStore,
    UnknownKindError,
    crc64_avro_fingerprint,
)
from tests.schemas.schema_helpers import AVSC_FILES, spec_crc64_avro

NAMESPACE = "com.bouncewire.email"
RECORD_NAMES = {"send_result": "SendResult", "unsubscribe": "Unsubscribe"}


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore.load()


def _declaration(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_contracted_files_exist() -> None:
    names = {f"{path.parent.name}/{path.name}" for path in AVSC_FILES}
    assert {"send_result/v1.avsc", "send_result/v2.avsc", "unsubscribe/v1.avsc",
            "unsubscribe/v2.avsc"} <= names
    assert {path.parent.name for path in AVSC_FILES} == set(KINDS)


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_avsc_parses_and_documents_every_field(path: Path) -> None:
    declaration = _declaration(path)
    fastavro.parse_schema(declaration)
    assert declaration["namespace"] == NAMESPACE
    assert declaration["name"] == RECORD_NAMES[path.parent.name]
    assert declaration["doc"].strip()
    for field in declaration["fields"]:
        assert field.get("doc", "").strip(), f"field {field['name']} has no doc"
    assert [f["name"] for f in declaration["fields"][:3]] == ["event_id", "event_time", "email"]
    assert declaration["fields"][0]["type"] == {"type": "string", "logicalType": "uuid"}
    assert declaration["fields"][1]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_enums_have_a_default_for_forward_compatibility(path: Path) -> None:
    def enums(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, list):
            return [enum for branch in node for enum in enums(branch)]
        if isinstance(node, dict):
            found = [node] if node.get("type") == "enum" else []
            return found + enums(node.get("type")) + enums(node.get("fields"))
        return []

    for enum in enums(_declaration(path)):
        assert enum["default"] in enum["symbols"]


def test_send_result_v1_fields_and_v2_adds_remote_mta(store: SchemaStore) -> None:
    v1, v2 = store.versions("send_result")
    v1_fields = {field["name"]: field for field in v1.declaration["fields"]}
    assert list(v1_fields) == [
        "event_id", "event_time", "email", "smtp_code", "enhanced_code", "smtp_message",
        "error", "message_id", "campaign_id", "meta",
    ]  # fmt: skip
    error_enum = v1_fields["error"]["type"][1]
    assert v1_fields["error"]["type"][0] == "null"
    assert error_enum["name"] == "SmtpError"
    assert error_enum["symbols"] == [
        "timeout", "connection_refused", "connection_reset", "dns_failure", "tls_failure",
        "auth_failure", "unknown",
    ]  # fmt: skip
    assert error_enum["default"] == "unknown"
    for name in ("smtp_code", "enhanced_code", "smtp_message", "message_id", "campaign_id", "meta"):
        assert v1_fields[name]["type"][0] == "null" and v1_fields[name]["default"] is None
    assert v2.declaration["fields"][:-1] == v1.declaration["fields"]
    added = v2.declaration["fields"][-1]
    assert (added["name"], added["type"], added["default"]) == (
        "remote_mta",
        ["null", "string"],
        None,
    )


def test_unsubscribe_v1_fields_and_v2_adds_the_complaint_source(store: SchemaStore) -> None:
    v1, v2 = store.versions("unsubscribe")
    fields = {field["name"]: field for field in v1.declaration["fields"]}
    assert list(fields) == ["event_id", "event_time", "email", "source", "campaign_id", "meta"]
    source = fields["source"]["type"]
    assert source["name"] == "UnsubscribeSource"
    assert source["symbols"] == ["link", "one_click", "mailto", "api"]
    assert source["default"] == fields["source"]["default"] == "api"
    # v2 only appends a symbol (existing indexes keep their meaning); the default stays api.
    v2_fields = {field["name"]: field for field in v2.declaration["fields"]}
    assert list(v2_fields) == list(fields)
    v2_source = v2_fields["source"]["type"]
    assert v2_source["symbols"] == [*source["symbols"], "complaint"]
    assert v2_source["default"] == v2_fields["source"]["default"] == "api"


@pytest.mark.parametrize(
    ("schema", "fingerprint"),
    [
        # Known CRC-64-AVRO values from the Avro project's own test suites.
        ("int", 0x7275D51A3F395C8F),
        ("null", 7195948357588979594),
        ("string", 0x8F014872634503C7),
    ],
)
def test_crc64_avro_matches_the_spec_test_vectors(schema: str, fingerprint: int) -> None:
    assert spec_crc64_avro(f'"{schema}"'.encode()) == fingerprint
    assert crc64_avro_fingerprint(schema) == fingerprint


def test_fingerprints_match_an_independent_crc64_avro(store: SchemaStore) -> None:
    for version in store:
        canonical = to_parsing_canonical_form(fastavro.parse_schema(version.declaration))
        assert version.canonical_form == canonical
        assert version.fingerprint == spec_crc64_avro(canonical.encode("utf-8"))
        assert version.single_object_header == b"\xc3\x01" + version.fingerprint.to_bytes(
            8, "little"
        )


def test_store_lookups(store: SchemaStore) -> None:
    assert [v.version for v in store.versions("send_result")] == [1, 2]
    assert store.latest("send_result").version == 2
    assert store.latest("unsubscribe").version == 2
    for version in store:
        assert store.by_fingerprint(version.fingerprint) is version
        assert store.by_fingerprint(version.single_object_header[2:]) is version
        assert version.full_name == f"{NAMESPACE}.{RECORD_NAMES[version.kind]}"
    assert store.by_fingerprint(0) is None
    assert store.by_fingerprint(-1) is None
    assert store.by_fingerprint(1 << 64) is None
    with pytest.raises(UnknownKindError):
        store.latest("bounce")


def test_plain_schemas_have_no_logical_types_and_the_same_fingerprint(store: SchemaStore) -> None:
    for version in store:
        assert "logicalType" not in json.dumps(version.plain)
        assert crc64_avro_fingerprint(version.plain) == version.fingerprint


def _copy_schemas(tmp_path: Path) -> Path:
    root = tmp_path / "avsc"
    shutil.copytree(DEFAULT_DIRECTORY, root)
    return root


def test_load_from_a_directory_finds_new_versions(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    declaration = _declaration(root / "unsubscribe" / "v2.avsc")
    declaration["fields"].append({"name": "ip", "type": ["null", "string"], "default": None})
    (root / "unsubscribe" / "v3.avsc").write_text(json.dumps(declaration), encoding="utf-8")
    store = SchemaStore.load(root)
    assert store.latest("unsubscribe").version == 3


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: shutil.rmtree(root / "unsubscribe"), "missing"),
        (lambda root: [p.unlink() for p in (root / "unsubscribe").glob("v*.avsc")], "no v<N>.avsc"),
        (lambda root: (root / "unsubscribe" / "version3.avsc").write_text("{}"), "v<N>.avsc"),
        (lambda root: (root / "unsubscribe" / "v3.avsc").write_text("{not json"), "valid Avro"),
        (lambda root: (root / "unsubscribe" / "v3.avsc").write_text('"string"'), "record"),
        # A doc-only edit keeps the fingerprint: it is not a new version.
        (
            lambda root: (root / "unsubscribe" / "v3.avsc").write_text(
                (root / "unsubscribe" / "v1.avsc").read_text().replace("Version 1.", "Edited.")
            ),
            "same fingerprint",
        ),
        (
            lambda root: (root / "unsubscribe" / "v3.avsc").write_text(
                (root / "unsubscribe" / "v1.avsc").read_text().replace("Unsubscribe", "Unsub")
            ),
            "record name",
        ),
    ],
)
def test_load_rejects_broken_directories(tmp_path: Path, breakage: Any, message: str) -> None:
    root = _copy_schemas(tmp_path)
    breakage(root)
    with pytest.raises(SchemaLoadError, match=message):
        SchemaStore.load(root)
